"""Scale-out on Dask against a real Prefect server: every case runs in a Dask worker
process, never in the flow's own process; and the options that cannot work are refused
with one line before anything starts."""

from __future__ import annotations

import json
import subprocess
import textwrap
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from conftest import FIXTURE, PYTHON, REPO_ROOT
from dask_task_log import dask_task_log_env, logged_tasks
from recover_helpers import run_paths
from server_helpers import PrefectServer, free_port, run_py, show

from experiment_infra.layout import SuiteRunPaths

pytestmark = pytest.mark.server

CONFIG = '''
from experiment_infra import BaseExperimentConfig


class WhereConfig(BaseExperimentConfig):
    label: str = "x"
    rendezvous: str = ""   # a directory: wait here until the other case of the pair has started too
    wait_seconds: float = 300.0
'''

# Records which process started it: the process that ran the case's task (the parent of
# the case's waiter, the small process between a runner and every entry point).
ENTRY = '''
import json, os, sys, time
from pathlib import Path

from {cfg} import WhereConfig

from experiment_infra.files.atomic import atomic_write_json
from experiment_infra.layout import CasePaths


def parent_of(pid):
    stat = Path(f"/proc/{{pid}}/stat").read_text()
    return int(stat[stat.rfind(")") + 2:].split()[1])


cfg = WhereConfig.from_cli()
ppid = os.getppid()
# Up past the case's waiter and the waiter server that forked it (its command line is the
# server's) to the process that ran the case's task.
while any(w in Path(f"/proc/{{ppid}}/cmdline").read_bytes() for w in (b"case_waiter.py", b"waiter_server.py")):
    ppid = parent_of(ppid)
grandparent = parent_of(ppid)
if cfg.rendezvous:
    # Both halves of a pair must be running at once: proof of two worker processes
    # (each has one thread), not a timing assertion.
    here = Path(cfg.rendezvous)
    here.mkdir(exist_ok=True)
    (here / cfg.label).touch()
    deadline = time.monotonic() + cfg.wait_seconds
    while len(list(here.iterdir())) < 2:
        if time.monotonic() > deadline:
            print("the other half of the pair never started", file=sys.stderr)
            sys.exit(4)
        time.sleep(0.2)
# The Slurm job it ran in, if any (its worker is a batch job; -1: none).
slurm_job = int(os.environ.get("SLURM_JOB_ID", "-1"))
atomic_write_json(CasePaths(Path(cfg.output_dir)).metrics, {{"ppid": ppid, "grandparent": grandparent, "slurm_job": slurm_job}})
'''

SUITE = '''
from {cfg} import WhereConfig

from experiment_infra import ExperimentCase

experiment_name = {name!r}
entry_point = "entry.py"
retries = 0
cases = [
    ExperimentCase("left", WhereConfig(label="left", rendezvous={pair!r})),
    ExperimentCase("right", WhereConfig(label="right", rendezvous={pair!r})),
    ExperimentCase("solo1", WhereConfig(label="solo1")),
    ExperimentCase("solo2", WhereConfig(label="solo2")),
]
'''

CLUSTER = textwrap.dedent(
    """
    import json, os, sys
    from distributed import Client, LocalCluster

    if __name__ == "__main__":
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            with Client(cluster) as client:
                pids = sorted(client.run(os.getpid).values())
            print(json.dumps({"address": cluster.scheduler_address, "pids": pids}), flush=True)
            sys.stdin.read()  # until the test closes stdin
    """
)


def where_suite(where: Path, name: str) -> Path:
    """A suite whose config module sits next to it (the workers cannot import it by name)."""
    where.mkdir(parents=True)
    cfg = f"where_cfg_{uuid.uuid4().hex[:8]}"
    (where / f"{cfg}.py").write_text(CONFIG)
    (where / "entry.py").write_text(textwrap.dedent(ENTRY.format(cfg=cfg)))
    suite = where / "suite_where.py"
    suite.write_text(SUITE.format(cfg=cfg, name=name, pair=str(where / "pair")))
    return suite


def case_parents(results: Path, name: str) -> dict[str, dict[str, int]]:
    (run_dir,) = (results / name).iterdir()
    run = SuiteRunPaths(run_dir)
    return {v: json.loads(run.case(v).metrics.read_text()) for v in ("left", "right", "solo1", "solo2")}


