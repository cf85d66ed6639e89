"""GPUs on Dask: a case's ``gpus`` becomes the worker resource ``GPU``, and the worker that
runs it hands it devices of its own (its ``CUDA_VISIBLE_DEVICES``), never one another case
on that worker holds. Real Dask (``dask scheduler`` / ``dask worker --resources GPU=2`` as a
user starts them, and the local cluster of ``--dask-workers``), a real Prefect server,
explicit device lists: no GPU needed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from contextlib import contextmanager
from typing import Callable, Iterator

import pytest
from conftest import PYTHON
from server_helpers import PrefectServer, free_port, run_py, show
from suite_factory import gpu_suite

from experiment_cli.run_suite import main
from experiment_infra import CasePaths, load_record
from experiment_infra.layout import SuiteRunPaths
from experiment_infra.records import RunRecord

NAME = "dgpus"  # the suites' experiment name


def one_gpu_cases(n: int) -> list[str]:
    return [f'    ExperimentCase("c{i}", DemoConfig(label="c{i}", sleep={0.4 + 0.1 * (i % 3)})),' for i in range(n)]


def held(results: Path, n: int) -> list[dict]:
    """What each case saw, with its run record's host and devices."""
    (run_dir,) = (results / NAME).iterdir()
    out = []
    for i in range(n):
        seen = json.loads((run_dir / f"c{i}" / "seen.json").read_text())
        record = load_record(CasePaths(run_dir / f"c{i}").run_record, RunRecord)
        out.append({**seen, "host": record.host, "gpus": record.gpus})
    return out


def assert_no_device_shared(cases: list[dict]) -> None:
    spans: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for c in cases:
        assert c["gpus"] == [c["devices"]], c  # the record names the one device the case saw
        spans.setdefault((c["host"], c["devices"]), []).append((c["start"], c["end"]))
    for device, times in spans.items():
        times.sort()
        for (_, end), (start, _) in zip(times, times[1:]):
            assert start >= end, f"{device} ran two cases at once"


def wait_for_workers(address: str, count: int) -> None:
    from distributed import Client

    with Client(address, timeout=60, set_as_default=False) as client:
        client.wait_for_workers(count, timeout=120)


