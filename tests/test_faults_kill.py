"""Killed mid-flight: the run_suite process, one entry point, one agent, one judge.

After each SIGKILL every case/run is classified from its files (never ``completed`` for
work that did not finish), a ``--resume`` or ``flows/recover.py`` finishes the job, no
file a finished case wrote changes, and earlier attempts are kept (``.attempts/``,
``.failed/``), byte for byte.
"""

from __future__ import annotations

import os
import signal
import socket
import textwrap
import threading
from pathlib import Path

import pytest
from agent_eval_helpers import DEMO, make_suite
from conftest import PYTHON, REPO_ROOT, wait_for
from faults_helpers import (
    Marked,
    alive,
    compare_kept,
    fault_case,
    file_hashes,
    read_json,
    recorded_pids,
    run_suite_cmd,
    tally,
    wait_gone,
    write_fault_suite,
)
from recover_helpers import recover_cli

from experiment_infra.agent_eval import finish_run, plan_experiment, run_agent, run_judge, start_experiment
from experiment_infra.layout import ExperimentPaths, SuiteRunPaths
from experiment_infra.records import CommandLog, JudgeCommand, ProcessRecord, RunRecord, load_record, read_record
from experiment_infra.recovery.survey import Selection, survey
from experiment_infra.recovery.render import render_json
from experiment_infra.status.rules import CaseStatus, JudgeStatus, RunStatus, classify_case, classify_run

pytestmark = pytest.mark.slow


def _run_dir(results: Path, name: str = "faults") -> SuiteRunPaths:
    (run_dir,) = (results / name).iterdir()
    return SuiteRunPaths(run_dir)


def _ended_ok(run: SuiteRunPaths, variant: str) -> bool:
    record = read_record(run.case(variant).run_record, RunRecord).record
    return record is not None and record.exit_code == 0


def _started(run: SuiteRunPaths, variant: str) -> bool:
    record = read_record(run.case(variant).run_record, RunRecord).record
    return record is not None and record.pid is not None and (run.case(variant).dir / "received.json").exists()


def test_killed_run_suite_is_classified_partial_and_resume_finishes_it(tmp_path: Path) -> None:
    hold = tmp_path / "hold"
    hold.write_text("entry points on their first try wait while this file exists")
    suite = write_fault_suite(
        tmp_path / "suite",
        [fault_case("done_a"), fault_case("done_b"), fault_case("held_a", hold_file=str(hold)),
         fault_case("held_b", hold_file=str(hold))],
    )
    results = tmp_path / "results"
    marked = Marked(tmp_path / "prefect-home")
    flow = marked.popen(*run_suite_cmd(suite, "--results-root", str(results)), log=tmp_path / "flow.log", start_new_session=True)
    try:
        wait_for(lambda: (results / "faults").is_dir() and any((results / "faults").iterdir()), 120, "the run directory")
        run = _run_dir(results)
        wait_for(lambda: all(_ended_ok(run, v) for v in ("done_a", "done_b")), 120, "the quick cases to finish")
        wait_for(lambda: all(_started(run, v) for v in ("held_a", "held_b")), 120, "the held cases to start")
        finished = {v: file_hashes(run.case(v).dir) for v in ("done_a", "done_b")}
        manifest = run.manifest.read_bytes()

        os.kill(flow.pid, signal.SIGKILL)  # the flow process only: its entry points have their own groups
        flow.wait(timeout=30)
        tally("kill", faults=1)

        # Classified from the files: finished cases completed, running ones partial, never completed.
        statuses = {v: classify_case(run.case(v)) for v in ("done_a", "done_b", "held_a", "held_b")}
        assert statuses["done_a"].status is statuses["done_b"].status is CaseStatus.COMPLETED
        for v in ("held_a", "held_b"):
            assert statuses[v].status is CaseStatus.PARTIAL and "never finished" in statuses[v].reason, statuses[v]
        s = survey(run.dir, Selection())
        assert {c.variant: c.status for c in s.cases} == {v: c.status for v, c in statuses.items()}
        assert '"partial"' in render_json(s)
        tally(runs=6)

        orphans = [p for v in ("held_a", "held_b") for p in recorded_pids(run.case(v).dir)]
        assert len(orphans) == 2 and all(alive(p) for p in orphans)  # entry points outlive a killed runner
        try:
            os.killpg(flow.pid, signal.SIGKILL)  # Prefect's temporary server, left behind in the flow's group
        except ProcessLookupError:
            pass

        done = marked.run(*run_suite_cmd(suite, "--resume", str(run.dir)))
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert wait_gone(orphans, 5) == []  # the resume stopped the first attempts before rerunning them
        for v in ("held_a", "held_b"):
            case = run.case(v)
            assert classify_case(case).status is CaseStatus.COMPLETED
            record = load_record(case.run_record, RunRecord)
            assert record.attempt == 2 and read_json(case.metrics)["tries"] == 2
            kept = load_record(case.attempt_dir(1) / case.run_record.name, RunRecord)  # the killed attempt, kept
            assert kept.attempt == 1 and kept.ended_at is None and kept.pid == recorded_pids(case.dir)[0]
        for v, before in finished.items():
            assert compare_kept(before, file_hashes(run.case(v).dir)) == []  # skipped, not rerun
            assert load_record(run.case(v).run_record, RunRecord).attempt == 1
        assert run.manifest.read_bytes() == manifest
        assert not run.lock.exists()  # the stale lock of the killed run was taken over and released
        tally(runs=4)
    finally:
        hold.unlink(missing_ok=True)
        marked.end_all()