@pytest.fixture
def dask_cluster(prefect_server: PrefectServer, tmp_path: Path) -> Iterator[dict[str, object]]:
    """A distributed.LocalCluster of two worker processes, in a process of its own, like a user's scheduler."""
    script = tmp_path / "cluster.py"
    script.write_text(CLUSTER)
    proc = subprocess.Popen(
        [PYTHON, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True, env=prefect_server.env(), start_new_session=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line, "the Dask cluster did not start"
        yield json.loads(line)
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def run_flow_proc(server: PrefectServer, script: str, *args: str | Path, env: dict[str, str] | None = None,
                  ) -> tuple[subprocess.CompletedProcess[str], int]:
    """``python flows/SCRIPT ARGS`` reporting to ``server``; (result, the flow process's pid)."""
    proc = subprocess.Popen(
        [PYTHON, str(REPO_ROOT / "flows" / script), *map(str, args)], cwd=REPO_ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=server.env(**(env or {})),
    )
    out, err = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), proc.pid


def run_suite_proc(server: PrefectServer, *args: str | Path) -> tuple[subprocess.CompletedProcess[str], int]:
    """``python flows/run_suite.py ARGS`` reporting to ``server``; (result, the flow process's pid)."""
    return run_flow_proc(server, "run_suite.py", *args)


def test_suite_on_an_existing_dask_cluster(prefect_server: PrefectServer, dask_cluster: dict, tmp_path: Path) -> None:
    suite = where_suite(tmp_path / "exp", "on_dask")
    results = tmp_path / "results"
    done, flow_pid = run_suite_proc(prefect_server, suite, "--results-root", results, "--dask-address", dask_cluster["address"])
    assert done.returncode == 0, show(done)
    parents = case_parents(results, "on_dask")
    workers = set(dask_cluster["pids"])
    assert len(workers) == 2
    assert {v: p["ppid"] in workers for v, p in parents.items()} == dict.fromkeys(parents, True)
    assert flow_pid not in {p["ppid"] for p in parents.values()}
    assert parents["left"]["ppid"] != parents["right"]["ppid"]  # the pair ran at once, one per worker


def test_suite_on_a_local_cluster_of_worker_processes(prefect_server: PrefectServer, tmp_path: Path) -> None:
    suite = where_suite(tmp_path / "exp", "local_dask")
    results = tmp_path / "results"
    done, flow_pid = run_suite_proc(prefect_server, suite, "--results-root", results, "--dask-workers", "2")
    assert done.returncode == 0, show(done)
    parents = case_parents(results, "local_dask")
    for variant, p in parents.items():
        # Started by a worker process (the flow process's child), not by the flow's process.
        assert p["ppid"] != flow_pid and p["grandparent"] == flow_pid, (variant, p, flow_pid)
    assert parents["left"]["ppid"] != parents["right"]["ppid"]


def recover_regenerates(server: PrefectServer, exp_dir: Path, task_log: Path, *cluster: str) -> tuple[list[dict], int]:
    """Delete a run's agent/result.json and run_result.json, recover with ``cluster``'s
    options, and check both files are rebuilt as the fixture has them. Returns the tasks
    the Dask workers ran (tests/dask_task_log.py, logged into ``task_log``) and the flow's pid."""
    paths = run_paths(exp_dir)
    paths.agent_result.unlink()
    paths.run_result.unlink()
    proc, flow_pid = run_flow_proc(server, "recover.py", exp_dir, *cluster, env=dask_task_log_env(task_log))
    assert proc.returncode == 0, show(proc)
    original = run_paths(FIXTURE)
    for new_file, old_file in ((paths.run_result, original.run_result), (paths.agent_result, original.agent_result)):
        regenerated, before = json.loads(new_file.read_text()), json.loads(old_file.read_text())
        # Absolute paths point into this copy now; everything else is rebuilt as it was.
        assert {k: v for k, v in regenerated.items() if not k.endswith("_path")} == {
            k: v for k, v in before.items() if not k.endswith("_path")
        }
    tasks = logged_tasks(task_log)
    # The rebuild itself ran on a Dask worker (with threads in the flow's process, none is logged).
    assert any(t["key"].startswith("regenerate") for t in tasks), tasks
    assert all(t["pid"] != flow_pid for t in tasks), (tasks, flow_pid)
    return tasks, flow_pid


def test_recovery_on_a_local_dask_cluster(prefect_server: PrefectServer, scylla_copy: Path, tmp_path: Path) -> None:
    tasks, flow_pid = recover_regenerates(prefect_server, scylla_copy, tmp_path / "tasks", "--dask-workers", "2")
    # The workers are the processes of the LocalCluster the flow started: its children.
    assert {t["ppid"] for t in tasks} == {flow_pid}, (tasks, flow_pid)
    assert all(t["slurm_job"] == -1 for t in tasks)


def test_dask_address_that_does_not_answer(prefect_server: PrefectServer, tmp_path: Path, scylla_copy: Path) -> None:
    suite = where_suite(tmp_path / "exp", "nowhere")
    run_paths(scylla_copy).run_result.unlink()  # work to do (with none, a recovery needs no scheduler)
    address = f"tcp://127.0.0.1:{free_port()}"
    for args in (("flows/run_suite.py", suite, "--results-root", tmp_path / "results"), ("flows/recover.py", scylla_copy)):
        proc = run_py(prefect_server, *args, "--dask-address", address)
        assert proc.returncode == 2, show(proc)
        (line,) = [text for text in proc.stderr.splitlines() if text.startswith("error:")]
        assert line.startswith(f"error: Dask scheduler {address} does not answer within 5 s")
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "results").exists()


def test_a_local_cluster_needs_no_server_of_the_users(tmp_path: Path) -> None:
    # No PREFECT_API_URL: the command's own temporary server, which the workers on this
    # machine reach over HTTP (Prefect's in-process one would lock its SQLite file).
    suite = where_suite(tmp_path / "exp", "serverless_dask")
    results = tmp_path / "results"
    done = run_py(None, "flows/run_suite.py", suite, "--results-root", results, "--dask-workers", "2",
                  env={"PREFECT_HOME": str(tmp_path / "prefect-home")})
    assert done.returncode == 0, show(done)
    parents = case_parents(results, "serverless_dask")
    assert parents["left"]["ppid"] != parents["right"]["ppid"]  # two worker processes at once
    assert "database is locked" not in done.stderr
