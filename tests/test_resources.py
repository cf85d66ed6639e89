"""GPU and cpu requests: which devices a machine shows, and a pool that never over-books one."""

from __future__ import annotations

import os
import random
import stat
import threading
import time
from pathlib import Path

import pytest

from experiment_infra.processes.failures import RetryPolicy, classify_failure
from experiment_infra.running.resources import ResourceError, ResourcePool, granted_environment, machine_gpus, resolve_gpus

FAKE_SMI = """#!/bin/sh
# Stands in for nvidia-smi: answers the device-index query as the real one does.
case "$*" in
  *--query-gpu=index*) i=0; while [ $i -lt {n} ]; do echo $i; i=$((i+1)); done ;;
  *) echo "NVIDIA-SMI stand-in" ;;
esac
"""


def fake_nvidia_smi(tmp_path: Path, count: int) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    smi = bin_dir / "nvidia-smi"
    smi.write_text(FAKE_SMI.replace("{n}", str(count)))
    smi.chmod(smi.stat().st_mode | stat.S_IXUSR)
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_machine_gpus_reads_nvidia_smi_and_respects_a_visible_subset(tmp_path: Path) -> None:
    env = fake_nvidia_smi(tmp_path, 4)
    assert machine_gpus(env) == ("0", "1", "2", "3")
    assert machine_gpus({**env, "CUDA_VISIBLE_DEVICES": "2,3"}) == ("2", "3")
    assert machine_gpus({**env, "CUDA_VISIBLE_DEVICES": ""}) == ()
    assert machine_gpus({**env, "CUDA_VISIBLE_DEVICES": "-1"}) == ()
    assert machine_gpus({"PATH": str(tmp_path / "nowhere")}) == ()


def test_resolve_gpus_all_count_and_list(tmp_path: Path) -> None:
    env = fake_nvidia_smi(tmp_path, 4)
    assert resolve_gpus("all", env) == ("0", "1", "2", "3")
    assert resolve_gpus("2", env) == ("0", "1")
    assert resolve_gpus("0,1,3", env) == ("0", "1", "3")
    assert resolve_gpus(None, env) == ()
    with pytest.raises(ResourceError, match=r"--gpus 8: this machine shows 4 GPU"):
        resolve_gpus("8", env)
    with pytest.raises(ResourceError, match="distinct device ids"):
        resolve_gpus("0,0", env)


def test_requests_that_can_never_be_met_are_refused_up_front() -> None:
    pool = ResourcePool(devices=("0", "1"), cpu_slots=4)
    with pytest.raises(ResourceError, match=r"case 'big' asks for 3 GPU\(s\) but this run has 2 \(0, 1\)"):
        pool.check(3, 1, "case 'big'")
    with pytest.raises(ResourceError, match="whole number"):
        pool.check(1.5, 1, "case 'odd'")
    with pytest.raises(ResourceError, match="-p allows 4"):
        pool.check(0, 8, "case 'wide'")
    with pytest.raises(ResourceError, match="pass --gpus"):
        ResourcePool().check(1, 1, "case 'gpu'")


def test_granted_environment_names_exactly_the_devices_and_threads() -> None:
    assert granted_environment(None, None) == {}
    env = granted_environment(("1", "3"), 2)
    assert env["CUDA_VISIBLE_DEVICES"] == env["NVIDIA_VISIBLE_DEVICES"] == "1,3"
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "2"
    assert granted_environment((), None)["CUDA_VISIBLE_DEVICES"] == ""


def _run_pool(pool: ResourcePool, requests: list[tuple[float, float]]) -> list[tuple[tuple[str, ...], float, float, float]]:
    """Run each (gpus, seconds) request on its own thread; return (devices, gpus, start, end)."""
    out: list[tuple[tuple[str, ...], float, float, float]] = []
    guard = threading.Lock()

    def case(gpus: float, seconds: float) -> None:
        with pool.hold(gpus, 1) as grant:
            start = time.monotonic()
            time.sleep(seconds)
            end = time.monotonic()
        with guard:
            out.append((grant.gpus or (), gpus, start, end))

    threads = [threading.Thread(target=case, args=r) for r in requests]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def _load(out: list[tuple[tuple[str, ...], float, float, float]], device: str, at: float) -> float:
    return sum(g if g < 1 else 1.0 for devs, g, s, e in out if device in devs and s <= at < e)


def test_sixteen_cases_on_four_devices_never_share_one() -> None:
    rng = random.Random(7)
    requests = [(1.0, rng.uniform(0.05, 0.3)) for _ in range(16)]
    out = _run_pool(ResourcePool(devices=("0", "1", "2", "3")), requests)
    assert len(out) == 16
    assert all(len(devs) == 1 for devs, *_ in out)
    for devs, _, start, _ in out:  # at every case's start, its device holds it alone
        assert _load(out, devs[0], start) == 1.0
    assert {d for devs, *_ in out for d in devs} == {"0", "1", "2", "3"}


def test_fractions_share_a_device_and_multi_gpu_cases_get_whole_ones() -> None:
    requests = [(0.5, 0.1)] * 6 + [(2.0, 0.1)] * 2
    out = _run_pool(ResourcePool(devices=("0", "1")), requests)
    for devs, g, start, _ in out:
        for d in devs:
            assert _load(out, d, start) <= 1.0 + 1e-9
        assert len(devs) == (2 if g == 2.0 else 1)


def test_cpu_slots_bound_what_runs_at_once() -> None:
    pool = ResourcePool(cpu_slots=4)
    running = 0
    most = 0
    guard = threading.Lock()

    def case() -> None:
        nonlocal running, most
        with pool.hold(0, 2):
            with guard:
                running += 1
                most = max(most, running)
            time.sleep(0.05)
            with guard:
                running -= 1

    threads = [threading.Thread(target=case) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most <= 2


def test_a_waiting_case_stops_waiting_when_the_run_is_cancelled() -> None:
    pool = ResourcePool(devices=("0",))
    cancelled = threading.Event()
    errors: list[BaseException] = []
    with pool.hold(1, 1):
        def waiter() -> None:
            try:
                with pool.hold(1, 1, cancelled.is_set):
                    pass
            except ResourceError as exc:
                errors.append(exc)

        t = threading.Thread(target=waiter)
        t.start()
        cancelled.set()
        t.join(timeout=30)
    assert not t.is_alive() and len(errors) == 1


@pytest.mark.parametrize(
    ("kwargs", "kind"),
    [
        ({"exit_code": 1}, "exit"),
        ({"exit_code": -9, "oom_during": True}, "oom"),
        ({"exit_code": -15}, "signal"),
        ({"exit_code": -9, "timed_out": True}, "timeout"),
        ({"exit_code": -2, "interrupted": True}, "interrupted"),
        ({"exit_code": None, "lost": True}, "lost"),
        ({"exit_code": 1, "stderr_tail": "HTTP 429 Too Many Requests", "retry_on": "429|rate limit"}, "retry_on"),
    ],
)
def test_failure_classes(kwargs: dict, kind: str) -> None:
    found = classify_failure(**kwargs)
    assert found is not None and found[0] == kind


def test_default_policy_retries_only_transient_failures() -> None:
    policy = RetryPolicy(retries=2)
    assert not policy.worth_retrying("exit", 1)
    assert not policy.worth_retrying("timeout", -9)
    assert not policy.worth_retrying("interrupted", -2)
    assert all(policy.worth_retrying(k, -9) for k in ("oom", "signal", "lost", "retry_on"))
    assert RetryPolicy(retries=1, retry_on_exit_codes=(3,)).worth_retrying("exit", 3)
    assert classify_failure(0) is None
