"""What the Prefect UI shows, read back through the API client after a real flow run.

Every call below is a server endpoint the UI uses (``/flow_runs/filter``,
``/task_runs/filter``, ``/artifacts/filter``, ``/logs/filter``): a FastAPI version
the Prefect server does not work with answers 422 there, and this test goes red
instead of the UI going blank.
"""

from __future__ import annotations

from pathlib import Path

from suite_factory import case_src, make_suite

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterName,
    LogFilter,
    LogFilterFlowRunId,
    TaskRunFilter,
    TaskRunFilterName,
)
from prefect.logging.handlers import APILogHandler


def test_flow_task_runs_artifacts_and_logs_read_back(prefect_harness, tmp_path: Path) -> None:
    from flows.run_suite import run_suite

    cases = [case_src("alpha"), case_src("beta", fail_times=9)]
    suite = make_suite(tmp_path / "s", cases, name="client_check", extra='task_tags = ["gpu"]')
    state = run_suite(suite_path=str(suite), results_root=str(tmp_path / "results"), return_state=True)
    summary = state.result(raise_on_failure=False)
    run_dir = Path(summary.run_dir)
    flow_run_id = state.state_details.flow_run_id
    APILogHandler().flush()  # logs travel in background batches

    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)
        assert flow_run.name == f"client_check {run_dir.name}"
        assert {"client_check", "standard"} <= set(flow_run.tags)
        assert flow_run.state.is_failed()  # one case failed for good
        assert flow_run.parameters["suite_path"] == str(suite)

        by_name = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[flow_run.name])))
        assert [r.id for r in by_name] == [flow_run_id]

        this_run = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        task_runs = client.read_task_runs(flow_run_filter=this_run)
        assert {r.name: r.state.type.value for r in task_runs} == {"alpha": "COMPLETED", "beta": "FAILED", "reports": "COMPLETED"}
        (beta,) = client.read_task_runs(
            flow_run_filter=this_run, task_run_filter=TaskRunFilter(name=TaskRunFilterName(any_=["beta"]))
        )
        assert beta.tags == ["gpu"]  # the suite's task_tags only: the flow run carries the experiment's

        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
        by_key = {a.key: a for a in artifacts}
        table = by_key["client-check-cases"]
        assert table.type == "table"
        rows = table.data if isinstance(table.data, list) else __import__("json").loads(table.data)
        # Cases that did not complete lead the table.
        assert [(r["variant"], r["status"], r["exit_code"]) for r in rows] == [("beta", "failed", 3), ("alpha", "completed", 0)]
        assert {"duration_s", "output_dir"} <= set(rows[0])
        markdown = by_key["client-check-run"]
        assert str(run_dir) in markdown.data and "nogit" in markdown.data

        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        messages = [log.message for log in logs]
        assert "hello from alpha try 1" in messages  # the entry point's stdout, forwarded
        assert "boom in beta" in messages  # and its stderr


def test_recovery_text_reaches_the_run_log_once(prefect_harness, scylla_copy: Path, capsys) -> None:
    """The survey a recovery prints is in the UI's run log too, and on the terminal once."""
    from flows.recover import recover

    state = recover(experiment_dir=str(scylla_copy), dry_run=True, return_state=True)
    assert state.is_completed()
    APILogHandler().flush()
    out = capsys.readouterr()
    assert (out.out + out.err).count("expected runs: 7; selected: 7") == 1
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id]))
        )
    assert any("expected runs: 7; selected: 7" in log.message for log in logs)
