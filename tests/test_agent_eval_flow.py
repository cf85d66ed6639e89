"""Agent-evaluation suites through the real ``run_suite`` flow (real Prefect, fake agent and judges)."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from datetime import datetime
from pathlib import Path

import pytest
from agent_eval_helpers import DEMO, FAKE_AGENT, FAKE_JUDGE, FIXTURE_ONLY, OURS_ONLY, task_files, tree
from conftest import FIXTURE, PYTHON, REPO_ROOT, wait_for
from flow_states import state_on_server

from experiment_infra.layout import RUN_DIR_PATTERN, ExperimentPaths
from experiment_infra.records import AgentTiming, CommandLog, ExperimentConfig, JudgeCommand, load_record
from experiment_infra.status.rules import RunStatus, classify_run

JUDGES = ["fake-opus", "fake-sonnet-0.9", "fake-haiku-1.0"]
REPORTS = {"report.json", "report.md"}  # written by the flow's report step, as in the fixture


def write_suite(tmp_path: Path, repo: Path, conditions: str, **options: object) -> Path:
    """A suite file like a user's, over the fake agent and judges."""
    files = task_files(tmp_path)
    settings = dict(runs_per_subtest=1, judge_models=JUDGES, retries=0, retry_delay_seconds=0)
    settings.update(options)
    extra = "".join(f"    {k}={v!r},\n" for k, v in settings.items())
    path = tmp_path / "suite_eval.py"
    path.write_text(
        textwrap.dedent(
            f"""\
            from experiment_infra.agent_eval import AgentEvalSuite, Condition, TaskSpec

            suite = AgentEvalSuite(
                experiment_name="eval",
                conditions=[{conditions}],
                task=TaskSpec(repo={str(repo)!r}, commit="HEAD", prompt_file={str(files['prompt_file'])!r},
                              criteria_file={str(files['criteria_file'])!r}, rubric_file={str(files['rubric_file'])!r}),
                agent_command={FAKE_AGENT!r},
                judge_command={FAKE_JUDGE!r},
                agent_timeout_seconds=60,
                judge_timeout_seconds=60,
            """
        )
        + extra
        + ")\n"
    )
    return path


def run_flow(suite: Path, results: Path, **options: object):
    """Run the flow; (its final state as the server recorded it, the local state)."""
    from flows.run_suite import run_suite

    state = run_suite(suite_path=str(suite), results_root=str(results), return_state=True, **options)
    return state_on_server(state), state


def experiment(results: Path) -> ExperimentPaths:
    (run_dir,) = (results / "eval").iterdir()
    assert RUN_DIR_PATTERN.match(run_dir.name)
    return ExperimentPaths(run_dir)


def task_run_names(state) -> set[str]:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
    return {r.name for r in runs}


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_flow_writes_the_fixture_layout_and_judges_start_before_all_agents_finish(tmp_path, git_repo, prefect_harness):
    suite = write_suite(
        tmp_path, git_repo,
        'Condition("T0", "00", "fake-sonnet"), Condition("T1", "00", "fake-slow", env={"FAKE_AGENT_SLEEP": "5"})',
    )
    final, state = run_flow(suite, tmp_path / "results", parallelism=2)
    assert final.is_completed(), final.message
    exp = experiment(tmp_path / "results")
    for tier in ("T0", "T1"):
        assert classify_run(exp.run(tier, "00", 1), JUDGES).status is RunStatus.COMPLETED

    # Every file of a fixture run, the run reports included, read back through the models in the core tests.
    ours, theirs = tree(exp.run("T0", "00", 1).dir), tree(FIXTURE / "T0" / "00" / "run_01")
    assert ours - OURS_ONLY == theirs - (FIXTURE_ONLY - REPORTS)
    for name in ("report.json", "result.json", "summary.md", "tier_comparison.json", "T0/result.json", "T0/best_subtest.json"):
        assert (exp.dir / name).is_file() and (FIXTURE / name).is_file(), name

    # The fast run's judges ran while the slow agent was still running (-p 2, not after all agents).
    first_judge = load_record(exp.run("T0", "00", 1).judge_slot(1).command_log, JudgeCommand).started_at
    slow_agent_end = load_record(exp.run("T1", "00", 1).agent_timing, AgentTiming).measured_at
    assert _time(first_judge) < _time(slow_agent_end)

    expected = {f"{t}/00/run_01" for t in ("T0", "T1")}
    expected |= {f"{r}/judge_0{n}" for r in expected for n in (1, 2, 3)}
    assert task_run_names(state) == expected | {"reports"}  # reports rebuilt last, in one task run