def test_a_case_that_finishes_after_run_suite_was_killed_reads_completed_and_is_not_rerun(tmp_path: Path) -> None:
    """The process waiting on the entry point records its end, whoever died: the entry
    point's output still reaches its log, the case reads completed, a resume skips it."""
    hold = tmp_path / "hold"
    hold.write_text("the entry point waits while this file exists")
    suite = write_fault_suite(tmp_path / "suite", [fault_case("late", hold_file=str(hold))])
    results = tmp_path / "results"
    marked = Marked(tmp_path / "prefect-home")
    flow = marked.popen(*run_suite_cmd(suite, "--results-root", str(results)), log=tmp_path / "flow.log", start_new_session=True)
    try:
        wait_for(lambda: (results / "faults").is_dir() and any((results / "faults").iterdir()), 120, "the run directory")
        run = _run_dir(results)
        case = run.case("late")
        wait_for(lambda: _started(run, "late"), 120, "the case to start")
        os.kill(flow.pid, signal.SIGKILL)
        flow.wait(timeout=30)
        tally("kill", faults=1)
        try:
            os.killpg(flow.pid, signal.SIGKILL)  # whatever else was left in the flow's group
        except ProcessLookupError:
            pass
        assert classify_case(case).status is CaseStatus.PARTIAL  # still running, nobody's end yet

        hold.unlink()  # the entry point goes on to its end, its runner long gone
        wait_for(lambda: classify_case(case).status is not CaseStatus.PARTIAL, 120, "the case to end")
        now = classify_case(case)
        assert now.status is CaseStatus.COMPLETED, now
        record = load_record(case.run_record, RunRecord)
        assert record.attempt == 1 and record.exit_code == 0 and record.pid == recorded_pids(case.dir)[0]
        assert "done late" in case.stdout.read_text()
        finished = file_hashes(case.dir)
        tally(runs=1)

        done = marked.run(*run_suite_cmd(suite, "--resume", str(run.dir)))
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "skipped" in done.stdout
        assert len(recorded_pids(case.dir)) == 1 and read_json(case.metrics)["tries"] == 1  # not run again
        assert case.kept_attempts() == [] and compare_kept(finished, file_hashes(case.dir)) == []
        tally(runs=1)
    finally:
        marked.end_all()


def test_killed_entry_point_is_recorded_failed_and_recovery_finishes_it(tmp_path: Path, prefect_harness) -> None:
    from flows.run_suite import run_suite

    hold = tmp_path / "hold"
    hold.write_text("hold")
    suite = write_fault_suite(tmp_path / "suite", [fault_case("victim", hold_file=str(hold)), fault_case("bystander")])
    results = tmp_path / "results"

    def kill_victim() -> None:
        victim_dir = wait_for(lambda: next(results.glob("faults/*/victim"), None), 120, "the victim to start")
        pid = wait_for(lambda: recorded_pids(victim_dir), 30, "its pid")[0]
        os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_victim, daemon=True)
    killer.start()
    state = run_suite(suite_path=str(suite), results_root=str(results), return_state=True)
    killer.join(timeout=5)
    tally("kill", faults=1)
    assert state.is_failed()
    run = _run_dir(results)
    victim = classify_case(run.case("victim"))
    assert victim.status is CaseStatus.FAILED and "killed by signal SIGKILL" in victim.reason, victim
    assert classify_case(run.case("bystander")).status is CaseStatus.COMPLETED
    bystander = file_hashes(run.case("bystander").dir)
    first = file_hashes(run.case("victim").dir)
    tally(runs=2)

    done = recover_cli(str(run.dir))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    case = run.case("victim")
    assert classify_case(case).status is CaseStatus.COMPLETED and read_json(case.metrics)["tries"] == 2
    kept = case.attempt_dir(1)
    # Runner files of the killed attempt moved aside unchanged; its own files stayed in the
    # case directory, where the rerun continued in place.
    moved = {name: digest for name, digest in first.items() if name in ("config.json", "run_record.json", "stdout.log", "stderr.log")}
    assert compare_kept(moved, file_hashes(kept)) == [] and set(file_hashes(kept)) == set(moved)
    assert "killed by signal SIGKILL" in (load_record(kept / "run_record.json", RunRecord).reason or "")
    assert compare_kept(bystander, file_hashes(run.case("bystander").dir)) == []
    tally(runs=2)


