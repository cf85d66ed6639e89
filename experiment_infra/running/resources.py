"""Devices a case runs on: which GPUs this machine has, and who holds which.

``--gpus all|0,1,3|N`` names the devices a run may hand out. ``all`` is what the
machine shows: an existing ``CUDA_VISIBLE_DEVICES`` (a subset someone already chose is
respected), else ``nvidia-smi``'s device indexes. Each case asks for ``gpus`` (whole
devices, or a fraction of one: ``0.5`` puts two cases on a device) and ``cpus``
(default 1; with ``-p N`` the cases running at once hold at most N cpus).

``ResourcePool`` hands out real device ids: a case waits until what it asks for is free,
takes it, runs with ``CUDA_VISIBLE_DEVICES`` naming exactly its devices, and gives them
back the moment it ends, so the next waiting case starts on them at once. Requests are
granted in the order they were made, each one that fits (list scheduling): a case that
fits never waits behind one that does not.

No Prefect here: the flow's tasks call ``ResourcePool.hold`` around the case.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from ..errors import ExperimentError

__all__ = [
    "THREAD_VARIABLES",
    "Grant",
    "ResourceError",
    "ResourcePool",
    "granted_environment",
    "check_gpu_request",
    "check_max_failures",
    "failure_budget",
    "machine_gpus",
    "resolve_gpus",
]

# The variables the usual numeric libraries read for their thread count (OpenMP, MKL,
# OpenBLAS, numexpr, Accelerate, Rayon, PyTorch's intra-op pool reads OMP's): a case
# that asks for 2 cpus must not start a thread per core beside seven others that do.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "RAYON_NUM_THREADS",
)
NVIDIA_SMI_SECONDS = 20.0  # nvidia-smi can take seconds on a cold driver; never forever


class ResourceError(ExperimentError, ValueError):
    """A GPU or CPU request that cannot be met (one line, before anything runs)."""


def machine_gpus(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The GPU ids this process may use: ``CUDA_VISIBLE_DEVICES`` when set, else nvidia-smi's.

    An empty tuple when there are none (no driver, no ``nvidia-smi``, or
    ``CUDA_VISIBLE_DEVICES`` set to nothing or ``-1``, CUDA's ways of hiding every device).
    """
    env = os.environ if environ is None else environ
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = tuple(part.strip() for part in visible.split(",") if part.strip())
        # CUDA stops at the first invalid entry; "-1" is the common way to hide everything.
        out: list[str] = []
        for part in ids:
            if part.startswith("-"):
                break
            out.append(part)
        return tuple(out)
    smi = shutil.which("nvidia-smi", path=env.get("PATH"))
    if smi is None:
        return ()
    try:
        done = subprocess.run(
            [smi, "--query-gpu=index", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=NVIDIA_SMI_SECONDS, env=dict(env),
        )
    except (OSError, subprocess.TimeoutExpired):
        return ()
    if done.returncode != 0:
        return ()
    return tuple(line.strip() for line in done.stdout.splitlines() if line.strip())


def resolve_gpus(spec: str | int | None, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The devices ``--gpus`` names: ``all``, a count ``N`` (the first N the machine shows)
    or an explicit list ``0,1,3`` (taken as given: a machine without ``nvidia-smi``, a test,
    or ids a scheduler assigned). ``None``: no devices."""
    if spec is None:
        return ()
    text = str(spec).strip()
    if text == "all":
        return machine_gpus(environ)
    if text.isdigit() and "," not in text:
        count = int(text)
        shown = machine_gpus(environ)
        if count > len(shown):
            raise ResourceError(
                f"--gpus {count}: this machine shows {len(shown)} GPU(s) "
                f"({', '.join(shown) or 'none: no CUDA_VISIBLE_DEVICES and no working nvidia-smi'}); "
                "ask for fewer or name them (--gpus 0,1)"
            )
        return shown[:count]
    ids = [part.strip() for part in text.split(",")]
    if not ids or not all(ids) or len(set(ids)) != len(ids):
        raise ResourceError(f"--gpus {text!r}: give all, a count (2) or distinct device ids (0,1,3)")
    return tuple(ids)


def check_gpu_request(gpus: float, where: str) -> float:
    """A case's ``gpus``: 0, a fraction of one device (0 < g < 1) or a whole number of devices."""
    if isinstance(gpus, bool) or not isinstance(gpus, (int, float)) or not math.isfinite(gpus) or gpus < 0:
        raise ResourceError(f"{where}: gpus must be a number >= 0, got {gpus!r}")
    if gpus > 1 and gpus != int(gpus):
        raise ResourceError(f"{where}: gpus {gpus!r}: more than one device must be a whole number (2, not 1.5)")
    return float(gpus)


def granted_environment(gpus: tuple[str, ...] | None, cpus: int | None) -> dict[str, str]:
    """What a case's process is started with: its devices and its thread count.

    ``gpus`` None: the run hands out no devices and the case sees what the machine shows
    (nothing changes for suites that never asked). An empty tuple hides every device: a
    case that asked for none must not land on a GPU another case holds.
    """
    env: dict[str, str] = {}
    if gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = env["NVIDIA_VISIBLE_DEVICES"] = ",".join(gpus)
    if cpus is not None:
        env.update(dict.fromkeys(THREAD_VARIABLES, str(cpus)))
    return env


@dataclass
class _Request:
    gpus: float
    cpus: int
    granted: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Grant:
    """What one case holds: its device ids (``None``: no devices handed out) and cpus."""

    gpus: tuple[str, ...] | None
    cpus: int | None


class ResourcePool:
    """The devices and cpu slots of one run, handed to cases one request at a time (threads).

    ``devices``: the GPU ids to hand out (empty: the run hands none out, and each case's
    environment keeps the machine's). ``cpu_slots``: how many cpus the cases running at
    once may hold (None: unbounded, as without ``-p``). ``default_gpus``: the request of a
    case that names none (1 once ``--gpus`` is given). A plain class, not a dataclass:
    Prefect rebuilds dataclass task parameters, and every task must share this one.
    """

    def __init__(self, devices: tuple[str, ...] = (), cpu_slots: int | None = None, default_gpus: float = 0.0) -> None:
        self.devices = tuple(devices)
        self.cpu_slots = cpu_slots
        self.default_gpus = default_gpus  # what a case that names no gpus asks for
        self._free = dict.fromkeys(self.devices, 1.0)
        self._cpus_free = cpu_slots
        self._queue: list[_Request] = []
        self._lock = threading.Condition()

    def __repr__(self) -> str:
        return f"ResourcePool(devices={self.devices!r}, cpu_slots={self.cpu_slots!r})"

    def __reduce__(self) -> tuple[type[ResourcePool], tuple[tuple[str, ...], int | None, float]]:
        # Shipped to another process (a Dask worker), it is a pool of its own there, empty.
        return (ResourcePool, (self.devices, self.cpu_slots, self.default_gpus))

    def check(self, gpus: float, cpus: int, where: str) -> None:
        """Refuse, before anything runs, a request this pool could never grant."""
        check_gpu_request(gpus, where)
        if gpus and not self.devices:
            raise ResourceError(
                f"{where} asks for {gpus:g} GPU(s) but this run has none: no CUDA_VISIBLE_DEVICES, no working "
                "nvidia-smi; pass --gpus with the device ids (--gpus 0,1)"
            )
        if math.ceil(gpus) > len(self.devices):
            raise ResourceError(
                f"{where} asks for {gpus:g} GPU(s) but this run has {len(self.devices)} ({', '.join(self.devices)}); "
                "ask for fewer or pass more with --gpus"
            )
        if isinstance(cpus, bool) or not isinstance(cpus, int) or cpus < 1:
            raise ResourceError(f"{where}: cpus must be a whole number >= 1, got {cpus!r}")
        if self.cpu_slots is not None and cpus > self.cpu_slots:
            raise ResourceError(f"{where} asks for {cpus} cpus but -p allows {self.cpu_slots} at once; raise -p")

    @contextmanager
    def hold(self, gpus: float, cpus: int, cancelled: Callable[[], bool] | None = None) -> Iterator[Grant]:
        """Wait until ``gpus`` and ``cpus`` are free, hold them for the block, then free them.

        ``cancelled``: stop waiting (``ResourceError``) once it answers True (checked twice a
        second), so a stopped run does not start a case that was still waiting for a device.
        """
        request = _Request(gpus=float(gpus), cpus=int(cpus))
        with self._lock:
            self._queue.append(request)
            try:
                while True:
                    self._grant_in_order()
                    if request.granted is not None:
                        break
                    if cancelled is not None and cancelled():
                        raise ResourceError("the run stopped before this case's devices were free")
                    self._lock.wait(timeout=0.5 if cancelled is not None else None)
            finally:
                if request.granted is None:
                    self._queue.remove(request)
                    self._lock.notify_all()  # a request behind this one may fit now
        try:
            yield Grant(gpus=request.granted if self.devices else None, cpus=request.cpus)
        finally:
            with self._lock:
                self._give_back(request)
                self._lock.notify_all()

    def busy(self) -> tuple[str, ...]:
        """The devices some case holds now (wholly or a share), in the pool's order: what a
        progress line shows. Read under the lock, so a device is never half handed back."""
        with self._lock:
            return tuple(d for d in self.devices if self._free[d] < 1.0 - 1e-9)

    # --- under the lock

    def _grant_in_order(self) -> None:
        for req in list(self._queue):
            taken = self._take(req)
            if taken is not None:
                req.granted = taken
                self._queue.remove(req)

    def _take(self, req: _Request) -> tuple[str, ...] | None:
        if self._cpus_free is not None and req.cpus > self._cpus_free:
            return None
        if req.gpus == 0:
            ids: tuple[str, ...] = ()
        elif req.gpus < 1:
            # The fullest device that still fits: whole devices stay free for whole requests.
            fits = [d for d in self.devices if self._free[d] + 1e-9 >= req.gpus]
            if not fits:
                return None
            ids = (min(fits, key=lambda d: (self._free[d], self.devices.index(d))),)
            self._free[ids[0]] -= req.gpus
        else:
            whole = [d for d in self.devices if self._free[d] >= 1.0 - 1e-9]
            if len(whole) < req.gpus:
                return None
            ids = tuple(whole[: int(req.gpus)])
            for d in ids:
                self._free[d] = 0.0
        if self._cpus_free is not None:
            self._cpus_free -= req.cpus
        return ids

    def _give_back(self, req: _Request) -> None:
        share = req.gpus if req.gpus < 1 else 1.0
        for d in req.granted or ():
            self._free[d] = min(1.0, self._free[d] + share)
        if self._cpus_free is not None:
            self._cpus_free += req.cpus


def check_max_failures(value: int | float | None, where: str) -> int | float | None:
    """A failure budget: a count of cases (``3``) or a fraction of them (``0.1``); None: none."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ResourceError(f"{where} must be a count >= 1 or a fraction between 0 and 1, got {value!r}")
    if isinstance(value, float) and value >= 1 and value != int(value):
        raise ResourceError(f"{where} {value!r}: a count must be whole (3), a fraction below 1 (0.1)")
    return value


def failure_budget(value: int | float | None, cases: int) -> int | None:
    """How many cases may fail for good before no new case starts (None: no budget)."""
    if value is None:
        return None
    if isinstance(value, float) and value < 1:
        return max(1, math.ceil(value * cases))
    return int(value)
