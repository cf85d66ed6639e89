"""A case task Dask gave up on: ``KilledWorker``, read as the case's files say, never raised.

Dask runs the task of a worker that died again on another worker, up to
``distributed.scheduler.allowed-failures`` times (3 by default: each run is a case attempt,
``lost_attempt`` records the lost ones); past that it fails the task with ``KilledWorker``.
The task's own code never ran to its end, so its Prefect task run still reads ``Running``
and its future raises ``KilledWorker`` (with a traceback of Dask's internals) when asked
for its result. Here the case's last attempt is settled as any lost attempt is (waited for
while it provably runs, else recorded ``lost``), and the future and its task run take the
state the case's files say: ``Completed`` if the attempt outlived its workers and
finished, else ``Failed`` with the case's reason (``[lost]``).
"""

from __future__ import annotations

from typing import Any

from prefect.client.orchestration import get_client
from prefect.futures import PrefectFuture
from prefect.states import Completed, Failed, State

from experiment_infra.running.lost_attempt import settle_lost_attempt, started_since
from experiment_infra.status.rules import CaseStatus, classify_case
from experiment_infra.suites.suite import PlannedCase
from tasks.run_case import CaseFailed

__all__ = ["killed_worker", "settle_killed_task"]


def killed_worker(future: PrefectFuture[Any]) -> BaseException | None:
    """The ``KilledWorker`` a Dask task ended with; None for any other end (or no Dask)."""
    wrapped = getattr(future, "wrapped_future", None)
    if wrapped is None or getattr(wrapped, "status", None) != "error":
        return None
    from distributed import KilledWorker  # only a Dask future gets here

    exc = wrapped.exception()
    return exc if isinstance(exc, KilledWorker) else None


def settle_killed_task(future: PrefectFuture[Any], planned: PlannedCase) -> State | None:
    """If Dask gave up on ``future`` (``KilledWorker``): settle its case, give the future and its
    task run the state the case's files say, and return that state; else None."""
    killed = killed_worker(future)
    if killed is None:
        return None
    if started_since(classify_case(planned.paths).record, planned.on_disk.record):
        settle_lost_attempt(planned.paths)  # this run's attempt: wait while it runs, else record it lost
    now = classify_case(planned.paths)
    name = planned.variant_name
    if now.status is CaseStatus.COMPLETED and started_since(now.record, planned.on_disk.record):
        state: State = Completed(message=f"{name}: completed (its Dask workers were lost: {killed})", data=now)
    else:
        kind = getattr(now.record, "failure", None) or "lost"
        message = f"{name} {now.status.value}: {now.reason} [{kind}]; Dask gave up on its task ({killed})"
        state = Failed(message=message, data=CaseFailed(message, kind, getattr(now.record, "exit_code", None), final=True))
    with get_client(sync_client=True) as client:  # the UI's task run, left Running by the worker that died
        client.set_task_run_state(future.task_run_id, state, force=True)
    future._final_state = state  # what the summary reads; its result no longer raises KilledWorker
    return state
