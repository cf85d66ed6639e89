"""A Dask worker lost under a running case, on a real ``dask scheduler`` with ``dask worker``
processes as a user starts them (each under its nanny): the worker process is SIGKILLed
while its case runs.

- With the case's own processes (its waiter and entry point) gone with it, as when a
  machine or container goes: the attempt is classed ``lost`` in its run record and the
  case runs again on another worker (lost is transient: retried by default).
- With the case's processes still running (only the worker process died): the task Dask
  runs again finds the attempt still running and waits for it instead of starting a
  second copy; the case completes once, in its first attempt.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import textwrap
import uuid
from pathlib import Path

import pytest
from conftest import PYTHON, REPO_ROOT, wait_for
from server_helpers import PrefectServer, attempt_record, client_for, finish, show
from test_dask_gpus import dask_cluster, dask_processes, wait_for_workers  # noqa: F401  (dask_processes: a fixture)

from experiment_infra.layout import SuiteRunPaths
from experiment_infra.records import RunRecord, load_record

pytestmark = pytest.mark.server

BOUND_SECONDS = 120.0  # a bound on a case starting, not a timing assertion

CONFIG = '''
from experiment_infra import BaseExperimentConfig


class HoldConfig(BaseExperimentConfig):
    gate: str = ""
'''

# Each start leaves a file named after its pid in the gate directory; the first start holds
# until the test leaves a file ``release`` there.
ENTRY = '''
import os, time
from pathlib import Path

from {cfg} import HoldConfig

from experiment_infra.files.atomic import atomic_write_json
from experiment_infra.layout import CasePaths

cfg = HoldConfig.from_cli()
gate = Path(cfg.gate)
first = not any(p.name.startswith("started-") for p in gate.iterdir())
(gate / f"started-{{os.getpid()}}").touch()
while first and not (gate / "release").exists():
    time.sleep(0.2)
atomic_write_json(CasePaths(Path(cfg.output_dir)).metrics, {{"pid": os.getpid()}})
'''

SUITE = '''
from {cfg} import HoldConfig

from experiment_infra import ExperimentCase

experiment_name = {name!r}
entry_point = "entry.py"
retry_delay_seconds = 0
cases = [ExperimentCase("held", HoldConfig(gate={gate!r}))]
'''


def hold_suite(where: Path, name: str) -> tuple[Path, Path]:
    where.mkdir(parents=True)
    gate = where / "gate"
    gate.mkdir()
    cfg = f"hold_cfg_{uuid.uuid4().hex[:8]}"
    (where / f"{cfg}.py").write_text(CONFIG)
    (where / "entry.py").write_text(textwrap.dedent(ENTRY.format(cfg=cfg)))
    suite = where / "suite_hold.py"
    suite.write_text(SUITE.format(cfg=cfg, name=name, gate=str(gate)))
    return suite, gate


def started(gate: Path) -> list[int]:
    return sorted(int(p.name.removeprefix("started-")) for p in gate.iterdir() if p.name.startswith("started-"))


def worker_running_the_case(address: str, not_this: str | None = None) -> tuple[str, int]:
    """The address and pid of the worker the scheduler says runs the case's task (other than ``not_this``)."""
    from distributed import Client

    with Client(address, timeout=60, set_as_default=False) as client:
        def busy() -> list[str]:
            return [w for w, keys in client.processing().items() if keys and w != not_this]

        (worker,) = wait_for(busy, BOUND_SECONDS, "a worker running the case")
        return worker, client.run(os.getpid, workers=[worker])[worker]


def start_suite(server: PrefectServer, *args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PYTHON, str(REPO_ROOT / "flows" / "run_suite.py"), *map(str, args)], cwd=REPO_ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=server.env(),
    )


def two_workers(address: str, start_worker) -> None:
    for _ in range(2):
        start_worker({}, "--nthreads", "1")
    wait_for_workers(address, 2)


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def logged(server: PrefectServer, text: str) -> bool:
    """A log line holding ``text`` reached the Prefect server (a task run's log, as the UI shows it)."""
    from prefect.client.schemas.filters import LogFilter, LogFilterLevel

    with client_for(server) as client:
        return any(text in log.message for log in client.read_logs(LogFilter(level=LogFilterLevel(ge_=30))))


def lose_machine_under(first: int, address: str) -> str:
    """The machine (a container, a node) running case process ``first`` goes with everything on
    it: the worker process, the case's waiter and its entry point. Returns the worker's address."""
    worker, worker_pid = worker_running_the_case(address)
    waiter = parent_of(first)
    for pid in (worker_pid, waiter):
        os.kill(pid, signal.SIGKILL)
    os.killpg(first, signal.SIGKILL)
    return worker


def case_row(done: subprocess.CompletedProcess[str]) -> list[str]:
    (row,) = [line for line in done.stdout.splitlines() if line.lstrip().startswith("held ")]
    return row.split()


