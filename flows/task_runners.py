"""The task runner a flow fans its task runs out on: threads here, or a Dask cluster.

- default: a ``ThreadPoolTaskRunner`` in the flow's own process, at most ``-p`` task
  runs at once;
- ``--dask-address ADDR``: an existing Dask scheduler (``dask scheduler`` plus
  ``dask worker ADDR`` on each machine);
- ``--dask-workers N``: a ``distributed.LocalCluster`` of N worker processes (one
  thread each) started for this flow run and stopped after it.

With Dask the task runs execute in the workers' processes, possibly on other machines,
so every worker must see the results directory (and the experiment's code) at the same
path - a shared filesystem - and the flow needs a real Prefect server
(``PREFECT_API_URL``): with Prefect's temporary server every worker process opens its
SQLite file and fails with "database is locked". ``check_dask`` refuses both mistakes
before the flow starts; ``build_task_runner`` is what both flows call.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from experiment_infra.services import ServiceError, check_dask_options, check_dask_scheduler
from flows.api_check import configured_api_url

__all__ = ["ServiceError", "build_task_runner", "check_dask", "ship_by_value", "wants_dask"]


def wants_dask(dask_address: str | None, dask_workers: int | None) -> bool:
    return bool(dask_address) or dask_workers is not None


def check_dask(dask_address: str | None, dask_workers: int | None) -> None:
    """Everything about the Dask options a flow would trip over, checked before it starts.

    Raises ServiceError: both options, a bad count, no real Prefect server, or a
    scheduler that does not answer within a few seconds.
    """
    check_dask_options(dask_address, dask_workers, configured_api_url())
    if not wants_dask(dask_address, dask_workers):
        return
    try:
        import prefect_dask  # noqa: F401
    except ImportError:
        raise ServiceError("--dask-address/--dask-workers need prefect-dask: pip install -e '.[dask]'") from None
    if dask_address:
        check_dask_scheduler(dask_address)


def _importable_elsewhere(module: ModuleType) -> bool:
    """Whether a fresh worker process can import ``module`` by name."""
    name = module.__name__
    if name.startswith("_experiment_suite_"):
        return False  # a suite file imported under a private name (experiment_infra.suite)
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


def build_task_runner(
    parallelism: int | None,
    *,
    dask_address: str | None = None,
    dask_workers: int | None = None,
    default_parallelism: int,
) -> TaskRunner[Any]:
    """The runner a flow submits to (enter it with ``with``); ``-p`` bounds only the thread runner."""
    if not wants_dask(dask_address, dask_workers):
        return ThreadPoolTaskRunner(max_workers=parallelism or default_parallelism)
    check_dask(dask_address, dask_workers)  # a run started from the UI or a deployment skipped the CLI's check
    from prefect_dask import DaskTaskRunner

    if dask_address:
        return DaskTaskRunner(address=dask_address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs=dict(n_workers=dask_workers, threads_per_worker=1, processes=True, dashboard_address=None),
    )

