"""The task runner a flow fans its task runs out on: threads here, or a Dask cluster.

- default: a ``ThreadPoolTaskRunner`` in the flow's own process, at most ``-p`` task
  runs at once;
- ``--dask-address ADDR``: an existing Dask scheduler (``dask scheduler`` plus
  ``dask worker ADDR`` on each machine);
- ``--dask-workers N``: a ``distributed.LocalCluster`` of N worker processes (one
  thread each) started for this flow run and stopped after it; with GPUs
  (``worker_devices``), each worker process its own share of the devices
  (``CUDA_VISIBLE_DEVICES``) and that many of the Dask resource ``GPU``, one thread per device;
- ``--slurm-workers N``: a dask-jobqueue ``SLURMCluster``, N Slurm batch jobs each
  running one worker (one thread), submitted for this flow run and cancelled after it
  (``experiment_infra.running.slurm``).

With Dask the task runs execute in the workers' processes, possibly on other machines,
so every worker must see the results directory (and the experiment's code) at the same
path - a shared filesystem - and reach the Prefect server (``PREFECT_API_URL``): a local
cluster's workers reach the temporary server the command line starts; elsewhere a real
one is needed, and Prefect's in-process temporary server fails every worker with
"database is locked" (each opens its SQLite file). ``check_dask`` refuses what cannot
work before the flow starts; ``build_task_runner`` is what every flow calls.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from experiment_infra.running.services import ServiceError, check_dask_options, check_dask_scheduler
from experiment_infra.running.slurm import SlurmWorkers, check_slurm
from experiment_infra.running.worker_devices import DaskGpus, dask_resources
from flows.api_check import configured_api_url

__all__ = [
    "ServiceError", "build_task_runner", "check_dask", "gpu_annotation", "local_gpu_cluster", "ship_by_value",
    "slurm_cluster_kwargs", "wants_dask",
]


def wants_dask(dask_address: str | None, dask_workers: int | None, slurm: SlurmWorkers | None = None) -> bool:
    return bool(dask_address) or dask_workers is not None or slurm is not None


def check_dask(dask_address: str | None, dask_workers: int | None, slurm: SlurmWorkers | None = None) -> None:
    """Everything about the Dask options a flow would trip over, checked before it starts.

    Raises ServiceError: more than one kind of cluster, a bad count, no real Prefect
    server, a scheduler that does not answer within a few seconds, or Slurm jobs that
    Slurm cannot or would not run.
    """
    check_dask_options(dask_address, dask_workers, configured_api_url(), slurm)
    if not wants_dask(dask_address, dask_workers, slurm):
        return
    try:
        import prefect_dask  # noqa: F401
    except ImportError:
        raise ServiceError("--dask-address/--dask-workers/--slurm-workers need prefect-dask: pip install -e '.[dask]'") from None
    if dask_address:
        check_dask_scheduler(dask_address)
    if slurm is not None:
        check_slurm(_slurm_job_script(slurm))


def _jobqueue() -> ModuleType:
    try:
        import dask_jobqueue
    except ImportError:
        raise ServiceError("--slurm-workers needs dask-jobqueue: pip install -e '.[slurm]'") from None
    return dask_jobqueue


def slurm_cluster_kwargs(slurm: SlurmWorkers, logs: str | Path | None = None) -> dict[str, Any]:
    """The ``SLURMCluster`` arguments for ``slurm``; ``logs``: where the worker jobs write
    their Slurm output (default: dask-jobqueue's ``log-directory``, else the working directory)."""
    configured = _slurm_configured()
    return slurm.cluster_kwargs(configured, None if logs is None or configured.get("log-directory") else str(logs))


def _slurm_job_script(slurm: SlurmWorkers) -> str:
    """A worker job's batch script, as the run would submit it (its scheduler address and
    log directory aside: one of its own, removed after, so the check writes nothing)."""
    import shutil
    import tempfile

    logs = tempfile.mkdtemp(prefix="slurm-check-")
    try:
        kwargs = {**slurm.cluster_kwargs(_slurm_configured(), logs), "n_workers": 0}
        with _jobqueue().SLURMCluster(**kwargs) as cluster:
            return cluster.job_script()
    except (ValueError, TypeError, RuntimeError, OSError) as exc:  # dask-jobqueue's refusals: bad settings or config
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ServiceError(
            f"--slurm-workers: the worker jobs cannot be set up ({type(exc).__name__}: {first}); "
            "check the --slurm-* options and jobqueue.slurm in dask's configuration"
        ) from None
    finally:
        shutil.rmtree(logs, ignore_errors=True)


def _slurm_configured() -> dict[str, Any]:
    """dask-jobqueue's ``jobqueue.slurm`` configuration (its defaults, then the user's)."""
    import dask.config

    _jobqueue()  # registers its configuration defaults
    return dict(dask.config.get("jobqueue.slurm", {}))


def _importable_elsewhere(module: ModuleType) -> bool:
    """Whether a fresh worker process can import ``module`` by name."""
    name = module.__name__
    if name.startswith("_experiment_suite_"):
        return False  # a suite file imported under a private name (experiment_infra.suites.suite)
    top = name.partition(".")[0]
    if top in sys.stdlib_module_names or top in ("experiment_infra", "flows", "tasks", "pydantic"):
        return True
    file = getattr(module, "__file__", None)
    return file is None or "site-packages" in Path(file).parts


def ship_by_value(objects: Iterable[Any]) -> list[str]:
    """Pickle the user modules defining these objects' classes by value for Dask workers.

    A case's config class lives next to the suite file (``sweep_config.py``), which a
    worker's ``sys.path`` does not hold: sent by reference, it would fail to unpickle
    there. Returns the module names registered.
    """
    import cloudpickle

    names = []
    for obj in objects:
        module = sys.modules.get(type(obj).__module__)
        if module is None or _importable_elsewhere(module) or module.__name__ in names:
            continue
        with contextlib.suppress(ValueError):  # already registered
            cloudpickle.register_pickle_by_value(module)
        names.append(module.__name__)
    return names


def gpu_annotation(gpus: float) -> contextlib.AbstractContextManager[Any]:
    """Around a ``submit`` to Dask: the task asks its worker for ``gpus`` of the resource ``GPU``
    (prefect-dask's client merges dask's annotations into each task it submits)."""
    resources = dask_resources(gpus)
    if not resources:
        return contextlib.nullcontext()
    import dask

    return dask.annotate(resources=resources)


def local_gpu_cluster(shares: tuple[tuple[str, ...], ...], per_device: int = 1, **cluster_kwargs: Any) -> Any:
    """A local cluster of one worker process per share of the devices: each sees only its
    share (``CUDA_VISIBLE_DEVICES``, so its own pool hands out those) and declares that many
    ``GPU``; a worker with no share declares none and hides every device. Threads: as many
    cases as its devices hold at once (``per_device`` each; at least one): the scheduler's
    ``GPU`` count is what bounds the GPU cases."""
    from distributed import Nanny, Scheduler, SpecCluster

    workers = {
        i: {"cls": Nanny, "options": {
            "host": "127.0.0.1", "nthreads": max(1, len(share) * per_device), "dashboard": False,
            "env": {"CUDA_VISIBLE_DEVICES": ",".join(share)},
            "resources": dask_resources(len(share)),
        }}
        for i, share in enumerate(shares)
    }
    scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard": False, "dashboard_address": None}}
    return SpecCluster(workers=workers, scheduler=scheduler, **cluster_kwargs)


def build_task_runner(
    parallelism: int | None,
    *,
    dask_address: str | None = None,
    dask_workers: int | None = None,
    slurm: SlurmWorkers | None = None,
    logs: str | Path | None = None,
    default_parallelism: int,
    worker_devices: DaskGpus | None = None,
) -> TaskRunner[Any]:
    """The runner a flow submits to (enter it with ``with``); ``-p`` bounds only the thread
    runner. ``logs``: the directory Slurm worker jobs write their output to (see
    ``slurm_cluster_kwargs``). ``worker_devices``: with ``dask_workers``, the GPUs the
    local workers share out (``worker_devices.plan_dask_gpus``)."""
    if not wants_dask(dask_address, dask_workers, slurm):
        return ThreadPoolTaskRunner(max_workers=parallelism or default_parallelism)
    check_dask(dask_address, dask_workers, slurm)  # a run started from the UI or a deployment skipped the CLI's check
    from prefect_dask import DaskTaskRunner

    if dask_address:
        return DaskTaskRunner(address=dask_address)
    if slurm is not None:
        # A worker job Slurm ends under the run is submitted again (flows/slurm_cluster.py).
        return DaskTaskRunner(cluster_class="flows.slurm_cluster.ReplacingSLURMCluster", cluster_kwargs=slurm_cluster_kwargs(slurm, logs))
    if worker_devices is not None and worker_devices.shares is not None:
        return DaskTaskRunner(
            cluster_class=local_gpu_cluster,
            cluster_kwargs=dict(shares=worker_devices.shares, per_device=worker_devices.per_device),
        )
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs=dict(n_workers=dask_workers, threads_per_worker=1, processes=True, dashboard_address=None),
    )

