"""What a researcher sees of a suite run in the Prefect UI, read back through the client:
live progress that ends at 100 %, and a cases table that answers "what failed and why"."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import wait_for
from suite_factory import case_src, make_suite

from flows.run_suite import run_suite


def _artifacts(flow_run_id) -> dict[str, object]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return {a.type: a for a in found}


def test_progress_ends_at_100_and_the_failed_case_leads_the_table(tmp_path: Path) -> None:
    suite = make_suite(
        tmp_path / "s", [case_src("good"), case_src("bad", fail_times=5), case_src("also_good", value=2.0)], name="views"
    )
    state = run_suite(suite_path=str(suite), results_root=str(tmp_path / "results"), return_state=True)
    assert state.is_failed()

    artifacts = _artifacts(state.state_details.flow_run_id)
    assert float(artifacts["progress"].data) == 100.0
    assert "3/3 cases done, 1 failed" in artifacts["progress"].description
    rows = artifacts["table"].data
    rows = json.loads(rows) if isinstance(rows, str) else rows
    assert [r["variant"] for r in rows][0] == "bad"
    assert list(rows[0])[:3] == ["variant", "status", "reason"]
    assert rows[0]["status"] == "failed" and "exit code 3" in rows[0]["reason"] and "boom in bad" in rows[0]["reason"]
    assert rows[0]["output_dir"] == "bad"  # relative to the run directory
    assert all(r["reason"] == "" for r in rows[1:])


def test_a_standard_suite_publishes_its_report_with_the_metrics(tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    suite = make_suite(tmp_path / "s", [case_src("low", value=1.5), case_src("high", value=7.25)], name="reported")
    state = run_suite(suite_path=str(suite), results_root=str(tmp_path / "results"), return_state=True)
    assert state.is_completed()
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]))
        )
    (report,) = [a for a in found if a.key and a.key.startswith("report-")]
    assert "7.25" in report.data and "high" in report.data  # the metrics table, in the UI


def test_a_traceback_on_stderr_is_one_log_record_and_the_reason_names_it(tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    suite = make_suite(tmp_path / "s", [case_src("crash")], name="crashy", write_entry=False)
    (suite.parent / "entry.py").write_text(
        "print('working', flush=True)\n"
        "def inner():\n    raise ValueError('the real cause')\n"
        "def outer():\n    inner()\n"
        "outer()\n"
    )
    state = run_suite(suite_path=str(suite), results_root=str(tmp_path / "results"), return_state=True)
    assert state.is_failed()
    def traceback_records() -> list[str]:
        with get_client(sync_client=True) as client:
            logs = client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id]))
            )
        return [log.message for log in logs if "Traceback (most recent call last)" in log.message]

    blocks = wait_for(traceback_records, 60, "the traceback in the run log")  # logs reach the server in batches
    assert len(blocks) == 1  # the whole traceback in one record
    assert "ValueError: the real cause" in blocks[0] and "in outer" in blocks[0] and "in inner" in blocks[0]
    rows = _artifacts(state.state_details.flow_run_id)["table"].data
    rows = json.loads(rows) if isinstance(rows, str) else rows
    assert "ValueError: the real cause" in rows[0]["reason"]


def test_report_and_recover_runs_are_named_and_share_the_experiments_tag(scylla_copy: Path) -> None:
    from prefect.client.orchestration import get_client

    from flows.recover import recover
    from flows.report import report

    rep = report(experiment_dir=str(scylla_copy), return_state=True)
    rec = recover(experiment_dir=str(scylla_copy), return_state=True)
    assert rep.is_completed() and rec.is_completed()
    with get_client(sync_client=True) as client:
        rep_run = client.read_flow_run(rep.state_details.flow_run_id)
        rec_run = client.read_flow_run(rec.state_details.flow_run_id)
    assert rep_run.name == f"report {scylla_copy.parent.name}/{scylla_copy.name}"
    assert {"test-001", "report"} <= set(rep_run.tags)  # the fixture's experiment id: no manifest of ours
    assert "test-001" in rec_run.tags


def test_recover_and_nightly_runs_end_their_progress_at_100(scylla_copy: Path) -> None:
    from recover_helpers import run_paths

    from flows.nightly import nightly_recovery
    from flows.recover import recover

    run_paths(scylla_copy).run_result.unlink()  # a run to regenerate
    rec = recover(experiment_dir=str(scylla_copy), return_state=True)
    assert rec.is_completed()
    progress = _artifacts(rec.state_details.flow_run_id)["progress"]
    assert float(progress.data) == 100.0 and "tasks done" in progress.description

    night = nightly_recovery(results_root=str(scylla_copy.parent), return_state=True)
    assert night.is_completed()
    progress = _artifacts(night.state_details.flow_run_id)["progress"]
    assert float(progress.data) == 100.0 and "1/1 directories done" in progress.description
