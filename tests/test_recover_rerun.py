"""Agent and judge reruns through the ``recover`` flow, on an experiment written by this
project with the demo's fake agent and judges (real subprocesses, real git worktrees)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from agent_eval_helpers import make_suite
from recover_helpers import edit_json, tree_hash
from test_recover_flow import run_recover, task_run_names

from experiment_infra.agent_eval import Condition, finish_run, plan_experiment, run_agent, run_judge, start_experiment
from experiment_infra.layout import ExperimentPaths
from experiment_cli.recover import main
from experiment_infra.records import JudgeCommand, load_record
from experiment_infra.recovery.survey import Selection, survey


def build(tmp_path: Path, repo: Path, *, retries: int = 0, retry_delay_seconds: float = 0) -> ExperimentPaths:
    """A complete experiment: 2 conditions x 2 runs, a panel of 2 fake judges."""
    suite = make_suite(
        tmp_path, repo, conditions=[Condition("T0", "00", "fake-sonnet"), Condition("T1", "01", "fake-sonnet")],
        runs_per_subtest=2, judge_models=["fake-opus", "fake-sonnet-0.9"], retries=retries,
        retry_delay_seconds=retry_delay_seconds,
    )
    plan = plan_experiment(suite, results_root=tmp_path / "results")
    start_experiment(plan, 1)
    exp, spec = plan.exp, plan.spec
    for tier, subtest, n in spec.runs():
        run_agent(exp, spec, tier, subtest, n)
        for slot, model in enumerate(spec.judge_models, start=1):
            run_judge(exp, spec, tier, subtest, n, slot, model)
        finish_run(exp, spec, tier, subtest, n)
    assert survey(exp.dir, Selection()).run_counts()["completed"] == 4
    return exp


def statuses(exp: ExperimentPaths) -> dict[str, tuple[str, list[str]]]:
    return {r.label: (r.status.value, [j.status.value for j in r.judges]) for r in survey(exp.dir, Selection()).runs}


def test_reruns_move_old_attempts_aside_and_touch_nothing_else(prefect_harness, tmp_path: Path, git_repo: Path) -> None:
    exp = build(tmp_path, git_repo)
    failed = exp.run("T0", "00", 1)
    failed.command_log.write_text(failed.command_log.read_text().replace('"exit_code": 0', '"exit_code": 2'))
    failed_tree = tree_hash(failed.dir)
    judged = exp.run("T0", "00", 2)
    edit_json(judged.judge_slot(2).judgment, is_valid=False)
    fallback_tree = tree_hash(judged.judge_slot(2).dir)
    slot1_before = tree_hash(judged.judge_slot(1).dir)
    shutil.rmtree(exp.run("T1", "01", 1).dir)  # missing
    untouched = tree_hash(exp.run("T1", "01", 2).dir, ignore_reports=True)
    assert statuses(exp)["T0/00/run_01"][0] == "failed" and statuses(exp)["T0/00/run_02"][1] == ["complete", "failed"]

    state, summary = run_recover(exp.dir, parallelism=4)
    assert state.is_completed(), state.message
    assert summary.exit_code == 0 and summary.planned == 3 and not summary.remaining
    assert all(s == ("completed", ["complete", "complete"]) for s in statuses(exp).values())

    # The failed run is kept whole, exactly as it was, under .failed/.
    kept = exp.subtest("T0", "00").failed_attempt(1, 1)
    assert tree_hash(kept) == failed_tree
    # Only slot 2 of run_02 was redone; its fallback judgment is kept; slot 1 untouched.
    assert tree_hash(judged.judge_dir / ".failed" / "judge_02_attempt_1") == fallback_tree
    assert tree_hash(judged.judge_slot(1).dir) == slot1_before
    # The deleted run had nothing to keep; the run nobody selected did not change at all.
    assert not exp.subtest("T1", "01").failed_dir.exists()
    assert tree_hash(exp.run("T1", "01", 2).dir, ignore_reports=True) == untouched

    names = task_run_names(state)
    assert {"T0/00/run_01", "T0/00/run_01/judge_01", "T0/00/run_01/judge_02", "T0/00/run_02/judge_02",
            "T1/01/run_01", "T1/01/run_01/judge_01"} <= set(names)
    assert not any(n.startswith("T1/01/run_02") for n in names)
    # Consensus rebuilds are pure JSON: one task run per subtest, after its agents and judges.
    assert sorted(n for n in names if n.startswith("consensus")) == ["consensus T0/00", "consensus T1/01"]


def test_judge_model_override_is_recorded(prefect_harness, tmp_path: Path, git_repo: Path) -> None:
    exp = build(tmp_path, git_repo)
    run = exp.run("T1", "01", 2)
    shutil.rmtree(run.judge_slot(1).dir)
    other = tree_hash(exp.dir, skip=run.dir, ignore_reports=True)
    state, summary = run_recover(exp.dir, judges_only=True, judge_model="fake-override-0.7")
    assert state.is_completed() and summary.exit_code == 0
    command = load_record(run.judge_slot(1).command_log, JudgeCommand)
    assert command.model == "fake-override-0.7" and command.model_override is True
    assert statuses(exp)["T1/01/run_02"] == ("completed", ["complete", "complete"])
    assert tree_hash(exp.dir, skip=run.dir, ignore_reports=True) == other


def test_judge_model_override_is_credited_in_run_result_consensus_and_report(
    prefect_harness, tmp_path: Path, git_repo: Path, capsys
) -> None:
    exp = build(tmp_path, git_repo)
    run = exp.run("T1", "01", 2)
    shutil.rmtree(run.judge_slot(1).dir)
    assert main([str(exp.dir), "--judges-only", "--judge-model", "fake-override-0.7"]) == 0
    capsys.readouterr()
    result = json.loads(run.run_result.read_text())
    assert [(j["judge_number"], j["model"]) for j in result["judges"]] == [(1, "fake-override-0.7"), (2, "fake-sonnet-0.9")]
    assert result["judges"][0]["score"] == 0.7
    consensus = json.loads(run.consensus.read_text())
    assert consensus["judges"] == [{"judge_number": 1, "model": "fake-override-0.7"}, {"judge_number": 2, "model": "fake-sonnet-0.9"}]
    assert "Judge 1: fake-override-0.7" in (run.dir / "report.md").read_text()
    # The runs the override did not touch still credit the configured panel.
    other = json.loads(exp.run("T1", "01", 1).run_result.read_text())
    assert [j["model"] for j in other["judges"]] == ["fake-opus", "fake-sonnet-0.9"]


def test_exit_code_comes_from_the_runs_afterwards(prefect_harness, tmp_path: Path, git_repo: Path, capsys) -> None:
    """--agents-only reruns agents without judging them: every planned action succeeds, yet
    those runs are still results afterwards, so the recovery says so and exits 1."""
    exp = build(tmp_path, git_repo)
    for tier, subtest in (("T0", "00"), ("T1", "01")):
        log = exp.run(tier, subtest, 1).command_log
        log.write_text(log.read_text().replace('"exit_code": 0', '"exit_code": 2'))
    exp.run("T0", "00", 2).agent_result.unlink()  # results: regenerated, complete afterwards
    assert main([str(exp.dir), "--agents-only"]) == 1
    out = capsys.readouterr().out
    assert "3 of 3 planned run(s) done" in out and "still needing work: 2" in out
    assert "T0/00/run_01  results" in out and "T1/01/run_01  results" in out
    assert statuses(exp)["T0/00/run_01"][0] == "results" and statuses(exp)["T0/00/run_02"][0] == "completed"
    # Judging them (and nothing else) completes the selection: exit 0.
    assert main([str(exp.dir)]) == 0
    assert all(s == ("completed", ["complete", "complete"]) for s in statuses(exp).values())


def test_flaky_agent_is_retried_and_every_attempt_kept(prefect_harness, tmp_path: Path, git_repo: Path, monkeypatch) -> None:
    exp = build(tmp_path, git_repo, retries=1)
    run = exp.run("T1", "01", 1)
    run.output.write_text("")  # failed (stderr.log is there)
    monkeypatch.setenv("FAKE_AGENT_FLAKY_FILE", str(tmp_path / "flaked"))  # fails once, then works
    state, summary = run_recover(exp.dir)
    assert state.is_completed(), state.message
    assert statuses(exp)["T1/01/run_01"] == ("completed", ["complete", "complete"])
    failed_dir = exp.subtest("T1", "01").failed_dir
    assert sorted(p.name for p in failed_dir.iterdir()) == ["run_01_attempt_1", "run_01_attempt_2"]
    assert (failed_dir / "run_01_attempt_1" / "agent" / "output.txt").read_text() == ""  # the damaged original
    assert summary.planned == 1 and not summary.not_done


def test_agent_reruns_back_off_as_the_experiments_run_did(prefect_harness, tmp_path: Path, git_repo: Path, monkeypatch) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    exp = build(tmp_path, git_repo, retries=2, retry_delay_seconds=0.05)
    exp.run("T0", "00", 1).output.write_text("")
    monkeypatch.setenv("FAKE_AGENT_MODE", "fail")
    state, _ = run_recover(exp.dir)
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
    (rerun,) = [r for r in runs if r.name == "T0/00/run_01"]
    # retry_delay_seconds doubles on each retry (it was the same flat delay every time).
    assert rerun.empirical_policy.retry_delay == [0.05, 0.1]
    assert rerun.run_count == 3 and rerun.state.is_failed()


def test_agent_that_keeps_failing_exits_non_zero(prefect_harness, tmp_path: Path, git_repo: Path, monkeypatch, capsys) -> None:
    exp = build(tmp_path, git_repo)
    exp.run("T0", "00", 2).agent_result.unlink()  # results: regenerated regardless
    run = exp.run("T0", "00", 1)
    run.output.write_text("")
    monkeypatch.setenv("FAKE_AGENT_MODE", "fail")
    assert main([str(exp.dir), "-p", "2"]) == 1
    out = capsys.readouterr().out
    assert "1 of 2 planned run(s) done" in out and "not done: T0/00/run_01" in out
    assert statuses(exp)["T0/00/run_01"][0] == "failed"
    assert statuses(exp)["T0/00/run_02"][0] == "completed"
    assert (exp.subtest("T0", "00").failed_attempt(1, 1) / "agent" / "output.txt").read_text() == ""
    assert not ExperimentPaths(exp.dir).lock.exists()