KILL_ONCE_CLI = textwrap.dedent(
    """
    # In front of the fake agent/judge: a model named in KILL_MODELS is SIGKILLed the first
    # time it runs (after printing half a reply); every other run is the real fake CLI.
    import os, signal, sys
    from pathlib import Path

    args = sys.argv[1:]
    if args[:1] == ["--version"]:
        print("0.1.0 (kill-once wrapper)")
        sys.exit(0)
    model = args[args.index("--model") + 1] if "--model" in args else ""
    marker = Path(os.environ["KILL_ONCE_DIR"]) / model
    if model in os.environ.get("KILL_MODELS", "").split(",") and not marker.exists():
        marker.write_text(str(os.getpid()))
        print('{"type": "result", "subtype": "succ', flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    os.execv(sys.executable, [sys.executable, *args])
    """
)


def test_killed_agent_and_judge_are_classified_and_recovery_finishes_them(
    tmp_path: Path, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from experiment_infra.agent_eval import Condition

    wrapper = tmp_path / "kill_once.py"
    wrapper.write_text(KILL_ONCE_CLI)
    env = {"KILL_MODELS": "agent-victim,judge-victim", "KILL_ONCE_DIR": str(tmp_path / "killed")}
    (tmp_path / "killed").mkdir()
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    models = ["fake-opus", "judge-victim", "fake-haiku-1.0"]
    agent = [PYTHON, str(wrapper), str(DEMO / "fake_agent.py"), "--model", "{model}", "--print", "--output-format",
             "json", "--dangerously-skip-permissions", "{extra_args}", "{prompt_file}"]
    judge = [PYTHON, str(wrapper), str(DEMO / "fake_judge.py"), "--model", "{model}", "--print",
             "--dangerously-skip-permissions", "{prompt_file}"]
    suite = make_suite(
        tmp_path, git_repo, conditions=[Condition("T0", "00", "agent-victim"), Condition("T1", "00", "fake-sonnet")],
        judge_models=models, agent_command=agent, judge_command=judge,
    )
    plan = plan_experiment(suite, results_root=tmp_path / "results")
    start_experiment(plan, 1)
    exp, spec = plan.exp, plan.spec
    for tier in ("T0", "T1"):
        if run_agent(exp, spec, tier, "00", 1) in (RunStatus.RESULTS, RunStatus.COMPLETED):
            for slot, model in enumerate(models, start=1):
                run_judge(exp, spec, tier, "00", 1, slot, model)
            finish_run(exp, spec, tier, "00", 1)
    tally("kill", faults=2)

    killed_agent = classify_run(exp.run("T0", "00", 1), models)
    assert killed_agent.status is RunStatus.FAILED and "killed by signal SIGKILL" in killed_agent.reason, killed_agent
    assert load_record(exp.run("T0", "00", 1).command_log, CommandLog).commands[0].exit_code == -signal.SIGKILL
    judged = classify_run(exp.run("T1", "00", 1), models)
    assert judged.status is RunStatus.COMPLETED  # consensus of the two judges that answered
    assert [j.status for j in judged.judges] == [JudgeStatus.COMPLETE, JudgeStatus.FAILED, JudgeStatus.COMPLETE]
    assert "killed by signal SIGKILL" in judged.judges[1].reason
    assert load_record(exp.run("T1", "00", 1).judge_slot(2).command_log, JudgeCommand).exit_code == -signal.SIGKILL
    tally(runs=2)

    t0, t1 = exp.run("T0", "00", 1), exp.run("T1", "00", 1)
    before_t0 = file_hashes(t0.dir, skip=lambda p: "workspace" in p.relative_to(t0.dir).parts)
    before_slot = file_hashes(t1.judge_slot(2).dir)
    keep_t1 = file_hashes(t1.dir, skip=lambda p: p.relative_to(t1.dir).parts[:1] == ("workspace",) or p in (
        t1.consensus, t1.judge_timing, t1.run_result, t1.report_json, t1.report_md) or t1.judge_slot(2).dir in p.parents)

    done = recover_cli(str(exp.dir), env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    after = survey(exp.dir, Selection())
    assert [(r.label, r.status) for r in after.runs] == [("T0/00/run_01", RunStatus.COMPLETED), ("T1/00/run_01", RunStatus.COMPLETED)]
    assert all(j.status is JudgeStatus.COMPLETE for r in after.runs for j in r.judges)
    # Nothing lost: the killed run and the killed judge slot were moved aside, byte for byte,
    # and every file of the run that kept its agent is unchanged except the rebuilt results.
    moved_run = ExperimentPaths(exp.dir).subtest("T0", "00").failed_attempt(1, 1)
    assert compare_kept(before_t0, file_hashes(moved_run, skip=lambda p: "workspace" in p.relative_to(moved_run).parts)) == []
    assert compare_kept(before_slot, file_hashes(t1.judge_dir / ".failed" / "judge_02_attempt_1")) == []
    assert compare_kept(keep_t1, file_hashes(t1.dir)) == []
    tally(runs=2)


HOLD_CLI = textwrap.dedent(
    """
    # In front of the fake agent: the model "agent-held", the first time, starts a child that
    # ignores SIGTERM (as an agent's tool process might) and waits while HOLD_FILE exists;
    # every other run is the real fake CLI.
    import os, subprocess, sys, time
    from pathlib import Path

    args = sys.argv[1:]
    if args[:1] == ["--version"]:
        print("0.1.0 (hold wrapper)")
        sys.exit(0)
    model = args[args.index("--model") + 1] if "--model" in args else ""
    marker = Path(os.environ["HOLD_DIR"]) / model
    if model == "agent-held" and not marker.exists():
        code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
        child = subprocess.Popen([sys.executable, "-c", code])
        marker.write_text(f"{os.getpid()} {child.pid}")
        while Path(os.environ["HOLD_FILE"]).exists():
            time.sleep(0.05)
    os.execv(sys.executable, [sys.executable, *args])
    """
)


def test_a_killed_recovery_takes_its_agent_along_and_the_next_one_stops_what_is_left(tmp_path: Path, git_repo: Path) -> None:
    """An agent dies with the recovery that started it (no orphan spending money on a run
    nobody records); what it left (a child in its process group) is found from the run's
    agent/process.json by the next recovery, stopped and named before the run is rerun once."""
    from experiment_infra.agent_eval import Condition

    wrapper = tmp_path / "hold.py"
    wrapper.write_text(HOLD_CLI)
    hold, held = tmp_path / "hold", tmp_path / "held"
    hold.write_text("the held agent waits while this file exists")
    held.mkdir()
    env = {"HOLD_FILE": str(hold), "HOLD_DIR": str(held)}
    agent = [PYTHON, str(wrapper), str(DEMO / "fake_agent.py"), "--model", "{model}", "--print", "--output-format",
             "json", "--dangerously-skip-permissions", "{extra_args}", "{prompt_file}"]
    suite = make_suite(tmp_path, git_repo, conditions=[Condition("T0", "00", "agent-held")], judge_models=["fake-opus"],
                       agent_command=agent)
    plan = plan_experiment(suite, results_root=tmp_path / "results")
    start_experiment(plan, 1)  # the experiment directory, no run yet: the recovery runs the agent
    exp = plan.exp
    run = exp.run("T0", "00", 1)
    marked = Marked(tmp_path / "prefect-home", **env)
    first = marked.popen(str(REPO_ROOT / "flows" / "recover.py"), str(exp.dir), log=tmp_path / "first.log", start_new_session=True)
    try:
        marker = held / "agent-held"
        wait_for(lambda: marker.exists() and len(marker.read_text().split()) == 2, 120, "the agent to start")
        agent_pid, child_pid = map(int, marker.read_text().split())
        record = wait_for(lambda: read_record(run.agent_process, ProcessRecord).record, 30, "the agent's process record")
        assert record.pid == agent_pid and record.host == socket.gethostname() and record.started_at

        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
        tally("kill", faults=1)
        assert wait_gone([agent_pid], 10) == []  # the agent went with its recovery
        assert alive(child_pid)  # its child, in the agent's group, did not
        assert classify_run(run, ["fake-opus"]).status is RunStatus.PARTIAL
        try:
            os.killpg(first.pid, signal.SIGKILL)  # whatever else was left in the recovery's group
        except ProcessLookupError:
            pass
        tally(runs=1)

        hold.unlink()
        done = marked.run(str(REPO_ROOT / "flows" / "recover.py"), str(exp.dir))
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert wait_gone([child_pid], 10) == []  # found from the record and stopped before the rerun
        assert f"left running" in done.stdout + done.stderr and f"pid {agent_pid}" in done.stdout + done.stderr
        after = survey(exp.dir, Selection())
        assert [(r.label, r.status) for r in after.runs] == [("T0/00/run_01", RunStatus.COMPLETED)]
        kept = ExperimentPaths(exp.dir).subtest("T0", "00").failed_attempt(1, 1)
        assert load_record(kept / "agent" / "process.json", ProcessRecord).pid == agent_pid  # the killed attempt, kept
        assert not (ExperimentPaths(exp.dir).subtest("T0", "00").failed_attempt(1, 2)).exists()  # rerun once
        tally(runs=1)
    finally:
        marked.end_all()
