"""dask-jobqueue's ``SLURMCluster``, keeping its worker jobs: a job that Slurm ends under
the run (``scancel``, preemption, its walltime) is submitted again.

dask-jobqueue's cluster forgets a lost worker (after ``distributed.deploy.lost-worker-
timeout``) but submits no job in its place unless it is scaled: a run of N jobs that
lost them all would wait forever for workers, with the lost cases' tasks never run
again. Here the lost job's place is filled, so Dask reruns the task it held on the
fresh job (its case's lost attempt is in its run record, ``failure: lost``).

Imported by name from ``flows.task_runners`` (``cluster_class``) only when a run uses
Slurm: dask-jobqueue is an optional extra.
"""

from __future__ import annotations

import asyncio
from typing import Any

import dask.config
from dask.utils import parse_timedelta
from dask_jobqueue import SLURMCluster
from distributed.core import Status

__all__ = ["ReplacingSLURMCluster"]

REPLACE_AFTER_EXTRA_SECONDS = 1.0  # after the base class has forgotten the lost worker


class ReplacingSLURMCluster(SLURMCluster):  # type: ignore[misc]
    """A ``SLURMCluster`` that submits a new job for each worker job lost while it runs."""

    def _update_worker_status(self, op: str, msg: Any) -> None:
        super()._update_worker_status(op, msg)  # forgets a removed worker after lost-worker-timeout
        if op == "remove" and self.status == Status.running:
            delay = parse_timedelta(dask.config.get("distributed.deploy.lost-worker-timeout"))
            asyncio.get_running_loop().call_later(delay + REPLACE_AFTER_EXTRA_SECONDS, self._replace_lost)

    def _replace_lost(self) -> None:
        # Closing (the run's end), scaled down, or replaced already: nothing to submit.
        if self.status == Status.running and set(self.worker_spec) - set(self.workers):
            self._futures.add(asyncio.ensure_future(self._correct_state()))
