"""What a task Dask runs again finds of its case's attempt (``running.lost_attempt``), with real
processes and real run records: an attempt that provably still runs is waited for, one
whose process is gone (or whose waiter on another host fell silent) is recorded ``lost``.
No Prefect, no Dask: tests/test_dask_lost.py has those."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiment_infra.layout import CasePaths
from experiment_infra.processes.process import proc_start
from experiment_infra.records import RunRecord, load_record, utc_now_iso, write_record
from experiment_infra.running import lost_attempt
from experiment_infra.running.lost_attempt import settle_lost_attempt, started_since


def attempt(paths: CasePaths, pid: int | None, command: list[str], host: str | None = None) -> RunRecord:
    paths.dir.mkdir(parents=True, exist_ok=True)
    record = RunRecord(
        variant_name="c", command=command, cwd=str(paths.dir), attempt=1, host=host or socket.gethostname(),
        worker="tcp://10.0.0.7:40001", pid=pid, pid_start=proc_start(pid) if pid else None, started_at=utc_now_iso(),
    )
    write_record(paths.run_record, record)
    return record


def test_an_attempt_whose_process_still_runs_is_waited_for_and_never_called_lost(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import time; time.sleep(120)"]
    proc = subprocess.Popen(command)
    paths = CasePaths(tmp_path / "c")
    record = attempt(paths, proc.pid, command)
    waits = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:  # it finishes: its waiter records the end, as case_waiter does
            proc.send_signal(signal.SIGTERM)
            proc.wait()
            write_record(paths.run_record, record.model_copy(update={"ended_at": utc_now_iso(), "exit_code": 0}))

    told: list[RunRecord] = []
    try:
        settled = settle_lost_attempt(paths, sleep=sleep, waiting=told.append)
    finally:
        proc.kill()
        proc.wait()
    assert len(waits) == 3  # it waited while the process ran
    assert told == [record]  # and said so, once
    assert settled is not None and (settled.exit_code, settled.failure) == (0, None)
    assert load_record(paths.run_record, RunRecord) == settled


def test_an_attempt_whose_process_is_gone_is_recorded_lost_naming_its_worker(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(lost_attempt, "WAITER_FINISH_SECONDS", 0.2)
    command = [sys.executable, "-c", "pass"]
    proc = subprocess.Popen(command)
    paths = CasePaths(tmp_path / "c")
    attempt(paths, proc.pid, command)  # recorded while it ran
    proc.wait()
    settled = settle_lost_attempt(paths)
    on_disk = load_record(paths.run_record, RunRecord)
    assert on_disk == settled and (on_disk.failure, on_disk.exit_code, on_disk.interrupted) == ("lost", -signal.SIGKILL, None)
    assert on_disk.reason is not None and on_disk.reason.startswith(
        f"lost: the Dask worker tcp://10.0.0.7:40001 on {socket.gethostname()} that ran it went away"
    )


def test_an_attempt_on_another_host_is_lost_only_once_its_heartbeat_stops(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(lost_attempt, "SILENT_SECONDS", 1.0)
    paths = CasePaths(tmp_path / "c")
    attempt(paths, 4242, ["python", "entry.py"], host="another-host.invalid")
    beats = []

    def sleep(seconds: float) -> None:
        if len(beats) < 6:  # its waiter touches the record, as case_waiter's heartbeat does
            beats.append(time.monotonic())
            os.utime(paths.run_record, ns=(len(beats), len(beats)))
        time.sleep(seconds)

    settled = settle_lost_attempt(paths, sleep=sleep)
    assert len(beats) == 6  # never lost while it beat
    assert settled is not None and settled.failure == "lost" and "heartbeat stopped" in (settled.reason or "")


@pytest.mark.parametrize("planned_attempt, expected", [(None, True), (1, False), (0, True)])
def test_only_an_attempt_started_after_planning_is_this_runs(tmp_path: Path, planned_attempt: int | None, expected: bool) -> None:
    now = attempt(CasePaths(tmp_path / "c"), None, ["python", "entry.py"])
    planned = None if planned_attempt is None else now.model_copy(
        update={"attempt": planned_attempt} if planned_attempt != now.attempt else {}
    )
    assert started_since(now, planned) is expected
