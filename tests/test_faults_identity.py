"""Nothing is signalled unless it is proven to be what a record names: same host, pid,
start time and command line; what a dead leader left, only where it carries the marker
the recorded command was started with. A record naming someone else's process (a pid
reused since) leaves that process running."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

from conftest import PYTHON, wait_for
from faults_helpers import alive, wait_gone

from experiment_infra.agent_eval import stop_leftovers
from experiment_infra.layout import AgentRunPaths, CasePaths
from experiment_infra.processes.process import MARKER_ENV, proc_start, stop_leftover
from experiment_infra.records import ProcessRecord, RunRecord, utc_now_iso, write_record
from experiment_infra.running.runner import stop_unfinished_attempt

SLEEPER = [PYTHON, "-c", "import time; time.sleep(600)"]
# A session leader that starts a child in its group, writes the child's pid and exits:
# the child is what a dead leader leaves, in a group whose id is the leader's pid.
LEAVES_A_CHILD = (
    "import subprocess, sys; "
    "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
    "open(sys.argv[1], 'w').write(str(c.pid))"
)
HOST = socket.gethostname()


def _kill(*pids: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _leaderless_group(tmp_path: Path, env: dict[str, str]) -> tuple[int, int]:
    """(the dead leader's pid, its child still running in that group)."""
    pid_file = tmp_path / f"child-{len(list(tmp_path.iterdir()))}"
    leader = subprocess.Popen([PYTHON, "-c", LEAVES_A_CHILD, str(pid_file)], env=env, start_new_session=True)
    leader.wait()
    child = int(pid_file.read_text())
    assert alive(child) and os.getpgid(child) == leader.pid
    return leader.pid, child


def test_a_record_naming_an_unrelated_live_process_leaves_it_and_its_group_running(tmp_path: Path) -> None:
    other = subprocess.Popen(SLEEPER, start_new_session=True)  # someone else's, with a pid a record names
    try:
        start = proc_start(other.pid)
        assert start is not None
        earlier = str(int(start) - 1)
        # Same pid and command, another start time: a reused pid. Same start, another command.
        assert stop_leftover(other.pid, HOST, SLEEPER, earlier, "m") is None
        assert stop_leftover(other.pid, HOST, [PYTHON, "agent.py"], start, "m") is None
        assert stop_leftover(other.pid, HOST, SLEEPER, None, None) is None  # no start time: nothing is proven
        assert stop_leftover(other.pid, "another-host", SLEEPER, start, None) is None
        # Through a run's agent/process.json, as a rerun reads it.
        run = AgentRunPaths(tmp_path / "run_01")
        run.agent_dir.mkdir(parents=True)
        write_record(run.agent_process, ProcessRecord(command=SLEEPER, host=HOST, pid=other.pid, started_at=utc_now_iso(), pid_start=earlier))
        assert stop_leftovers(run) == []
        # A standard case's run record naming it as the entry point.
        case = CasePaths(tmp_path / "case")
        case.dir.mkdir()
        write_record(case.run_record, RunRecord(variant_name="c", command=SLEEPER, cwd=str(tmp_path), host=HOST,
                                                pid=other.pid, pid_start=earlier, started_at=utc_now_iso()))
        assert stop_unfinished_attempt(case) is False
        assert alive(other.pid)
        # The proven one (all four match) is stopped.
        write_record(case.run_record, RunRecord(variant_name="c", command=SLEEPER, cwd=str(tmp_path), host=HOST,
                                                pid=other.pid, pid_start=start, started_at=utc_now_iso()))
        assert stop_unfinished_attempt(case) is True
        other.wait(timeout=30)
    finally:
        other.kill()
        other.wait()


def test_what_an_unrelated_group_left_under_a_recorded_dead_pid_keeps_running(tmp_path: Path) -> None:
    """The confirmed case: the recorded agent is long gone and its pid now names the group of
    someone else's orphans; they carry no marker of the record, so nothing is signalled."""
    dead, orphan = _leaderless_group(tmp_path, dict(os.environ))
    try:
        start = str(int(proc_start(orphan) or 0) - 1)  # the record predates them, as a real one would
        assert stop_leftover(dead, HOST, [PYTHON, "agent.py"], start, "the-agents-marker") is None
        assert stop_leftover(dead, HOST, [PYTHON, "agent.py"], start, None) is None
        assert alive(orphan)
    finally:
        _kill(orphan)


def test_what_a_recorded_agent_left_is_stopped_and_a_marked_stranger_is_not(tmp_path: Path) -> None:
    dead, orphan = _leaderless_group(tmp_path, {**os.environ, MARKER_ENV: "m-1"})
    live = subprocess.Popen(SLEEPER, start_new_session=True, env={**os.environ, MARKER_ENV: "m-1"})
    try:
        start = str(int(proc_start(orphan) or 0) - 1)
        said = stop_leftover(dead, HOST, [PYTHON, "agent.py"], start, "m-1")
        assert said == f"stopped 1 process(es) an earlier attempt's pid {dead} ({PYTHON}) left running"
        assert wait_gone([orphan], 30) == []
        assert alive(live.pid)  # the same marker, another group: not what that leader left
        # A recorded leader that still runs is stopped with its group.
        assert stop_leftover(live.pid, HOST, SLEEPER, proc_start(live.pid), "m-1") == (
            f"stopped pid {live.pid} ({PYTHON}), still running from an earlier attempt"
        )
        wait_for(lambda: live.poll() is not None, 30, "the recorded leader to end")
    finally:
        _kill(orphan)
        live.kill()
        live.wait()
