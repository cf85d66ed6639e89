"""Concurrency: two recoveries of one experiment, a recovery killed while holding the lock,
and two resumes of one standard-mode run directory, all as real ``python flows/...``
processes. Exactly one writer works; the other exits non-zero naming the lock holder;
a dead holder's lock is taken over; the work is done exactly once."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import textwrap
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen
from typing import Iterator

import pytest
from agent_eval_helpers import DEMO, make_suite
from conftest import PYTHON, REPO_ROOT, wait_for
from faults_helpers import (
    Marked,
    compare_kept,
    counters_of,
    fault_case,
    file_hashes,
    read_json,
    recorded_pids,
    run_suite_cmd,
    tally,
    write_fault_suite,
)

from experiment_infra.agent_eval import Condition, finish_run, plan_experiment, run_agent, run_judge, start_experiment
from experiment_infra.layout import ExperimentPaths, SuiteRunPaths
from experiment_infra.records import LockInfo, RunRecord, load_record, read_record
from experiment_infra.recovery.survey import Selection, survey
from experiment_infra.status.rules import CaseStatus, RunStatus, classify_case

pytestmark = pytest.mark.slow

HOLD_AGENT = textwrap.dedent(
    """
    # The fake agent, after waiting while $HOLD_FILE exists (records its pid first).
    import os, sys, time
    from pathlib import Path

    if sys.argv[1:2] != ["--version"]:
        Path(os.environ["HOLD_PIDS"]).mkdir(exist_ok=True)
        (Path(os.environ["HOLD_PIDS"]) / str(os.getpid())).write_text("agent")
        deadline = time.monotonic() + 120
        while Path(os.environ["HOLD_FILE"]).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
    """
)
MODELS = ["fake-opus"]


@dataclass(frozen=True)
class Race:
    procs: dict[str, Popen[bytes]]
    winner: str
    loser: str
    out: str  # the loser's output
    errors: list[str]  # its "error: " lines


@contextmanager
def two_racing(tmp_path: Path, args: list[str], hold: Path, what: str, **env: str) -> Iterator[Race]:
    """Start the same command twice; once one gives up, yield the race, then let the winner finish.

    ``hold`` keeps the winner's work waiting until the body has looked at the loser; both
    process groups are ended whatever the body asserts.
    """
    a, b = Marked(tmp_path / "home-a", **env), Marked(tmp_path / "home-b", **env)
    procs = {"a": a.popen(*args, log=tmp_path / "a.log"), "b": b.popen(*args, log=tmp_path / "b.log")}
    try:
        loser = wait_for(lambda: next((k for k, p in procs.items() if p.poll() is not None), None), 240, what)
        winner = "b" if loser == "a" else "a"
        out = (tmp_path / f"{loser}.log").read_text()
        yield Race(procs, winner, loser, out, [line for line in out.splitlines() if line.startswith("error: ")])
        hold.unlink()
        assert procs[winner].wait(timeout=240) == 0, (tmp_path / f"{winner}.log").read_text()[-3000:]
    finally:
        hold.unlink(missing_ok=True)
        a.end_all()
        b.end_all()


def _experiment(tmp_path: Path, repo: Path) -> ExperimentPaths:
    """A finished experiment (one run, one judge) whose run then lost its command log: partial."""
    suite = make_suite(tmp_path, repo, conditions=[Condition("T0", "00", "fake-sonnet")], judge_models=MODELS)
    plan = plan_experiment(suite, results_root=tmp_path / "results")
    start_experiment(plan, 1)
    exp, spec = plan.exp, plan.spec
    run_agent(exp, spec, "T0", "00", 1)
    run_judge(exp, spec, "T0", "00", 1, 1, MODELS[0])
    finish_run(exp, spec, "T0", "00", 1)
    exp.run("T0", "00", 1).command_log.unlink()
    assert [r.status for r in survey(exp.dir, Selection()).runs] == [RunStatus.PARTIAL]
    return exp


def _recovery_env(tmp_path: Path, hold: Path) -> dict[str, str]:
    wrapper = tmp_path / "hold_agent.py"
    wrapper.write_text(HOLD_AGENT)
    agent = [PYTHON, str(wrapper), str(DEMO / "fake_agent.py"), "--model", "{model}", "--print", "--output-format", "json",
             "--dangerously-skip-permissions", "{extra_args}", "{prompt_file}"]
    return {"EXPERIMENT_AGENT_COMMAND": shlex.join(agent), "HOLD_FILE": str(hold), "HOLD_PIDS": str(tmp_path / "agent-pids")}


def _recover_args(exp: ExperimentPaths) -> list[str]:
    return [str(REPO_ROOT / "flows" / "recover.py"), str(exp.dir)]


def _attempts(exp: ExperimentPaths) -> list[str]:
    failed = exp.subtest("T0", "00").failed_dir
    return sorted(p.name for p in failed.iterdir()) if failed.is_dir() else []


def test_two_recoveries_at_once_exactly_one_works(tmp_path: Path, git_repo: Path) -> None:
    exp = _experiment(tmp_path, git_repo)
    damaged = file_hashes(exp.run("T0", "00", 1).dir)
    hold = tmp_path / "hold"
    hold.write_text("hold")
    with two_racing(tmp_path, _recover_args(exp), hold, "one recovery to give up", **_recovery_env(tmp_path, hold)) as race:
        # The one that loses exits while the winner's agent is still held.
        procs, winner = race.procs, race.winner
        assert procs[winner].poll() is None
        assert procs[race.loser].returncode == 3, race.out[-3000:]
        assert len(race.errors) == 1, race.out[-3000:]
        assert f"is locked by pid {procs[winner].pid} on {socket.gethostname()}" in race.errors[0]
        assert "still running" in race.errors[0] and str(exp.lock) in race.errors[0]
        holder = load_record(exp.lock, LockInfo)
        assert holder.pid == procs[winner].pid
    tally("race", faults=1, runs=1)
    assert [r.status for r in survey(exp.dir, Selection()).runs] == [RunStatus.COMPLETED]
    assert _attempts(exp) == ["run_01_attempt_1"]  # rerun exactly once
    moved = exp.subtest("T0", "00").failed_attempt(1, 1)
    assert compare_kept(damaged, file_hashes(moved)) == []
    assert not exp.lock.exists()


def test_lock_of_a_killed_recovery_is_taken_over_and_nothing_is_lost(tmp_path: Path, git_repo: Path) -> None:
    exp = _experiment(tmp_path, git_repo)
    damaged = file_hashes(exp.run("T0", "00", 1).dir)
    hold = tmp_path / "hold"
    hold.write_text("hold")
    env = _recovery_env(tmp_path, hold)
    first = Marked(tmp_path / "home-first", **env)
    proc = first.popen(*_recover_args(exp), log=tmp_path / "first.log", start_new_session=True)
    try:
        wait_for(lambda: (tmp_path / "agent-pids").is_dir() and any((tmp_path / "agent-pids").iterdir()), 240,
                 "the first recovery's agent to start")
        holder = load_record(exp.lock, LockInfo)
        assert holder.pid == proc.pid
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        first.end_all()  # what the killed recovery left running: its temporary server and its agent
    tally("kill", faults=1)
    assert read_record(exp.lock, LockInfo).record == holder  # a stale lock, left behind
    half_done = file_hashes(exp.run("T0", "00", 1).dir)
    assert [r.status for r in survey(exp.dir, Selection()).runs] == [RunStatus.PARTIAL]

    hold.unlink()
    second = Marked(tmp_path / "home-second", **env)
    try:
        done = second.run(*_recover_args(exp), timeout=300)
    finally:
        second.end_all()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "took over the stale lock" in done.stdout + done.stderr
    assert not exp.lock.exists()
    assert [r.status for r in survey(exp.dir, Selection()).runs] == [RunStatus.COMPLETED]
    assert _attempts(exp) == ["run_01_attempt_1", "run_01_attempt_2"]
    sub = exp.subtest("T0", "00")
    assert compare_kept(damaged, file_hashes(sub.failed_attempt(1, 1))) == []  # the original damaged run
    assert compare_kept(half_done, file_hashes(sub.failed_attempt(1, 2))) == []  # the killed recovery's half run
    tally("race", faults=1, runs=2)


def test_two_resumes_of_one_run_directory_exactly_one_reruns(tmp_path: Path, prefect_harness) -> None:
    from flows.run_suite import run_suite

    hold = tmp_path / "hold"
    suite = write_fault_suite(tmp_path / "suite", [fault_case("kept"), fault_case("redo", hold_file=str(hold))])
    state = run_suite(suite_path=str(suite), results_root=str(tmp_path / "results"), return_state=True)
    assert state.is_completed()
    (run_dir,) = (tmp_path / "results" / "faults").iterdir()
    run = SuiteRunPaths(run_dir)
    kept = file_hashes(run.case("kept").dir)
    redo = run.case("redo")
    redo.run_record.unlink()  # as if it never ran: its next try (tries.txt gone too) holds on the file
    (counters_of(redo.dir) / "tries.txt").unlink()
    hold.write_text("hold")

    args = run_suite_cmd(suite, "--resume", str(run.dir))
    with two_racing(tmp_path, args, hold, "one resume to give up") as race:
        assert race.procs[race.loser].returncode == 3, race.out[-3000:]  # locked, as in recover
        winner_pid = race.procs[race.winner].pid
        assert len(race.errors) == 1 and f"is locked by pid {winner_pid}" in race.errors[0], race.out[-3000:]
    tally("race", faults=1, runs=2)
    assert classify_case(redo).status is CaseStatus.COMPLETED
    assert read_json(redo.metrics)["tries"] == 1 and len(recorded_pids(redo.dir)) == 2  # 1 + 1 rerun
    assert load_record(redo.run_record, RunRecord).attempt == 2 and redo.kept_attempts() == [1]  # the first logs, kept
    assert compare_kept(kept, file_hashes(run.case("kept").dir)) == []
    assert not run.lock.exists()


def test_nightly_run_racing_a_recovery_skips_the_locked_experiment_naming_the_holder(
    tmp_path: Path, git_repo: Path, prefect_harness
) -> None:
    from conftest import FIXTURE, copy_tree_writable
    from flows.nightly import nightly_recovery

    exp = _experiment(tmp_path, git_repo)  # under tmp_path/results
    other = ExperimentPaths(copy_tree_writable(FIXTURE, tmp_path / "results" / "scylla"))
    other.run("T1", "01", 1).run_result.unlink()  # work for the nightly run: a regeneration
    hold = tmp_path / "hold"
    hold.write_text("hold")
    env = _recovery_env(tmp_path, hold)
    marked = Marked(tmp_path / "home", **env)
    proc = marked.popen(*_recover_args(exp), log=tmp_path / "recover.log")
    try:
        wait_for(lambda: (tmp_path / "agent-pids").is_dir() and any((tmp_path / "agent-pids").iterdir()), 240,
                 "the recovery to hold the lock and start its agent")
        state = nightly_recovery(results_root=str(tmp_path / "results"), return_state=True)
        summary = state.result(raise_on_failure=False)
        assert state.is_completed(), state.message
        rows = {Path(r.directory): r for r in summary.rows}
        locked = rows[exp.dir]
        assert locked.outcome == "locked" and f"pid {proc.pid} on {socket.gethostname()}" in locked.detail, locked
        assert rows[other.dir].outcome == "recovered", rows[other.dir]
        hold.unlink()
        assert proc.wait(timeout=240) == 0, (tmp_path / "recover.log").read_text()[-3000:]
    finally:
        hold.unlink(missing_ok=True)
        marked.end_all()
    tally("race", faults=1, runs=2)
    assert _attempts(exp) == ["run_01_attempt_1"]  # only the recovery touched it, once
    assert [r.status for r in survey(exp.dir, Selection()).runs] == [RunStatus.COMPLETED]
    assert all(r.status is RunStatus.COMPLETED for r in survey(other.dir, Selection()).runs)
