"""Hangs: an entry point, agent or judge that never exits (ignoring SIGTERM, with a child
that ignores it too and keeps stdout open) is stopped at its timeout with everything it
started, recorded as failed with the reason, and the flow goes on with the other cases.
An entry point that exits but leaves such a child behind does not hold its case open."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from agent_eval_helpers import DEMO, task_files
from conftest import PYTHON
from faults_helpers import alive, fault_case, recorded_pids, tally, wait_gone, write_fault_suite

from experiment_infra.layout import ExperimentPaths, SuiteRunPaths
from experiment_infra.records import CommandLog, JudgeCommand, RunRecord, load_record
from experiment_infra.status.rules import CaseStatus, JudgeStatus, RunStatus, classify_case, classify_run

pytestmark = pytest.mark.slow

HOSTILE_CLI = textwrap.dedent(
    """
    # Stands in front of the fake agent/judge CLI: behaves (exec) unless the model name
    # says "hang", or it is asked --version while HOSTILE_VERSION_HANGS is set. A hang
    # ignores SIGTERM and starts a child that ignores it too and shares its stdout.
    import os, signal, subprocess, sys, time
    from pathlib import Path

    args = sys.argv[1:]
    model = args[args.index("--model") + 1] if "--model" in args else ""
    version = args[:1] == ["--version"]
    if "hang" in model or (version and os.environ.get("HOSTILE_VERSION_HANGS")):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('child up', flush=True); time.sleep(3600)"
        child = subprocess.Popen([sys.executable, "-c", code])
        pids = Path(os.environ["HOSTILE_PIDS"])
        pids.mkdir(exist_ok=True)
        (pids / str(os.getpid())).write_text(f"{os.getpid()} {child.pid}")
        print("working...", flush=True)
        while True:
            time.sleep(3600)
    if version:
        print("0.1.0 (hostile wrapper)")
        sys.exit(0)
    os.execv(sys.executable, [sys.executable, *args])
    """
)


def hostile_pids(pids_dir: Path) -> list[int]:
    return [int(p) for f in pids_dir.iterdir() for p in f.read_text().split()] if pids_dir.is_dir() else []


def test_hanging_entry_points_are_stopped_with_their_children_and_the_flow_moves_on(tmp_path: Path, prefect_harness) -> None:
    from flows.run_suite import run_suite

    suite = write_fault_suite(
        tmp_path / "suite",
        [
            fault_case("hangs", hang=True, stubborn_child=True),
            fault_case("leaves_child", orphan_child=True),
            fault_case("fine"),
        ],
        extra="timeout_seconds = 3",
    )
    state = run_suite(suite_path=str(suite), results_root=str(tmp_path / "results"), return_state=True)
    summary = state.result(raise_on_failure=False)
    assert state.is_failed()
    rows = {r.variant: r for r in summary.rows}
    assert (rows["hangs"].status, rows["leaves_child"].status, rows["fine"].status) == ("failed", "completed", "completed")
    (run_dir,) = (tmp_path / "results" / "faults").iterdir()
    run = SuiteRunPaths(run_dir)

    hung = run.case("hangs")
    c = classify_case(hung)
    assert c.status is CaseStatus.FAILED and "timed out after 3 s; process group killed" in c.reason
    record = load_record(hung.run_record, RunRecord)
    assert record.timed_out and record.ended_at and record.exit_code != 0
    assert "child up" in hung.stdout.read_text()  # what the child printed before it was killed is kept

    pids = []
    for name in ("hangs", "leaves_child"):
        case = run.case(name)
        pids += recorded_pids(case.dir) + [int(case.dir.joinpath("child.pid").read_text())]
    assert len(pids) == 4
    assert wait_gone(pids, 10) == []  # entry points and the children that ignored SIGTERM
    assert classify_case(run.case("leaves_child")).status is CaseStatus.COMPLETED
    tally("hang", faults=2, runs=3)


def _suite_file(tmp_path: Path, repo: Path, wrapper: Path, pids: Path) -> Path:
    files = task_files(tmp_path)
    agent = [PYTHON, str(wrapper), str(DEMO / "fake_agent.py"), "--model", "{model}", "--print", "--output-format", "json",
             "--dangerously-skip-permissions", "{extra_args}", "{prompt_file}"]
    judge = [PYTHON, str(wrapper), str(DEMO / "fake_judge.py"), "--model", "{model}", "--print",
             "--dangerously-skip-permissions", "{prompt_file}"]
    path = tmp_path / "suite_hang.py"
    path.write_text(textwrap.dedent(f"""\
        from experiment_infra.agent_eval import AgentEvalSuite, Condition, TaskSpec

        env = {{"HOSTILE_PIDS": {str(pids)!r}}}
        suite = AgentEvalSuite(
            experiment_name="eval",
            conditions=[Condition("T0", "00", "fake-hang", env=env), Condition("T1", "00", "fake-sonnet", env=env)],
            judge_models=["fake-opus", "judge-hang"],
            task=TaskSpec(repo={str(repo)!r}, commit="HEAD", prompt_file={str(files['prompt_file'])!r},
                          criteria_file={str(files['criteria_file'])!r}, rubric_file={str(files['rubric_file'])!r}),
            agent_command={agent!r},
            judge_command={judge!r},
            agent_timeout_seconds=3,
            judge_timeout_seconds=3,
            retries=0,
            retry_delay_seconds=0,
        )
        """))
    return path


def test_hanging_agent_judge_and_version_check_are_stopped_and_recorded(
    tmp_path: Path, git_repo: Path, prefect_harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.run_suite import run_suite

    from experiment_infra.agent_eval import commands

    wrapper = tmp_path / "hostile_cli.py"
    wrapper.write_text(HOSTILE_CLI)
    pids_dir = tmp_path / "pids"
    monkeypatch.setenv("HOSTILE_PIDS", str(pids_dir))  # the judges' and the version check's environment
    monkeypatch.setenv("HOSTILE_VERSION_HANGS", "1")  # `<cli> --version` hangs too
    monkeypatch.setattr(commands, "VERSION_TIMEOUT_SECONDS", 2.0)
    commands._version_of.cache_clear()

    suite = _suite_file(tmp_path, git_repo, wrapper, pids_dir)
    state = run_suite(suite_path=str(suite), results_root=str(tmp_path / "results"), return_state=True)
    assert state.is_failed() and not state.result(raise_on_failure=False).ok  # finished, with failures
    (run_dir,) = (tmp_path / "results" / "eval").iterdir()
    exp = ExperimentPaths(run_dir)
    models = ["fake-opus", "judge-hang"]

    hung = classify_run(exp.run("T0", "00", 1), models)
    assert hung.status is RunStatus.FAILED and "timed out after 3 s" in hung.reason, hung
    entry = load_record(exp.run("T0", "00", 1).command_log, CommandLog).commands[0]
    assert entry.exit_code == 124 and entry.timed_out and "process group killed" in (entry.reason or "")

    fine = classify_run(exp.run("T1", "00", 1), models)  # the flow went on with the other run
    assert fine.status is not RunStatus.FAILED and fine.judges[0].status is JudgeStatus.COMPLETE, fine
    assert fine.judges[1].status is JudgeStatus.FAILED and "timed out after 3 s" in fine.judges[1].reason
    judge = load_record(exp.run("T1", "00", 1).judge_slot(2).command_log, JudgeCommand)
    assert judge.timed_out and judge.exit_code == 124 and judge.ended_at

    pids = hostile_pids(pids_dir)
    # The hung agent, the hung judge and each hung --version check, each with its child.
    assert len(pids) >= 6, pids
    left = wait_gone(pids, 10)
    assert left == [], [(p, alive(p)) for p in left]
    tally("hang", faults=len(pids) // 2, runs=2)
