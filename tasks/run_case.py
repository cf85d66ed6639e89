"""Prefect task: run one case of a standard-mode suite (a view over ``experiment_infra.running.runner``).

The task adds what Prefect is for: a task run named after the variant, retries with
backoff, the case's output in the run logger, and a state. Whether the case is done
is still decided by its files: a case completed on disk ends ``Completed``/``Skipped``
without running.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import Cancelled, Completed, Failed, State

from experiment_infra.processes.failures import RetryPolicy
from experiment_infra.running.resources import ResourceError, ResourcePool
from experiment_infra.running.inspect_mode import InspectCase, run_inspect_process
from experiment_infra.processes.interrupt import RunInterrupted, stop_requested
from experiment_infra.layout.case_files import budget_spent as budget_file_written
from experiment_infra.running.lost_attempt import settle_lost_attempt, started_since
from experiment_infra.running.runner import OutputCallback, run_case
from experiment_infra.suites.suite import PlannedCase
from experiment_infra.status.rules import CaseClassification, CaseStatus, classify_case
from tasks.stopping import not_started, unless_stopped

SKIPPED = "Skipped"


class CaseFailed(RuntimeError):
    """The entry point ran and failed: ``kind`` says how (``failures.FailureKind``), and the
    suite's ``RetryPolicy`` whether that is worth another attempt.

    Anything else a case raises (a config that cannot reach the command line, a
    results directory that cannot be written) fails the same way every time and
    is not retried.
    """

    def __init__(self, message: str, kind: str | None = None, exit_code: int | None = None, final: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.exit_code = exit_code
        self.final = final  # its retries are spent already (lost attempts Dask ran again): no Prefect retry


def retry_condition(
    policy: RetryPolicy, budget_spent: threading.Event | None = None, budget_file: Path | None = None,
) -> Callable[[Any, TaskRun, State], bool]:
    """Prefect's ``retry_condition_fn`` for a suite: retry only the failures its policy names,
    and none once the run is stopping or its failure budget is spent (``budget_spent`` in the
    flow's process, ``budget_file``, which the flow writes, on a Dask or Slurm worker)."""

    def worth_retrying(task: Any, task_run: TaskRun, state: State) -> bool:
        # A raised exception reaches here as the data of a Failed state; a failed entry
        # point is returned as a Failed state carrying CaseFailed.
        failed = state.data
        if budget_spent is not None and budget_spent.is_set():
            return False
        if budget_file is not None and budget_file.exists():
            return False
        return unless_stopped(
            isinstance(failed, CaseFailed) and not failed.final and policy.worth_retrying(failed.kind or "exit", failed.exit_code)
        )

    return worth_retrying


class _RunLog:
    """Forward a case's output to the task run's log: stdout a line a record (INFO),
    stderr a block a record (WARNING): a traceback reads as one entry in the UI, not as
    thirty. A block ends when stdout speaks, after a pause, at ``MAX_BLOCK_LINES``, or
    when the case ends."""

    MAX_BLOCK_LINES = 200
    PAUSE_SECONDS = 1.0

    def __init__(self) -> None:
        self.logger = get_run_logger()
        self.block: list[str] = []
        self.last = 0.0
        self.lock = threading.Lock()

    def __call__(self, stream: str, line: str) -> None:
        with self.lock:
            now = time.monotonic()
            if stream != "stderr":
                self._flush()
                self.logger.info("%s", line)
                return
            if self.block and now - self.last > self.PAUSE_SECONDS:
                self._flush()
            self.block.append(line)
            self.last = now
            if len(self.block) >= self.MAX_BLOCK_LINES:
                self._flush()

    def _flush(self) -> None:
        if self.block:
            self.logger.warning("%s", "\n".join(self.block))
            self.block = []

    def __enter__(self) -> OutputCallback:
        return self

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self._flush()


def _as_state(variant_name: str, outcome: CaseClassification) -> CaseClassification | State:
    if outcome.status is CaseStatus.COMPLETED:
        return outcome
    if outcome.record is not None and outcome.record.interrupted is not None:
        # Stopped with the run (Ctrl-C, a cancellation): the UI shows it Cancelled; its files say failed.
        return Cancelled(message=f"{variant_name} {outcome.status.value}: {outcome.reason}")
    # Returned, not raised: Prefect still retries a returned Failed state, and the
    # log shows the one-line reason instead of a traceback of this task's code.
    record = outcome.record
    kind = getattr(record, "failure", None)
    message = f"{variant_name} {outcome.status.value}: {outcome.reason}" + (f" [{kind}]" if kind else "")
    return Failed(message=message, data=CaseFailed(message, kind, record.exit_code if record else None))


NOT_STARTED = "NotStarted"


def _dask_worker() -> str | None:
    """The address of the Dask worker this task runs on; None off Dask."""
    distributed = sys.modules.get("distributed")  # a worker has it imported; elsewhere not worth importing
    if distributed is None:
        return None
    try:
        return str(distributed.get_worker().address)
    except ValueError:  # not in a worker's task
        return None


def _lost_retries_spent(
    variant_name: str, planned: PlannedCase, on_disk: CaseClassification, retries: int
) -> State | None:
    """A Failed state if this task already made all the attempts ``retries`` allows and the
    last was lost, else None.

    A worker lost under a case (its Slurm job cancelled, preempted or out of time) takes
    the running task with it: Dask runs that same task again on another worker (a fresh
    job), where Prefect counts it as a first run. The run records count instead: the
    attempts made since this run planned the case, the lost one last."""
    record = on_disk.record
    if record is None or getattr(record, "failure", None) != "lost":
        return None
    before = planned.on_disk.record.attempt if planned.on_disk.record is not None else 0
    if record.attempt - before <= retries:
        return None  # a retry left: run it
    message = f"{variant_name} {on_disk.status.value}: {on_disk.reason} [lost]; retries spent ({retries})"
    return Failed(message=message, data=CaseFailed(message, "lost", record.exit_code, final=True))


@dataclass(frozen=True)
class CaseResources:
    """What one case asks of its run's ``ResourcePool``, and the run's stop signal.

    ``stop`` is set when no new case may start (the failure budget is spent): a case
    still waiting to start then ends ``Cancelled`` (``NotStarted``) without running.
    """

    pool: ResourcePool
    gpus: float = 0.0
    cpus: int = 1
    stop: threading.Event | None = None
    retry_on: str | None = None
    retries: int = 0  # the suite's: also bounds the attempts after lost ones (a Slurm job ended under a case)


@task(
    name="run_case",
    task_run_name="{variant_name}",
    cache_policy=NO_CACHE,  # a case's inputs are not hashable, and its truth is on disk anyway
    persist_result=False,
    retry_condition_fn=retry_condition(RetryPolicy()),  # the flow sets the suite's own
)
def run_case_task(
    variant_name: str,
    planned: PlannedCase,
    entry_point: Path,
    timeout_seconds: float | None = None,
    resources: CaseResources | None = None,
) -> CaseClassification | State:
    """Run ``planned`` unless its files say it already completed, holding its devices while it runs."""
    on_disk = classify_case(planned.paths)
    ours = started_since(on_disk.record, planned.on_disk.record)  # Dask runs a lost worker's task again
    if on_disk.status is CaseStatus.COMPLETED:
        if ours:  # this run's attempt, which outlived its worker and completed
            return _as_state(variant_name, on_disk)
        return Completed(name=SKIPPED, message=f"{variant_name}: completed earlier ({on_disk.reason})", data=on_disk)
    stopping = not_started(variant_name)
    if stopping is not None:
        return stopping
    if resources is None:
        resources = CaseResources(pool=ResourcePool())
    if ours and on_disk.record is not None and on_disk.record.ended_at is None:
        # This run's attempt, its worker lost: it may still run (never a second copy at once),
        # or went with the worker and is recorded lost (lost_attempt).
        settle_lost_attempt(planned.paths, waiting=lambda record: get_run_logger().warning(
            "%s: attempt %d still runs on %s (pid %s) after its Dask worker %s was lost; waiting for it, not starting "
            "another", variant_name, record.attempt, record.host, record.pid, record.worker or "",
        ))
        on_disk = classify_case(planned.paths)
        if on_disk.status is CaseStatus.COMPLETED:
            return _as_state(variant_name, on_disk)
    spent = _lost_retries_spent(variant_name, planned, on_disk, resources.retries)
    if spent is not None:
        return spent
    budget_spent = resources.stop

    def stop_waiting() -> bool:  # a case still waiting for its devices when the run stops never starts
        # The budget's event where the flow runs; its file where it cannot reach (Dask, Slurm).
        spent = (budget_spent is not None and budget_spent.is_set()) or budget_file_written(str(planned.paths.dir))
        return stop_requested() is not None or spent

    try:
        with resources.pool.hold(resources.gpus, resources.cpus, stop_waiting) as grant:
            if stop_waiting():
                why = "the failure budget is spent" if stop_requested() is None else "the run was stopped"
                raise ResourceError(f"{why} before this case started")
            with _RunLog() as forward:
                outcome = run_case(
                    planned.case, planned.paths, entry_point, timeout_seconds=timeout_seconds, on_output=forward,
                    grant=grant, retry_on=resources.retry_on, code=planned.code,
                    fresh_attempt_dir=planned.fresh_attempt_dir, identity=planned.identity, worker=_dask_worker(),
                )
    except RunInterrupted as exc:  # the stop came while it was being prepared (or on another host): nothing started
        return not_started(variant_name) or Cancelled(message=f"{variant_name}: not started ({exc})")
    except ResourceError as exc:
        return not_started(variant_name) or Cancelled(name=NOT_STARTED, message=f"{variant_name}: not started ({exc})")
    return _as_state(variant_name, outcome)


@task(
    name="run_inspect_case",
    task_run_name="{variant_name}",
    cache_policy=NO_CACHE,
    persist_result=False,
    retry_condition_fn=retry_condition(RetryPolicy()),
)
def run_inspect_case_task(
    variant_name: str,
    planned: InspectCase,
    log_dir: Path,
    timeout_seconds: float | None = None,
) -> CaseClassification | State:
    """Run one inspect-mode case; its ``.eval`` log (not this state) is the record."""
    stopping = not_started(variant_name)
    if stopping is not None:
        return stopping
    with _RunLog() as forward:
        outcome = run_inspect_process(planned, log_dir, timeout_seconds=timeout_seconds, on_output=forward)
    return _as_state(variant_name, outcome)