@contextmanager
def dask_cluster(server: PrefectServer, **scheduler_env: str) -> Iterator[tuple[str, Callable[..., None]]]:
    """``dask scheduler`` on a free port (its environment plus ``scheduler_env``), and a starter
    of its workers (``start(env, *args)``); all of them stopped at the end."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = str(Path(PYTHON).with_name("dask"))
    procs = [subprocess.Popen(
        [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        env=server.env(**scheduler_env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )]

    def start(env: dict[str, str], *args: str) -> None:
        procs.append(subprocess.Popen(
            [dask, "worker", address, "--no-dashboard", *args], env=server.env(**env),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        ))

    try:
        yield address, start
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)


@pytest.fixture
def dask_processes(prefect_server: PrefectServer) -> Iterator[tuple[str, list]]:
    """``dask scheduler`` on a free port; the test starts its workers (``start(env, *args)``)."""
    with dask_cluster(prefect_server) as (address, start):
        yield address, [start]


@pytest.mark.server
def test_gpu_cases_on_a_schedulers_workers_each_get_their_workers_own_device(
    prefect_server: PrefectServer, dask_processes: tuple[str, list], tmp_path: Path, capsys
) -> None:
    address, (start_worker,) = dask_processes
    suite = gpu_suite(tmp_path / "s", one_gpu_cases(8), extra="gpus = 1", name=NAME)
    results = tmp_path / "results"

    # A worker that declares no GPU: the run is refused before anything runs, not left waiting.
    start_worker({"GPU_TEST_WORKER": "plain"}, "--nthreads", "1")
    wait_for_workers(address, 1)
    assert main([str(suite), "--results-root", str(results), "--dask-address", address]) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith(f"error: case 'c0' asks for 1 GPU(s) but no worker of the Dask scheduler {address} "
                          "declares a GPU resource (1 worker(s)); start each worker with its devices declared")
    assert not results.exists()

    # Two workers as a user starts them, each with two devices of its own.
    for name, devices in (("w0", "0,1"), ("w1", "2,3")):
        start_worker({"GPU_TEST_WORKER": name, "CUDA_VISIBLE_DEVICES": devices}, "--nthreads", "2", "--resources", "GPU=2")
    wait_for_workers(address, 3)

    big = gpu_suite(tmp_path / "big", ['    ExperimentCase("big", DemoConfig(label="big"), gpus=3),'], name=NAME)
    assert main([str(big), "--results-root", str(results), "--dask-address", address]) == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith(
        f"error: case 'big' asks for 3 GPU(s) but the workers of the Dask scheduler {address} declare at most 2"
    )

    done = run_py(prefect_server, "flows/run_suite.py", suite, "--results-root", results, "--dask-address", address)
    assert done.returncode == 0, show(done)
    cases = held(results, 8)
    shares = {"w0": {"0", "1"}, "w1": {"2", "3"}}
    for c in cases:
        assert c["devices"] in shares[c["worker"]], c  # a device of the worker that ran it (never the plain one)
    assert_no_device_shared(cases)
    assert {c["worker"] for c in cases} == {"w0", "w1"}  # both workers' devices had work


@pytest.mark.server
def test_local_dask_workers_split_the_listed_devices(prefect_server: PrefectServer, tmp_path: Path, capsys) -> None:
    suite = gpu_suite(tmp_path / "s", one_gpu_cases(6), name=NAME)
    results = tmp_path / "results"
    args = ["--results-root", str(results), "--dask-workers", "2", "--gpus", "0,1,2,3"]

    assert main([str(suite), *args, "--dry-run"]) == 0  # no Prefect, no cluster
    dry = capsys.readouterr().out
    assert "GPUs on 2 local Dask workers (0,1 | 2,3)" in dry and "[gpus 1, cpus 1]" in dry
    big = gpu_suite(tmp_path / "big", ['    ExperimentCase("big", DemoConfig(label="big"), gpus=3),'], name=NAME)
    assert main([str(big), *args]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "error: case 'big' asks for 3 GPU(s) but each local Dask worker has at most 2 (--gpus split across "
        "--dask-workers 2: 0,1 | 2,3); ask for fewer, pass more with --gpus or use fewer workers"
    )
    assert not results.exists()

    # The flag's list wins over what this machine shows.
    done = run_py(prefect_server, "flows/run_suite.py", suite, *args, env={"CUDA_VISIBLE_DEVICES": "9"})
    assert done.returncode == 0, show(done)
    cases = held(results, 6)
    assert {c["devices"] for c in cases} <= {"0", "1", "2", "3"}
    assert_no_device_shared(cases)
    used = {c["devices"] for c in cases}
    assert used & {"0", "1"} and used & {"2", "3"}  # both workers' shares had work
    (run_dir,) = (results / NAME).iterdir()
    report = SuiteRunPaths(run_dir).report_md.read_text()
    assert "| Devices |" in report and all(f"{c['host']}: {c['devices']}" in report for c in cases)


# What a case's parameters carry to a worker, and what that worker makes of it: its own pool.
ON_A_WORKER = """
import pickle
from experiment_infra.running.worker_devices import WorkerDevices, WorkerDevicesError

one, two = (pickle.loads(pickle.dumps(WorkerDevices())) for _ in range(2))
assert one is two, "one pool per worker process"
with one.hold(1, 1) as a, two.hold(1, 1) as b:
    print(a.gpus, b.gpus)
try:
    with one.hold(3, 1):
        pass
except WorkerDevicesError as exc:
    print(exc)
"""


def test_a_worker_hands_out_its_own_devices_and_refuses_what_it_does_not_show(tmp_path: Path) -> None:
    done = run_py(None, "-c", ON_A_WORKER, env={"CUDA_VISIBLE_DEVICES": "4,5"})
    assert done.returncode == 0, show(done)
    held_line, refused = done.stdout.splitlines()
    assert held_line == "('4',) ('5',)"
    assert refused.endswith("shows 2 GPU(s) (4, 5) but the case asks for 3; give the worker CUDA_VISIBLE_DEVICES "
                            "naming as many devices as its --resources GPU=N")
