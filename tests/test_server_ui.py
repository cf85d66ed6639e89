"""What the Prefect UI shows for a suite run and its recoveries, against a real
`prefect server start` process: the commands run as a user runs them (subprocesses
with PREFECT_API_URL), then the server is read back through the client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import git
from recover_helpers import RUN, run_paths
from server_helpers import PrefectServer, client_for, run_py, show
from suite_factory import case_src, make_suite

from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterName,
)
from prefect.client.schemas.sorting import FlowRunSort

pytestmark = pytest.mark.server


def flow_runs_named(client: Any, name: str) -> list[Any]:
    return client.read_flow_runs(
        flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])), sort=FlowRunSort.START_TIME_ASC
    )


def task_states(client: Any, flow_run_id: Any) -> dict[str, tuple[str, str]]:
    runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {r.name: (r.state.type.value, r.state.name) for r in runs}


def artifacts_of(client: Any, flow_run_id: Any) -> dict[str, Any]:
    found = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return {a.key: a for a in found}


def table_rows(artifact: Any) -> list[dict[str, Any]]:
    return artifact.data if isinstance(artifact.data, list) else json.loads(artifact.data)


def test_suite_run_and_its_recovery_as_the_ui_shows_them(prefect_server: PrefectServer, git_repo: Path, tmp_path: Path) -> None:
    flag = tmp_path / "beta-fails"
    flag.write_text("until recovered")
    suite = make_suite(git_repo / "exp", [case_src("alpha"), case_src("beta", flag_file=str(flag))], name="ui_suite")
    git(git_repo, "add", ".")
    git(git_repo, "commit", "-q", "-m", "suite")
    sha = git(git_repo, "rev-parse", "HEAD")
    results = tmp_path / "results"

    first = run_py(prefect_server, "flows/run_suite.py", suite, "--results-root", results)
    assert first.returncode == 1, show(first)
    (run_dir,) = (results / "ui_suite").iterdir()
    flag.unlink()
    recovered = run_py(prefect_server, "flows/recover.py", run_dir)
    assert recovered.returncode == 0, show(recovered)

    with client_for(prefect_server) as client:
        # The suite's flow runs: the first (failed), then the rerun the recovery started.
        original, rerun = flow_runs_named(client, f"ui_suite {run_dir.name}")
        assert original.state.type.value == "FAILED" and rerun.state.type.value == "COMPLETED"
        assert {"ui_suite", "standard"} <= set(original.tags)
        assert original.parameters["suite_path"] == str(suite)
        reports = {"reports": ("COMPLETED", "Completed")}  # each suite run ends by rebuilding its report
        assert task_states(client, original.id) == {"alpha": ("COMPLETED", "Completed"), "beta": ("FAILED", "Failed"), **reports}
        assert task_states(client, rerun.id) == {"alpha": ("COMPLETED", "Skipped"), "beta": ("COMPLETED", "Completed"), **reports}

        arts = artifacts_of(client, original.id)
        rows = table_rows(arts["ui-suite-cases"])
        assert [(r["variant"], r["status"]) for r in rows] == [("beta", "failed"), ("alpha", "completed")]  # failures first
        markdown = arts["ui-suite-run"].data
        assert str(run_dir) in markdown and sha in markdown and "-dirty" not in markdown

        (recovery,) = flow_runs_named(client, f"recover ui_suite/{run_dir.name}")
        assert recovery.state.type.value == "COMPLETED"
        assert rerun.parent_task_run_id is not None  # shown nested under the recovery
        assert {"ui_suite", "standard", "recover"} <= set(recovery.tags)
        arts = artifacts_of(client, recovery.id)
        table = next(a for a in arts.values() if a.type == "table")
        assert "1 of 1 planned run(s) done" in table.description
        (md,) = [a for a in arts.values() if a.type == "markdown"]
        assert str(run_dir) in md.data and sha in md.data  # the results' git provenance, from the manifest


def test_agent_eval_recovery_as_the_ui_shows_it(prefect_server: PrefectServer, scylla_copy: Path) -> None:
    paths = run_paths(scylla_copy)
    paths.agent_result.unlink()
    paths.run_result.unlink()

    proc = run_py(prefect_server, "flows/recover.py", scylla_copy)
    assert proc.returncode == 0, show(proc)
    assert paths.agent_result.is_file() and paths.run_result.is_file()

    with client_for(prefect_server) as client:
        (recovery,) = flow_runs_named(client, f"recover {scylla_copy.parent.name}/{scylla_copy.name}")
        assert recovery.state.type.value == "COMPLETED"
        assert {"test-001", "agent_eval", "recover"} <= set(recovery.tags)
        label = f"{RUN[0]}/{RUN[1]}/run_{RUN[2]:02d}"
        tasks = task_states(client, recovery.id)  # regeneration in one task run per tier, then the reports
        assert tasks[f"regenerate {RUN[0]}"] == ("COMPLETED", "Completed")
        assert tasks["reports"] == ("COMPLETED", "Completed")
        assert not any(name.split()[-1].startswith(("T0", "T2", "T3", "T4", "T5", "T6")) for name in tasks)
        arts = artifacts_of(client, recovery.id)
        table = next(a for a in arts.values() if a.type == "table")
        rows = {r["item"]: r for r in table_rows(table)}
        assert rows["runs results"]["before"] == 1 and rows["runs results"]["after"] == 0
        assert rows[label]["after"] == "completed"  # every planned run's outcome
        assert any(key.startswith("report-") for key in arts)  # the reports task's artifact, with the plots
        (md,) = [a for a in arts.values() if a.type == "markdown" and a.key.startswith("recovery-")]
        assert str(scylla_copy) in md.data and "results made by git: not recorded" in md.data
