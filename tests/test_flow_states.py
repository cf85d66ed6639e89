"""Every mode's flow run ends in a state that says what happened, read back from the server:
a run with a case, run or file that did not succeed ends ``Failed`` with the reason, and a
failed report rebuild is a failure in every mode."""

from __future__ import annotations

from pathlib import Path

from flow_states import state_on_server, task_states_on_server
from recover_helpers import run_paths
from suite_factory import case_src, make_suite
from test_nightly import damaged_copy

from experiment_infra.layout import SuiteRunPaths


def _block(path: Path) -> None:
    """A directory where a report file goes: the rebuild cannot write it."""
    path.unlink(missing_ok=True)
    (path / "in-the-way").mkdir(parents=True)


def test_standard_mode_a_failed_report_rebuild_fails_the_run(prefect_harness, tmp_path: Path) -> None:
    from experiment_cli.run_suite import main
    from flows.run_suite import run_suite

    suite = make_suite(tmp_path / "s", [case_src("alpha")])
    results = tmp_path / "results"
    first = run_suite(suite_path=str(suite), results_root=str(results), return_state=True)
    assert state_on_server(first).is_completed()
    run_dir = Path(first.result(raise_on_failure=False).run_dir)

    _block(SuiteRunPaths(run_dir).report_md)
    again = run_suite(suite_path=str(suite), results_root=str(results), resume=str(run_dir), return_state=True)
    server = state_on_server(again)
    assert server.is_failed() and "reports" in server.message, server.message
    assert main([str(suite), "--results-root", str(results), "--resume", str(run_dir)]) == 1


def test_standard_mode_names_the_failed_case_in_the_state(prefect_harness, tmp_path: Path) -> None:
    from flows.run_suite import run_suite

    suite = make_suite(tmp_path / "s", [case_src("alpha"), case_src("beta", fail_times=9)])
    state = run_suite(suite_path=str(suite), results_root=str(tmp_path / "results"), return_state=True)
    server = state_on_server(state)
    assert server.is_failed()
    assert server.message.startswith("1 of 2 case(s) did not complete: beta failed: attempt 1: exit code 3"), server.message


def test_recovery_whose_report_rebuild_fails_ends_failed_and_fails_the_night(prefect_harness, tmp_path: Path) -> None:
    from flows.nightly import nightly_recovery
    from flows.recover import recover

    exp = damaged_copy(tmp_path / "results", "exp")
    _block(exp / "report.md")
    state = recover(experiment_dir=str(exp), return_state=True)
    server = state_on_server(state)
    assert server.is_failed() and "reports" in server.message, server.message
    summary = state.result(raise_on_failure=False)
    assert not summary.not_done and summary.errors and summary.exit_code == 1  # the run itself was regenerated

    run_paths(exp).run_result.unlink()  # work again for the night
    night = nightly_recovery(results_root=str(tmp_path / "results"), return_state=True)
    server = state_on_server(night)
    assert server.is_failed() and str(exp) in server.message and "reports" in server.message, server.message


def test_a_consensus_batch_that_leaves_a_run_unrebuilt_fails(prefect_harness, tmp_path: Path, git_repo: Path) -> None:
    from flows.recover import recover
    from recover_helpers import edit_json
    from test_recover_rerun import build

    exp = build(tmp_path, git_repo)
    run = exp.run("T0", "00", 1)
    for slot in (1, 2):
        edit_json(run.judge_slot(slot).judgment, is_valid=False)  # both judgments are fallbacks ...
    run.run_result.unlink()  # ... and run_result.json is gone: nothing valid to rebuild it from
    state = recover(experiment_dir=str(exp.dir), judge_model="fake-fail-judge", return_state=True)
    assert state_on_server(state).is_failed()
    tasks = task_states_on_server(state)
    kind, message = tasks["consensus T0/00"]
    assert kind == "FAILED" and "T0/00/run_01: not rebuilt" in message, tasks