def test_one_worker_runs_a_runs_judges_before_the_next_agent(tmp_path, git_repo, prefect_harness):
    suite = write_suite(tmp_path, git_repo, 'Condition("T0", "00", "fake-sonnet")', runs_per_subtest=2, judge_models=["fake-opus"])
    final, _ = run_flow(suite, tmp_path / "results", parallelism=1)  # -p 1: no deadlock, judges first
    assert final.is_completed(), final.message
    exp = experiment(tmp_path / "results")
    judge_started = load_record(exp.run("T0", "00", 1).judge_slot(1).command_log, JudgeCommand).started_at
    second_agent = load_record(exp.run("T0", "00", 2).command_log, CommandLog).commands[0]
    assert _time(judge_started) < _time(second_agent.timestamp)

    # Resume after losing a judge slot and a whole run: only those are redone.
    first = exp.run("T0", "00", 1)
    agent_log = first.command_log.read_text()
    for path in sorted(first.judge_slot(1).dir.iterdir()):
        path.unlink()
    first.judge_slot(1).dir.rmdir()
    subprocess.run(["git", "-C", str(exp.repo), "worktree", "remove", "--force", str(exp.run("T0", "00", 2).workspace)], check=True)
    shutil.rmtree(exp.run("T0", "00", 2).dir)
    final, state = run_flow(suite, tmp_path / "results", parallelism=1, resume=str(exp.dir))
    assert final.is_completed(), final.message
    assert first.command_log.read_text() == agent_log  # the completed agent run was not run again
    assert task_run_names(state) == {"T0/00/run_01/judge_01", "T0/00/run_02", "T0/00/run_02/judge_01", "reports"}
    assert all(classify_run(exp.run("T0", "00", n), ["fake-opus"]).status is RunStatus.COMPLETED for n in (1, 2))

    final, state = run_flow(suite, tmp_path / "results", resume=str(exp.dir))  # nothing left to do
    assert final.is_completed() and task_run_names(state) == set()


def test_failed_runs_are_retried_after_moving_the_attempt_aside(tmp_path, git_repo, prefect_harness):
    flaky = tmp_path / "flaky-marker"
    suite = write_suite(
        tmp_path, git_repo,
        f'Condition("T0", "00", "fake-sonnet", env={{"FAKE_AGENT_FLAKY_FILE": {str(flaky)!r}}}), '
        'Condition("T1", "00", "fake-fail")',
        judge_models=["fake-opus"], retries=1,
    )
    final, _ = run_flow(suite, tmp_path / "results", parallelism=2)
    assert final.is_failed()  # one run failed for good, and the state says which and why
    # Exit 1 having spent nothing is how ProjectScylla tells a rate limit (reset_rate_limited_runs.py).
    assert final.message.startswith(
        "1 of 2 run(s) not complete: T1/00/run_01 failed: rate limited: agent exited with code 1"
    ), final.message
    exp = experiment(tmp_path / "results")
    flaky_run = exp.run("T0", "00", 1)
    assert classify_run(flaky_run, ["fake-opus"]).status is RunStatus.COMPLETED
    kept = exp.subtest("T0", "00").failed_attempt(1, 1)
    assert load_record(kept / "agent" / "command_log.json", CommandLog).exit_code == 1
    failed = exp.run("T1", "00", 1)
    assert classify_run(failed, ["fake-opus"]).status is RunStatus.FAILED
    assert exp.subtest("T1", "00").failed_attempt(1, 1).is_dir()  # both attempts kept
    assert not failed.judge_dir.exists()  # no judge ran on a failed agent run


def test_dry_run_prints_every_run_judge_and_command_and_writes_nothing(tmp_path, git_repo, prefect_harness, capsys):
    suite = write_suite(tmp_path, git_repo, 'Condition("T0", "00", "fake-sonnet"), Condition("T2", "01", "fake-haiku")', runs_per_subtest=2)
    final, _ = run_flow(suite, tmp_path / "results", dry_run=True)
    out = capsys.readouterr().out
    assert final.is_completed() and not (tmp_path / "results").exists()
    for run in ("T0/00/run_01", "T0/00/run_02", "T2/01/run_01", "T2/01/run_02"):
        assert run in out
    assert out.count("judge_03 (fake-haiku-1.0):") == 4
    assert "fake_agent.py --model fake-haiku --print --output-format json" in out
    assert "nothing written, nothing started" in out


