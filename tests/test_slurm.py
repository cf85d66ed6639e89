"""Scale-out on Slurm (dask-jobqueue's SLURMCluster), on a real one-node cluster that
``.ci/slurm-setup`` starts: every case runs inside a Slurm batch job, a recovery's tasks
too; the jobs end with the run; a request Slurm would refuse is one line before anything
is written."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from prerequisites import missing
from server_helpers import PrefectServer, run_py, show
from test_scale_out import case_parents, recover_regenerates, run_suite_proc, where_suite

from experiment_infra.layout import ExperimentPaths, SuiteRunPaths
from experiment_infra.records import RunRecord, load_record
from experiment_infra.running.slurm import slurm_client_problem

NO_SLURM = slurm_client_problem()
pytestmark = [pytest.mark.server, pytest.mark.slurm]

# The one-node cluster's workers reach the flow's scheduler on loopback. On a real cluster
# this is the interface the compute nodes share with the login node (ib0, eth0, ...), set
# in dask's jobqueue configuration the same way.
SLURM_ENV = {"DASK_JOBQUEUE__SLURM__INTERFACE": "lo"}


def our_jobs() -> list[str]:
    """The project's worker jobs Slurm still knows as pending or running."""
    out = subprocess.run(["squeue", "-h", "-n", "experiment-infra", "-o", "%i %T"], capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.fixture
def slurm_server(prefect_server: PrefectServer, monkeypatch: pytest.MonkeyPatch) -> PrefectServer:
    if NO_SLURM is not None:  # CI starts one with .ci/slurm-setup: there this is a failure
        missing(f"needs a Slurm cluster (.ci/slurm-setup starts one): {NO_SLURM}")
    for key, value in SLURM_ENV.items():
        monkeypatch.setenv(key, value)  # server.env() copies this process's environment
    return prefect_server


def test_every_case_runs_in_a_slurm_job(slurm_server: PrefectServer, tmp_path: Path) -> None:
    suite = where_suite(tmp_path / "exp", "on_slurm")
    results = tmp_path / "results"
    done, _ = run_suite_proc(slurm_server, suite, "--results-root", results, "--slurm-workers", "2", "--slurm-walltime", "00:10:00")
    assert done.returncode == 0, show(done)
    jobs = {variant: p["slurm_job"] for variant, p in case_parents(results, "on_slurm").items()}
    assert all(job > 0 for job in jobs.values()), jobs
    assert jobs["left"] != jobs["right"]  # the pair ran at once: two workers, two jobs
    (run_dir,) = (results / "on_slurm").iterdir()
    for variant, job in jobs.items():  # each attempt's run record names its job and node
        code = load_record(SuiteRunPaths(run_dir).case(variant).run_record, RunRecord).code
        assert code is not None and code.slurm_job_id == str(job) and code.slurm_node, code
    logs = SuiteRunPaths(run_dir).slurm_logs
    assert {p.name for p in logs.iterdir()} >= {f"experiment-infra-{job}.err" for job in set(jobs.values())}
    assert our_jobs() == []  # cancelled with the run


def test_a_recovery_runs_its_tasks_in_slurm_jobs(slurm_server: PrefectServer, scylla_copy: Path, tmp_path: Path) -> None:
    tasks, _ = recover_regenerates(slurm_server, scylla_copy, tmp_path / "tasks", "--slurm-workers", "1")
    assert all(t["slurm_job"] > 0 for t in tasks), tasks  # every task ran in a worker inside a Slurm job
    logs = ExperimentPaths(scylla_copy).slurm_logs
    assert any(p.suffix == ".err" for p in logs.iterdir())  # a worker job ran for it
    assert our_jobs() == []


@pytest.mark.parametrize(
    "args, message",
    [
        (("--slurm-workers", "1", "--slurm-partition", "nosuch"),
         "error: --slurm-workers: Slurm would refuse the worker jobs (allocation failure: Invalid partition name specified)"),
        (("--slurm-workers", "1", "--slurm-walltime", "99:00:00"),
         "error: --slurm-workers: Slurm would refuse the worker jobs (allocation failure: Requested time limit is invalid"),
        (("--slurm-workers", "1", "--slurm-walltime", "2h"), "error: argument --slurm-walltime: --slurm-walltime '2h' is not a Slurm time limit"),
        (("--slurm-memory", "4GB",), "error: --slurm-memory applies to Slurm worker jobs only: add --slurm-workers N"),
        (("--slurm-workers", "1", "--dask-workers", "2"), "error: argument --dask-workers: not allowed with argument --slurm-workers"),
        (("--slurm-workers", "1", "--slurm-memory", "lots"), "error: argument --slurm-memory: --slurm-memory 'lots' is not a size"),
        (("--slurm-workers", "1", "--slurm-partition", "debug\n#SBATCH --x"), "error: --slurm-partition 'debug\\n#SBATCH --x' is not a Slurm partition name"),
        # dask-jobqueue's own configuration, wrong: refused as one line too
        (("--slurm-workers", "1", "env:DASK_JOBQUEUE__SLURM__INTERFACE=nosuch0"), "error: --slurm-workers: the worker jobs cannot be set up"),
    ],
)
def test_a_request_slurm_would_refuse_is_one_line(slurm_server: PrefectServer, tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    suite = where_suite(tmp_path / "exp", "refused")
    env = dict(a[4:].split("=", 1) for a in args if a.startswith("env:"))
    args = tuple(a for a in args if not a.startswith("env:"))
    proc = run_py(slurm_server, "flows/run_suite.py", suite, "--results-root", tmp_path / "results", *args, env=env)
    assert proc.returncode == 2, show(proc)
    (line,) = [text for text in proc.stderr.splitlines() if text.startswith("error:")]
    assert line.startswith(message) and "Traceback" not in proc.stderr, show(proc)
    assert not (tmp_path / "results").exists() and our_jobs() == []
