"""GPUs on Dask workers: what a case asks the scheduler for, and which devices a worker hands it.

On Dask a case's ``gpus`` becomes the Dask worker resource ``GPU`` (an annotation on its
task): each worker declares how many it has (``dask worker ADDR --resources GPU=4``; the
local cluster of ``--dask-workers N --gpus ...`` declares each worker's share of the
devices), and the scheduler never runs more GPU demand on a worker than it declared.

Which devices a case gets is decided on the worker, by the same rule as on one machine:
each worker process keeps one ``ResourcePool`` of its own devices (``machine_gpus``: its
``CUDA_VISIBLE_DEVICES``, else its ``nvidia-smi``), shared by every case it runs, so two
cases on one worker never share a device beyond its capacity. ``worker_pool`` is that pool;
a ``WorkerDevices`` stand-in travels in a case's parameters and unpickles as it.

Before anything runs, ``plan_dask_gpus`` and ``check_worker_gpus`` refuse a request no
worker could meet (one line): a task asking for a resource no worker has would wait forever.
No Prefect here; ``distributed`` only where a scheduler is asked.
"""

from __future__ import annotations

import math
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ExperimentError
from .resources import Grant, ResourceError, ResourcePool, machine_gpus, resolve_gpus

if TYPE_CHECKING:
    from ..suites.case import ExperimentCase
    from ..suites.suite import Suite

__all__ = [
    "GPU_RESOURCE",
    "DaskGpus",
    "WorkerDevices",
    "WorkerDevicesError",
    "check_worker_gpus",
    "dask_resources",
    "devices_label",
    "plan_dask_gpus",
    "scheduler_gpus",
    "split_devices",
    "worker_pool",
]

GPU_RESOURCE = "GPU"  # the Dask worker resource a case's gpus become (`dask worker --resources GPU=4`)
SCHEDULER_TIMEOUT_SECONDS = 5.0
START_A_GPU_WORKER = "start each worker with its devices declared: dask worker ADDR --resources GPU=4"


class WorkerDevicesError(ExperimentError, RuntimeError):
    """A worker that cannot hold what a case asks for (it declares GPUs it does not show)."""


def dask_resources(gpus: float) -> dict[str, float]:
    """The Dask resources a case asking for ``gpus`` is annotated with (none for 0)."""
    return {GPU_RESOURCE: float(gpus)} if gpus > 0 else {}


def split_devices(devices: Sequence[str], workers: int) -> tuple[tuple[str, ...], ...]:
    """``devices`` in ``workers`` contiguous shares, sizes differing by one at most (the first
    workers get the extra): ``0,1,2,3`` over 2 workers is ``(0,1) (2,3)``. A worker beyond the
    devices gets none (it runs only cases that ask for no GPU)."""
    base, extra = divmod(len(devices), workers)
    out, start = [], 0
    for i in range(workers):
        size = base + (1 if i < extra else 0)
        out.append(tuple(devices[start:start + size]))
        start += size
    return tuple(out)


@dataclass(frozen=True)
class DaskGpus:
    """How a run on Dask uses GPUs: what a case that names none asks for, and, for the local
    cluster this tool starts (``--dask-workers``), each worker's devices (``shares``; None:
    the workers' own count, as they declared them)."""

    default_gpus: float = 0.0
    uses_gpus: bool = False
    shares: tuple[tuple[str, ...], ...] | None = None
    requests: tuple[tuple[str, float], ...] = ()  # (variant, gpus) of each case that will run
    per_device: int = 1  # the most cases one device holds at once (2 for gpus=0.5): a local worker's threads per device
    slurm_per_job: int | None = None  # on Slurm worker jobs: the GPUs each job asks for (--gres=gpu:K)

    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(d for share in self.shares or () for d in share)

    def case_pool(self) -> ResourcePool:
        """What a case's task holds its devices in: a stand-in for its worker's own pool
        (``WorkerDevices``; a case asking for none then sees none, as on one machine), or, when
        neither a case nor ``--gpus`` asks for GPUs, a pool that hands out none."""
        return WorkerDevices() if self.uses_gpus or self.shares is not None else ResourcePool()

    @property
    def plan_line(self) -> str:
        """The dry run's line about devices."""
        if self.slurm_per_job is not None:
            return (f"GPUs: {self.slurm_per_job} per Slurm worker job (--gres=gpu:{self.slurm_per_job}, Dask resource "
                    f"{GPU_RESOURCE}); each case waits for its own share of its job's (CUDA_VISIBLE_DEVICES)")
        if self.shares is not None:
            split = " | ".join(",".join(s) or "none" for s in self.shares)
            return (f"GPUs on {len(self.shares)} local Dask workers ({split}): each worker's own CUDA_VISIBLE_DEVICES "
                    f"and Dask resource {GPU_RESOURCE}; each case waits for its own share there")
        return (f"GPUs: the Dask workers' own (their resource {GPU_RESOURCE}, checked when the run starts); "
                "each case waits for its own share there (CUDA_VISIBLE_DEVICES)")