def test_bad_suite_is_a_one_line_error_before_any_flow_runs(tmp_path, git_repo):
    suite = write_suite(tmp_path, git_repo, 'Condition("T0", "00", "m")', judge_models=[])
    done = subprocess.run(
        [PYTHON, str(REPO_ROOT / "flows" / "run_suite.py"), str(suite), "--results-root", str(tmp_path / "results")],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "judge_models is empty" in done.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_demo_suite_dry_run_from_its_own_file(tmp_path):
    done = subprocess.run(
        [PYTHON, str(DEMO / "suite_agent_eval_demo.py"), "--dry-run", "--results-root", str(tmp_path / "results")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("    agent: ") == 6 and "T2/01/run_02" in done.stdout
    assert not (tmp_path / "results").exists()


def _most_agents_at_once(exp: ExperimentPaths, runs: list[tuple[str, str]]) -> int:
    """From the runs' own timing files: the most agent processes that overlapped."""
    spans = []
    for tier, subtest in runs:
        timing = load_record(exp.run(tier, subtest, 1).agent_timing, AgentTiming)
        end = datetime.fromisoformat(timing.measured_at).timestamp()
        spans.append((end - timing.agent_duration_seconds, end))
    return max(sum(1 for s, e in spans if s < t <= e) for _, t in spans)


@pytest.mark.parametrize("declared, bound", [(None, 4), (2, 2)])
def test_without_p_at_most_parallel_subtests_runs_at_once(tmp_path, git_repo, prefect_harness, monkeypatch, declared, bound):
    """-p unset: ProjectScylla's parallel_subtests (default 4), not every run at once."""
    monkeypatch.setenv("FAKE_AGENT_MODE", "slow")
    monkeypatch.setenv("FAKE_AGENT_SLEEP", "2")
    runs = [("T0", f"{n:02d}") for n in range(6)]
    conditions = ", ".join(f"Condition({t!r}, {s!r}, 'fake-sonnet')" for t, s in runs)
    options = {"judge_models": ["fake-opus"]} | ({"parallel_subtests": declared} if declared else {})
    suite = write_suite(tmp_path, git_repo, conditions, **options)
    final, state = run_flow(suite, tmp_path / "results")
    assert final.is_completed(), final.message
    exp = experiment(tmp_path / "results")
    assert load_record(exp.config, ExperimentConfig).parallel_subtests == bound  # recorded as ProjectScylla does
    assert 1 < _most_agents_at_once(exp, runs) <= bound


def test_an_agent_or_judge_that_fails_logs_its_reason_and_stderr_not_a_traceback(tmp_path, git_repo, prefect_harness):
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    suite = write_suite(tmp_path, git_repo, 'Condition("T0", "00", "fake-sonnet"), Condition("T1", "00", "fake-fail")',
                        judge_models=["fake-opus", "fake-fail-judge"])
    final, state = run_flow(suite, tmp_path / "results", parallelism=2)
    assert final.is_failed(), final.message

    def logs() -> list[str]:
        with get_client(sync_client=True) as client:
            found = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])))
        text = [log.message for log in found]
        done = any("judge model unavailable" in m for m in text) and any("API rate limit exceeded" in m for m in text)
        return text if done else []

    messages = wait_for(logs, 60, "both failures in the run's logs")  # logs reach the server in batches
    assert not [m for m in messages if "Traceback" in m or "NoneType: None" in m]
    # The task run's final state names the reason and ends with the tail of its stderr.
    tasks = [m for m in messages if m.startswith("Finished in state Failed") and "run(s) not complete" not in m]
    (judge,) = [m for m in tasks if "judge_02 failed" in m]
    assert "exit code 2" in judge and judge.endswith("stderr: Error: judge model unavailable (fake)')")
    (agent,) = [m for m in tasks if "T1/00/run_01 failed" in m]
    assert "agent exited with code 1" in agent and agent.endswith("stderr: Error: API rate limit exceeded (fake)')")
    # The flow run's own final state, as the server holds it, names both runs and why.
    assert final.message.startswith("2 of 2 run(s) not complete"), final.message
    assert "T0/00/run_01 completed: judge 2: exit code 2" in final.message and "T1/00/run_01 failed: rate limited: agent exited" in final.message


def test_resume_plans_as_recovery_does_and_keeps_valid_derived_files(tmp_path, git_repo, prefect_harness):
    """One planner for resume and recovery: a run whose agent/result.json alone is gone gets
    that file back, and no valid derived file of any run is rewritten (bytes and mtime)."""
    from experiment_infra.agent_eval import plan_experiment
    from experiment_infra.recovery.survey import Selection, survey
    from experiment_infra.suites.suite import load_suite

    suite = write_suite(tmp_path, git_repo, 'Condition("T0", "00", "fake-sonnet")', runs_per_subtest=2, judge_models=["fake-opus"])
    final, _ = run_flow(suite, tmp_path / "results")
    assert final.is_completed(), final.message
    exp = experiment(tmp_path / "results")
    lost, whole = exp.run("T0", "00", 1), exp.run("T0", "00", 2)
    lost.agent_result.unlink()  # status `results`: only a derived file to rebuild

    # The resume plans exactly what a recovery plans, run by run.
    resumed = plan_experiment(load_suite(suite), resume=exp.dir, suite_path=suite)
    recovery = survey(exp.dir, Selection())
    assert [r.work for r in resumed.runs] == list(recovery.runs)
    assert [(r.name, r.regenerate, r.needs_agent, r.judges) for r in resumed.runs] == [
        ("T0/00/run_01", True, False, ()), ("T0/00/run_02", False, False, ())]

    kept = [p for run in (lost, whole) for p in (run.run_result, run.consensus, run.judge_timing)] + [whole.agent_result]
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in kept}
    final, state = run_flow(suite, tmp_path / "results", resume=str(exp.dir))
    assert final.is_completed(), final.message
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in kept} == before
    assert lost.agent_result.is_file() and classify_run(lost, ["fake-opus"]).status is RunStatus.COMPLETED
    assert task_run_names(state) == {"reports"}  # no agent or judge ran
