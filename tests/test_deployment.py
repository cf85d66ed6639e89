"""The nightly-recovery deployment on a real Prefect server: registered by
``deployments/serve.py`` (and by ``prefect deploy`` from deployments/prefect.yaml) with
its schedules and editable parameters, and a triggered run that repairs a damaged
experiment directory, run by serve.py or by a real ``prefect worker start --pool local``."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import PYTHON, REPO_ROOT, wait_for
from recover_helpers import run_paths
from server_helpers import PrefectServer, client_for, run_py, show

from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId, LogFilter, LogFilterFlowRunId
from prefect.exceptions import ObjectNotFound

pytestmark = pytest.mark.server

DEPLOYMENT = "nightly_recovery/nightly-recovery"
PARAMETERS = {
    "results_root", "dry_run", "statuses", "tiers", "judges_only", "agents_only", "parallelism", "allow_code_change",
}


def read_deployment(server: PrefectServer) -> Any:
    with client_for(server) as client:
        try:
            return client.read_deployment_by_name(DEPLOYMENT)
        except ObjectNotFound:
            return None


def schedules_of(deployment: Any) -> dict[str, tuple[bool, str, str, dict[str, Any]]]:
    return {
        s.slug: (s.active, s.schedule.cron, s.schedule.timezone, dict(s.parameters or {})) for s in deployment.schedules
    }


@pytest.fixture
def served(prefect_server: PrefectServer, scylla_copy: Path, tmp_path: Path) -> Iterator[tuple[Path, Any]]:
    """``python deployments/serve.py`` running against the server, over a root holding the fixture copy."""
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [PYTHON, str(REPO_ROOT / "deployments" / "serve.py"), "--results-root", str(scylla_copy.parent),
         "--cron", "30 3 * * *", "--timezone", "Europe/Berlin"],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=prefect_server.env(), start_new_session=True,
    )
    try:
        def registered() -> Any:
            return "exited" if proc.poll() is not None else read_deployment(prefect_server)

        deployment = wait_for(registered, 300, "serve.py to register the deployment", interval=1.0)
        assert deployment != "exited", (tmp_path / "serve.log").read_text()
        yield scylla_copy, deployment
    finally:
        stop_group(proc)
        log.close()


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Ctrl-C to the process group a test started (``start_new_session``), as a user stops it;
    SIGKILL if it is still there a minute later."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def test_served_deployment_runs_and_repairs_a_damaged_experiment(prefect_server: PrefectServer, served) -> None:
    exp, deployment = served
    assert schedules_of(deployment) == {
        "nightly": (True, "30 3 * * *", "Europe/Berlin", {}),
        "nightly-dry-run": (False, "30 3 * * *", "Europe/Berlin", {"dry_run": True}),
    }
    assert deployment.parameters == {"results_root": str(exp.parent), "dry_run": False}
    assert PARAMETERS <= set(deployment.parameter_openapi_schema["properties"])  # the UI's edit form
    assert deployment.entrypoint == "flows/nightly.py:nightly_recovery"

    nightly_repairs(prefect_server, deployment.id, exp)


def nightly_repairs(server: PrefectServer, deployment_id: Any, exp: Path, **parameters: Any) -> Any:
    """Damage ``exp``, trigger a run of the deployment (with ``parameters``), wait for it to end
    and check, read back from the server, that it completed and recovered ``exp``, whose two
    rebuilt files are on disk again. Returns the flow run as the server has it."""
    paths = run_paths(exp)
    paths.agent_result.unlink()
    paths.run_result.unlink()
    with client_for(server) as client:
        flow_run = client.create_flow_run_from_deployment(deployment_id, parameters=parameters or None)
        done = wait_for(
            lambda: (r := client.read_flow_run(flow_run.id)).state.is_final() and r, 480, "the triggered nightly run",
            interval=1.0,
        )
        assert done.state.type.value == "COMPLETED", done.state.message
        assert "1 recovered" in (done.state.message or "")
        (child,) = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run.id]))
        )
        assert child.name == f"recover {exp.parent.name}/{exp.name}" and child.state.type.value == "COMPLETED"
        assert "nightly" in child.tags
    assert paths.agent_result.is_file() and paths.run_result.is_file()
    return done


@pytest.fixture
def pool_deployment(prefect_server: PrefectServer) -> Any:
    """The README's work-pool route: a `process` pool named local, and deployments/prefect.yaml deployed to it."""
    prefect = str(Path(PYTHON).with_name("prefect"))
    env = prefect_server.env()
    for args in (["work-pool", "create", "--type", "process", "--overwrite", "local"],
                 ["--no-prompt", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml"]):
        proc = subprocess.run([prefect, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, show(proc)
    return read_deployment(prefect_server)


def test_prefect_yaml_declares_the_same_deployment_for_a_work_pool(pool_deployment: Any) -> None:
    deployment = pool_deployment
    assert deployment.work_pool_name == "local"
    assert schedules_of(deployment) == {
        "nightly": (True, "0 2 * * *", "UTC", {}),
        "nightly-dry-run": (False, "0 2 * * *", "UTC", {"dry_run": True}),
    }
    assert PARAMETERS <= set(deployment.parameters) and deployment.parameters["dry_run"] is False
    assert deployment.entrypoint == "flows/nightly.py:nightly_recovery"


@pytest.fixture
def pool_worker(prefect_server: PrefectServer, tmp_path: Path) -> Iterator[Path]:
    """``prefect worker start --pool local`` running against the server (its log's path);
    stopped with Ctrl-C at the end, as a user stops it."""
    log_path = tmp_path / "worker.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [str(Path(PYTHON).with_name("prefect")), "worker", "start", "--pool", "local", "--name", "tests-worker"],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=prefect_server.env(), start_new_session=True,
    )
    try:
        yield log_path
        assert proc.poll() is None, log_path.read_text()  # still polling: it did not die along the way
    finally:
        stop_group(proc)
        log.close()


def test_a_pool_worker_runs_the_nightly_deployment_to_the_end(
    prefect_server: PrefectServer, pool_deployment: Any, pool_worker: Path, scylla_copy: Path
) -> None:
    # Triggered as "Run > Custom run" in the UI does, with results_root pointing at the experiment's root.
    done = nightly_repairs(prefect_server, pool_deployment.id, scylla_copy, results_root=str(scylla_copy.parent))
    assert done.work_pool_name == "local" and done.infrastructure_pid  # the process a worker started for it
    # The run's own log on the server names the worker that took it.
    submitted = f"Worker 'tests-worker' submitting flow run '{done.id}'"
    with client_for(prefect_server) as client:
        def worker_said() -> bool:
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[done.id])))
            return any(submitted in log.message for log in logs)

        wait_for(worker_said, 120, f"the run's log to say {submitted!r}", interval=1.0)


def test_serve_refuses_bad_schedules_and_roots(prefect_server: PrefectServer, tmp_path: Path) -> None:
    cases = {
        ("--cron", "every night"): "error: --cron 'every night': not a cron expression",
        ("--timezone", "Mars/Olympus"): "error: --timezone 'Mars/Olympus': unknown time zone",
        ("--results-root", str(tmp_path / "nowhere")): f"error: results root {tmp_path / 'nowhere'}: no such directory",
    }
    for args, message in cases.items():
        extra = () if args[0] == "--results-root" else ("--results-root", str(tmp_path))
        proc = run_py(prefect_server, "deployments/serve.py", *args, *extra, timeout=120)
        assert proc.returncode == 2 and proc.stderr.startswith(message), show(proc)
        assert "Traceback" not in proc.stderr
    no_server = run_py(None, "deployments/serve.py", "--results-root", str(tmp_path), timeout=120)
    assert no_server.returncode == 2 and "needs a Prefect server" in no_server.stderr, show(no_server)