def test_a_case_lost_with_its_dask_worker_is_recorded_lost_and_runs_again_on_another(
    prefect_server: PrefectServer, dask_processes: tuple[str, list], tmp_path: Path  # noqa: F811
) -> None:
    address, (start_worker,) = dask_processes
    two_workers(address, start_worker)
    suite, gate = hold_suite(tmp_path / "exp", "lostwith")
    results = tmp_path / "results"
    proc = start_suite(prefect_server, suite, "--results-root", results, "--dask-address", address)
    try:
        (first,) = wait_for(lambda: started(gate), BOUND_SECONDS, "the case to start")
        worker = lose_machine_under(first, address)  # the other worker is left
        done = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert done.returncode == 0, show(done)
    (run_dir,) = (results / "lostwith").iterdir()
    case = SuiteRunPaths(run_dir).case("held")
    lost, again = attempt_record(case, 1), attempt_record(case, 2)
    assert (lost.failure, lost.interrupted, lost.pid, lost.worker) == ("lost", None, first, worker), lost
    assert lost.reason is not None and f"the Dask worker {worker} on {lost.host}" in lost.reason, lost.reason
    # The retry (lost is transient: retried by default) ran on another worker and completed.
    assert again.exit_code == 0 and again.failure is None and again.worker not in (None, worker), again
    (second,) = [pid for pid in started(gate) if pid != first]
    assert json.loads(case.metrics.read_text()) == {"pid": second}
    assert case_row(done)[1] == "completed", show(done)
    assert "Traceback" not in done.stdout, show(done)


def test_a_case_that_outlives_its_dask_worker_is_not_started_twice(
    prefect_server: PrefectServer, dask_processes: tuple[str, list], tmp_path: Path  # noqa: F811
) -> None:
    address, (start_worker,) = dask_processes
    two_workers(address, start_worker)
    suite, gate = hold_suite(tmp_path / "exp", "outlives")
    results = tmp_path / "results"
    proc = start_suite(prefect_server, suite, "--results-root", results, "--dask-address", address)
    try:
        (first,) = wait_for(lambda: started(gate), BOUND_SECONDS, "the case to start")
        worker, worker_pid = worker_running_the_case(address)
        os.kill(worker_pid, signal.SIGKILL)  # the worker process alone: the case's waiter and entry point run on
        # Dask runs its task again on another worker, which says it waits for the running case
        # (in the task run's log); a runner that started a second copy instead is caught too.
        waiting = f"held: attempt 1 still runs on {socket.gethostname()} (pid {first}) after its Dask worker {worker} was lost"
        wait_for(lambda: len(started(gate)) > 1 or logged(prefect_server, waiting), BOUND_SECONDS, "the task run again", interval=1.0)
        (gate / "release").touch()  # only now may the first start finish
        done = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert done.returncode == 0, show(done)
    assert started(gate) == [first]  # never a second copy: the task run again waited for the first
    (run_dir,) = (results / "outlives").iterdir()
    case = SuiteRunPaths(run_dir).case("held")
    record = load_record(case.run_record, RunRecord)
    assert (record.attempt, record.exit_code, record.failure, record.pid, record.worker) == (1, 0, None, first, worker), record
    assert not case.attempt_dir(1).exists()
    assert json.loads(case.metrics.read_text()) == {"pid": first}
    assert case_row(done)[1] == "completed", show(done)


@pytest.fixture
def strict_scheduler(prefect_server: PrefectServer):
    """``dask scheduler`` that gives a task up at its first lost worker (``allowed-failures`` 0),
    and a starter of its workers."""
    with dask_cluster(prefect_server, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="0") as (address, start):
        yield address, start


def test_a_case_dask_gives_up_on_reads_lost_not_a_traceback(
    prefect_server: PrefectServer, strict_scheduler: tuple[str, object], tmp_path: Path
) -> None:
    address, start_worker = strict_scheduler
    two_workers(address, start_worker)
    suite, gate = hold_suite(tmp_path / "exp", "killed")
    results = tmp_path / "results"
    proc = start_suite(prefect_server, suite, "--results-root", results, "--dask-address", address)
    try:
        (first,) = wait_for(lambda: started(gate), BOUND_SECONDS, "the case to start")
        worker = lose_machine_under(first, address)
        done = finish(proc)  # Dask fails the task with KilledWorker at once: never run again
    finally:
        if proc.poll() is None:
            proc.kill()
    assert done.returncode == 1, show(done)
    (run_dir,) = (results / "killed").iterdir()
    record = load_record(SuiteRunPaths(run_dir).case("held").run_record, RunRecord)
    assert (record.attempt, record.failure, record.worker) == (1, "lost", worker), record
    assert started(gate) == [first]
    row = " ".join(case_row(done))
    assert row.startswith("held failed") and case_row(done)[4] == "lost", show(done)  # the failures column
    assert f"the Dask worker {worker}" in row, show(done)
    assert "Traceback" not in done.stdout and "KilledWorker" not in row, show(done)
