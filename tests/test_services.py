"""A Prefect API or Dask setup that cannot work is one ``error:`` line naming it, before
any flow starts, for every command line (no server needed: nothing answers here)."""

from __future__ import annotations

import base64
import http.server
import re
import threading
from pathlib import Path
from typing import Iterator

import pytest
from recover_helpers import run_paths, tree_hash
from server_helpers import free_port, run_py, show
from suite_factory import case_src, make_suite

from experiment_infra.running.services import ServiceError, check_dask_options, check_prefect_api
from experiment_infra.running.slurm import SlurmWorkers

DASK_NEEDS_SERVER = "needs a Prefect server its workers can reach: start one (prefect server start) and set PREFECT_API_URL"


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_unreachable_api_url_is_one_line_naming_it_for_every_command(tmp_path: Path, scylla_copy: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    suite = make_suite(tmp_path / "s", [case_src("a")], name="unreachable")
    root = scylla_copy.parent
    run_paths(scylla_copy).run_result.unlink()  # work to do (with none, a recovery needs no server)
    before = tree_hash(scylla_copy)
    commands = {
        "run_suite": ("flows/run_suite.py", suite, "--results-root", tmp_path / "results"),
        "recover": ("flows/recover.py", scylla_copy),
        "report": ("flows/report.py", scylla_copy),
        "nightly": ("flows/nightly.py", root),
        "serve": ("deployments/serve.py", "--results-root", root),
    }
    for name, args in commands.items():
        proc = run_py(None, *args, env={"PREFECT_API_URL": url}, timeout=300)
        assert proc.returncode == 2, (name, show(proc))
        assert error_lines(proc.stderr) == [
            f"error: PREFECT_API_URL={url} does not answer ([Errno 111] Connection refused); start it "
            "(prefect server start) or unset PREFECT_API_URL to run on a temporary local server"
        ], (name, show(proc))
        assert "Traceback" not in proc.stderr, name
    assert not (tmp_path / "results").exists()
    assert tree_hash(scylla_copy) == before  # nothing written: no report, no lock, no cache


def test_dry_runs_that_never_start_prefect_do_not_need_the_server(scylla_copy: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    proc = run_py(None, "flows/recover.py", scylla_copy, "--dry-run", env={"PREFECT_API_URL": url})
    assert proc.returncode == 0, show(proc)


def test_workers_elsewhere_need_a_real_prefect_server(tmp_path: Path, scylla_copy: Path) -> None:
    # (A local cluster's workers use the command's temporary server: test_scale_out.)
    suite = make_suite(tmp_path / "s", [case_src("a")], name="no_server")
    run_paths(scylla_copy).run_result.unlink()  # work to do (with none, a recovery needs no server)
    for args in (
        ("flows/run_suite.py", suite, "--dask-address", "tcp://127.0.0.1:8786"),
        ("flows/recover.py", scylla_copy, "--slurm-workers", "1"),
        ("flows/nightly.py", scylla_copy.parent, "--dask-address", "tcp://127.0.0.1:8786"),
    ):
        proc = run_py(None, *args)
        assert proc.returncode == 2, show(proc)
        (line,) = error_lines(proc.stderr)
        assert line.endswith(DASK_NEEDS_SERVER) and "Traceback" not in proc.stderr
    both = run_py(None, "flows/run_suite.py", suite, "--dask-workers", "2", "--dask-address", "tcp://x:1")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


def test_dask_option_rules() -> None:
    check_dask_options(None, None, None)  # threads need nothing
    check_dask_options("tcp://h:8786", None, "http://x/api")
    with pytest.raises(ServiceError, match="exclusive"):
        check_dask_options("tcp://h:8786", 2, "http://x/api")
    with pytest.raises(ServiceError, match="--dask-workers must be a positive integer, got 0"):
        check_dask_options(None, 0, "http://x/api")
    with pytest.raises(ServiceError, match=re.escape(f"--dask-workers {DASK_NEEDS_SERVER}")):
        check_dask_options(None, 2, None)
    slurm = SlurmWorkers(jobs=2)
    with pytest.raises(ServiceError, match="^--dask-workers and --slurm-workers are exclusive"):
        check_dask_options(None, 2, "http://x/api", slurm)
    with pytest.raises(ServiceError, match=re.escape(f"--slurm-workers {DASK_NEEDS_SERVER}")):
        check_dask_options(None, None, None, slurm)


def test_slurm_worker_jobs_are_checked_and_asked_for_as_given() -> None:
    for bad, message in (
        (dict(jobs=0), "--slurm-workers must be a positive integer, got 0"),
        (dict(jobs=1, walltime="2 hours"), "--slurm-walltime '2 hours' is not a Slurm time limit: use HH:MM:SS"),
        (dict(jobs=1, directives=("gres=gpu:1",)), "--slurm-directive 'gres=gpu:1' is not an sbatch option"),
        (dict(jobs=1, walltime="04:00:00\n#SBATCH --x"), "is not a Slurm time limit"),  # no lines of its own
        (dict(jobs=1, account="lab\nrm -rf ~"), "--slurm-account 'lab\\nrm -rf ~' is not a Slurm account name"),
        (dict(jobs=1, memory="lots"), "--slurm-memory 'lots' is not a size"),
        (dict(jobs=1, gpus_per_job=0), "--slurm-gpus-per-job must be a positive integer, got 0"),
    ):
        with pytest.raises(ValueError, match=re.escape(message)):
            SlurmWorkers(**bad)  # type: ignore[arg-type]
    for ok in ("30", "1440", "04:00:00", "2-00:00:00", "1-12", "UNLIMITED"):
        assert SlurmWorkers(jobs=1, walltime=ok).walltime == ok
    for ok in ("8GB", "16 GB", "4G", "1.5GiB", "512mb"):
        assert SlurmWorkers(jobs=1, memory=ok).memory == ok
    mine = SlurmWorkers(jobs=3, partition="gpu", memory="16GB", directives=("--gres=gpu:1",))
    kwargs = mine.cluster_kwargs({"memory": "4GB", "cores": 8}, "/shared/logs")
    # What is set wins over dask-jobqueue's configuration, which wins over ours (2GB). A job
    # is one worker with one thread whatever the configuration's cores: those are booked CPUs.
    assert kwargs == dict(
        n_workers=3, processes=1, cores=1, job_cpu=8, memory="16GB", job_name="experiment-infra", queue="gpu",
        log_directory="/shared/logs", job_extra_directives=["--gres=gpu:1"],
    )
    assert SlurmWorkers(jobs=1).cluster_kwargs({}, None)["memory"] == "2GB"
    # GPUs: each job asks Slurm for K, its worker declares GPU=K and runs K tasks at once;
    # the CPUs booked stay the configuration's.
    gpu_jobs = SlurmWorkers(jobs=2, gpus_per_job=2).cluster_kwargs({"worker-extra-args": ["--lifetime", "1h"]}, None)
    assert (gpu_jobs["cores"], gpu_jobs["job_cpu"], gpu_jobs["job_extra_directives"], gpu_jobs["worker_extra_args"]) == (
        2, 1, ["--gres=gpu:2"], ["--lifetime", "1h", "--resources", "GPU=2"]
    )
    assert SlurmWorkers(jobs=1).with_gpus_for(1.5).gpus_per_job == 2  # the largest case fits one job
    assert SlurmWorkers(jobs=1, gpus_per_job=4).with_gpus_for(1).gpus_per_job == 4  # as given


class _NotPrefect(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path.startswith("/locked"):  # a server with basic auth (PREFECT_SERVER_API_AUTH_STRING)
            ok = self.headers.get("Authorization") == "Basic " + base64.b64encode(b"admin:pw").decode()
            code, body = (200, b"true") if ok else (401, b"unauthorized")
        elif self.path.startswith("/html"):
            code, body = 200, b"<html>hello</html>"
        else:
            code, body = 404, b"not found"
        self.send_response(code)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def not_prefect() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotPrefect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_url_that_is_not_a_prefect_api(not_prefect: str) -> None:
    with pytest.raises(ServiceError, match=r"answered HTTP 404 at /health; is it a Prefect API URL \(ending in /api\)\?"):
        check_prefect_api(f"{not_prefect}/wrong")
    with pytest.raises(ServiceError, match="answered /health with something not JSON"):
        check_prefect_api(f"{not_prefect}/html")
    with pytest.raises(ServiceError, match=r"^PREFECT_API_URL=not a url does not answer"):
        check_prefect_api("not a url")
    check_prefect_api(f"{not_prefect}/locked", auth_string="admin:pw")  # the credentials the client would send
    with pytest.raises(ServiceError, match=r"refused the credentials \(HTTP 401\); set PREFECT_API_AUTH_STRING"):
        check_prefect_api(f"{not_prefect}/locked")


def test_serving_a_root_that_does_not_exist_is_refused_at_once(tmp_path: Path) -> None:
    # Every night would only fail: said at once, before a server is asked.
    proc = run_py(None, "deployments/serve.py", "--results-root", tmp_path / "nowhere")
    assert proc.returncode == 2, show(proc)
    assert error_lines(proc.stderr) == [
        f"error: results root {tmp_path / 'nowhere'}: no such directory; pass the directory holding your experiments"
    ]
