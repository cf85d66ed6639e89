"""The nightly recovery over a results root: which directories it finds, what it does with
each, and how the night ends (real flows on the session's Prefect harness)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURE, copy_tree_writable
from recover_helpers import RUN, run_paths, tree_hash
from suite_factory import case_src, make_suite

from experiment_infra.layout import ExperimentPaths
from experiment_infra.files.lock import acquire_lock
from experiment_infra.recovery.nightly import dry_run_summary
from experiment_infra.recovery.walk import scan_results_root, survey_root
from experiment_infra.recovery.select import Mode, RecoveryInputError


def damaged_copy(root: Path, name: str) -> Path:
    """A fixture copy whose run T1/01/run_01 lost agent/result.json and run_result.json (status `results`)."""
    exp = copy_tree_writable(FIXTURE, root / name)
    paths = run_paths(exp)
    paths.agent_result.unlink()
    paths.run_result.unlink()
    return exp


def standard_run(tmp_path: Path, results: Path, *, fail: bool) -> Path:
    """A real standard-mode run directory (one case failed when ``fail``)."""
    from flows.run_suite import run_suite

    flag = tmp_path / "flag"
    if fail:
        flag.write_text("fail")
    suite = make_suite(tmp_path / "suite", [case_src("ok"), case_src("flaky", flag_file=str(flag))], name="nightly_std")
    state = run_suite(suite_path=str(suite), results_root=str(results), return_state=True)
    flag.unlink(missing_ok=True)
    return Path(state.result(raise_on_failure=False).run_dir)


def test_scan_finds_both_kinds_and_not_inside_them(tmp_path: Path) -> None:
    root = tmp_path / "results"
    a = damaged_copy(root / "exp_a", "20260101_000000_abc1234")
    b = copy_tree_writable(FIXTURE, root / "deep" / "er" / "exp_b")
    (root / "not_an_experiment" / "x").mkdir(parents=True)
    found = scan_results_root(root)
    assert [(f.directory, f.mode) for f in found] == [(b, Mode.AGENT_EVAL), (a, Mode.AGENT_EVAL)]  # sorted by path


def test_root_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RecoveryInputError, match=r"results root .*nowhere: no such directory"):
        scan_results_root(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(RecoveryInputError, match="not a directory"):
        scan_results_root(tmp_path / "file")


def test_filters_apply_per_kind(prefect_harness, tmp_path: Path) -> None:
    root = tmp_path / "results"
    damaged_copy(root, "exp")
    standard_run(tmp_path, root, fail=True)
    items = {i.found.mode: i for i in survey_root(root)}
    assert items[Mode.AGENT_EVAL].planned == 1 and items[Mode.STANDARD].planned == 1
    by_tier = {i.found.mode: i for i in survey_root(root, tiers=["T1"])}
    assert by_tier[Mode.AGENT_EVAL].planned == 1
    assert "standard-mode run has no tiers" in (by_tier[Mode.STANDARD].skipped or "")
    other_tier = {i.found.mode: i for i in survey_root(root, tiers=["T5"])}
    assert other_tier[Mode.AGENT_EVAL].planned == 0  # T1 is the damaged tier
    by_status = {i.found.mode: i for i in survey_root(root, statuses=["results"])}
    assert by_status[Mode.AGENT_EVAL].planned == 1
    assert "is a case status" in (by_status[Mode.STANDARD].skipped or "")
    with pytest.raises(RecoveryInputError, match="statuses nonsense: no such status"):
        survey_root(root, statuses=["nonsense"])


def test_nightly_recovers_both_kinds_and_leaves_complete_ones_alone(prefect_harness, tmp_path: Path) -> None:
    from flows.nightly import NightlySummary, nightly_recovery

    root = tmp_path / "results"
    exp = damaged_copy(root, "exp")
    untouched = copy_tree_writable(FIXTURE, root / "complete")
    before = tree_hash(untouched)
    run_dir = standard_run(tmp_path, root, fail=True)

    dry = nightly_recovery(results_root=str(root), dry_run=True, return_state=True)
    assert dry.is_completed()
    assert {r.outcome for r in dry.result().rows} == {"would recover", "nothing to do"}
    assert not run_paths(exp).run_result.exists()  # the dry run wrote nothing

    state = nightly_recovery(results_root=str(root), return_state=True)
    summary = state.result()
    assert isinstance(summary, NightlySummary) and state.is_completed(), state.message
    outcomes = {Path(r.directory): r.outcome for r in summary.rows}
    assert outcomes == {exp: "recovered", untouched: "nothing to do", run_dir: "recovered"}
    assert run_paths(exp).run_result.is_file() and run_paths(exp).agent_result.is_file()
    assert (run_dir / "flaky" / "metrics.json").is_file()
    assert tree_hash(untouched) == before

    # The nested recover runs are tagged for the UI; their task runs are not (a tag costs
    # each task run two server round trips).
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as client:
        parent = FlowRunFilterParentFlowRunId(any_=[state.state_details.flow_run_id])
        children = [r for r in client.read_flow_runs(flow_run_filter=FlowRunFilter(parent_flow_run_id=parent))
                    if r.name.startswith("recover ")]
        assert len(children) == 2 and all("nightly" in r.tags for r in children)
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[r.id for r in children])))
        assert tasks and all("nightly" not in t.tags for t in tasks)


def test_nothing_to_do_ends_completed_and_says_so(prefect_harness, tmp_path: Path) -> None:
    from flows.nightly import nightly_recovery

    root = tmp_path / "results"
    copy_tree_writable(FIXTURE, root / "complete")
    state = nightly_recovery(results_root=str(root), return_state=True)
    assert state.is_completed()
    assert state.message.startswith("nothing to do: 1 experiment directory under")
    empty = tmp_path / "empty"
    empty.mkdir()
    state = nightly_recovery(results_root=str(empty), return_state=True)
    assert state.is_completed() and "no experiment directories" in state.message


def test_locked_experiment_is_skipped_not_a_failure(prefect_harness, tmp_path: Path) -> None:
    from flows.nightly import nightly_recovery

    root = tmp_path / "results"
    locked = damaged_copy(root, "locked")
    free = damaged_copy(root, "free")
    with acquire_lock(ExperimentPaths(locked).lock, what=str(locked), command=["another", "recovery"]):
        state = nightly_recovery(results_root=str(root), return_state=True)
    assert state.is_completed(), state.message
    rows = {Path(r.directory): r for r in state.result().rows}
    assert rows[locked].outcome == "locked" and "another recovery" in rows[locked].detail
    assert rows[free].outcome == "recovered"
    assert not run_paths(locked).run_result.exists() and run_paths(free).run_result.exists()


def test_a_failed_recovery_fails_the_night_but_not_the_others(prefect_harness, tmp_path: Path) -> None:
    from flows.nightly import nightly_recovery

    root = tmp_path / "results"
    ok = damaged_copy(root, "ok")
    broken = damaged_copy(root, "broken")
    # Every judgment gone too: there is nothing to regenerate from, and the fixture
    # has no manifest to rerun judges with, so this recovery cannot succeed.
    for slot in (1, 2, 3):
        run_paths(broken).judge_slot(slot).judgment.unlink()
    state = nightly_recovery(results_root=str(root), return_state=True)
    assert state.is_failed()
    rows = {Path(r.directory): r for r in state.result(raise_on_failure=False).rows}
    assert rows[ok].outcome == "recovered"
    assert rows[broken].outcome == "failed" and rows[broken].detail


def test_missing_root_fails_the_flow_and_the_command_line(prefect_harness, tmp_path: Path, capsys) -> None:
    from experiment_cli.nightly import main
    from flows.nightly import nightly_recovery

    state = nightly_recovery(results_root=str(tmp_path / "nowhere"), return_state=True)
    assert state.is_failed()
    capsys.readouterr()  # the flow's own log lines (whether they reach this stream depends on earlier tests)
    assert main([str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: results root {tmp_path / 'nowhere'}: no such directory; pass the directory holding your experiments"]


assert RUN == ("T1", "01", 1)  # the run damaged_copy damages (recover_helpers.RUN)


def test_a_tier_that_never_started_is_named_not_called_complete(tmp_path: Path) -> None:
    root = tmp_path / "results"
    exp = copy_tree_writable(FIXTURE, root / "exp")
    shutil.rmtree(exp / "T5")  # in tiers_to_run; its subtests never got a directory
    checkpoint = json.loads((exp / "checkpoint.json").read_text())
    del checkpoint["completed_runs"]["T5"]  # nor does checkpoint.json name one
    (exp / "checkpoint.json").write_text(json.dumps(checkpoint))
    (row,) = dry_run_summary(root, survey_root(root)).rows
    assert (row.outcome, row.detail) == ("nothing to do", "tier T5 never started (run the experiment again for it)")