def plan_dask_gpus(
    suite: Suite, gpus: str | None, dask_workers: int | None, cases: Sequence[ExperimentCase] | None = None,
) -> DaskGpus:
    """What ``--gpus`` means on Dask, every case's request checked against it (ResourceError).

    ``dask_workers`` (the local cluster): ``--gpus`` names this machine's devices as without
    Dask (``all``, a count, ids), split across the N workers; a case must fit one worker's
    share. Otherwise (a scheduler's workers): the workers' own devices count, so ``--gpus``
    may only be ``all`` (each case asks for one GPU unless it says otherwise). ``cases``: the
    ones that will run (default: every case).
    """
    default = 1.0 if gpus is not None else 0.0
    requests = {c.variant_name: suite.requests(c, default)[0] for c in (suite.cases if cases is None else cases)}
    uses = any(g > 0 for g in requests.values())
    if dask_workers is None:
        if gpus is not None and str(gpus).strip() != "all":
            raise ResourceError(
                f"--gpus {gpus}: on a Dask scheduler's workers their own GPUs count ({START_A_GPU_WORKER}); "
                "use --gpus all (one GPU per case) or give the cases gpus="
            )
        return DaskGpus(default, uses, requests=tuple(requests.items()))
    if not uses and gpus is None:
        return DaskGpus(default, False)
    devices = resolve_gpus(gpus if gpus is not None else "all")
    shares = split_devices(devices, dask_workers)
    largest = max((len(s) for s in shares), default=0)
    for name, wanted in requests.items():
        if wanted > 0 and math.ceil(wanted) > largest:
            if not devices:
                raise ResourceError(
                    f"case {name!r} asks for {wanted:g} GPU(s) but this machine shows none (no CUDA_VISIBLE_DEVICES, "
                    "no working nvidia-smi); pass --gpus with the device ids (--gpus 0,1)"
                )
            split = " | ".join(",".join(s) or "none" for s in shares)
            raise ResourceError(
                f"case {name!r} asks for {wanted:g} GPU(s) but each local Dask worker has at most {largest} "
                f"(--gpus split across --dask-workers {dask_workers}: {split}); ask for fewer, pass more with --gpus "
                "or use fewer workers"
            )
    smallest = min((g for g in requests.values() if g > 0), default=1.0)
    return DaskGpus(default, uses, shares, tuple(requests.items()), per_device=max(1, math.floor(1 / smallest + 1e-9)))


def check_worker_gpus(plan: DaskGpus, address: str, declared: Mapping[str, float] | None = None) -> None:
    """Refuse a case that no worker of the scheduler at ``address`` could run (it would wait
    forever): ``declared`` is each worker's ``GPU`` resource, asked of the scheduler
    (``scheduler_gpus``) when not given and some case asks for GPUs."""
    if not plan.uses_gpus:
        return
    if declared is None:
        declared = scheduler_gpus(address)
    largest = max(declared.values(), default=0.0)
    for name, wanted in plan.requests:
        if wanted <= 0 or wanted <= largest:
            continue
        if largest <= 0:
            raise ResourceError(
                f"case {name!r} asks for {wanted:g} GPU(s) but no worker of the Dask scheduler {address} "
                f"declares a {GPU_RESOURCE} resource ({len(declared)} worker(s)); {START_A_GPU_WORKER}"
            )
        raise ResourceError(
            f"case {name!r} asks for {wanted:g} GPU(s) but the workers of the Dask scheduler {address} "
            f"declare at most {largest:g}; ask for fewer, or start a worker with --resources {GPU_RESOURCE}={math.ceil(wanted)}"
        )


def scheduler_gpus(address: str, timeout: float = SCHEDULER_TIMEOUT_SECONDS) -> dict[str, float]:
    """Each worker of the scheduler at ``address`` and the ``GPU`` resource it declares (0: none)."""
    import distributed  # only a Dask run needs it (the `dask` extra)

    from .services import ServiceError, _first_line

    try:
        with distributed.Client(address, timeout=timeout, set_as_default=False) as client:
            workers = client.scheduler_info(n_workers=-1).get("workers", {})
    except (OSError, TimeoutError, ValueError, TypeError) as exc:  # the same line as services.check_dask_scheduler's
        raise ServiceError(
            f"Dask scheduler {address} does not answer within {timeout:g} s ({_first_line(exc)}); "
            "start it (dask scheduler) or fix --dask-address"
        ) from None
    return {name: float((info.get("resources") or {}).get(GPU_RESOURCE, 0)) for name, info in workers.items()}


def devices_label(host: str, gpus: list[str] | None) -> str:
    """Where a case ran, for the cases tables: ``host: 0,1`` (``host: none`` when it was
    handed no device); "" for a run that handed out none."""
    return "" if gpus is None else f"{host}: {','.join(gpus) or 'none'}"


# --------------------------------------------------------------- on the worker

_pool: WorkerDevices | None = None
_pool_lock = threading.Lock()


class WorkerDevices(ResourcePool):
    """The devices of this worker process, handed to the cases it runs (one pool per process).

    Created on a worker by ``worker_pool``; in the flow's process a bare one (no devices) is
    only a stand-in: pickled into a case's parameters, it unpickles on the worker as that
    worker's own pool, whatever process sent it.
    """

    def __reduce__(self) -> tuple[Callable[[], WorkerDevices], tuple[()]]:  # type: ignore[override]
        return (worker_pool, ())

    @contextmanager
    def hold(self, gpus: float, cpus: int, cancelled: Callable[[], bool] | None = None) -> Iterator[Grant]:
        if gpus > 0 and math.ceil(gpus) > len(self.devices):
            # A worker that declares more GPUs than it shows: waiting would be forever.
            shown = ", ".join(self.devices) or "none: no CUDA_VISIBLE_DEVICES and no working nvidia-smi"
            raise WorkerDevicesError(
                f"the Dask worker on {socket.gethostname()} shows {len(self.devices)} GPU(s) ({shown}) but the case "
                f"asks for {gpus:g}; give the worker CUDA_VISIBLE_DEVICES naming as many devices as its "
                f"--resources {GPU_RESOURCE}=N"
            )
        with super().hold(gpus, cpus, cancelled) as grant:
            yield grant


def worker_pool(environ: Mapping[str, str] | None = None) -> WorkerDevices:
    """This process's pool of devices (``machine_gpus``), created on first use and shared by
    every case the process runs: what a Dask worker (a Slurm job's too) hands its cases from."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = WorkerDevices(devices=machine_gpus(environ))
        return _pool
