"""Prefect task: run one case of a standard-mode suite (a view over ``experiment_infra.runner``).

The task adds what Prefect is for: a task run named after the variant, retries with
backoff, the case's output in the run logger, and a state. Whether the case is done
is still decided by its files: a case completed on disk ends ``Completed``/``Skipped``
without running.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import Completed, Failed, State

from experiment_infra.inspect_mode import InspectCase, run_inspect_process
from experiment_infra.runner import OutputCallback, run_case
from experiment_infra.suite import PlannedCase
from experiment_infra.status import CaseClassification, CaseStatus, classify_case

SKIPPED = "Skipped"


class CaseFailed(RuntimeError):
    """The entry point ran and failed (non-zero exit, signal or timeout): worth retrying.

    Anything else a case raises (a config that cannot reach the command line, a
    results directory that cannot be written) fails the same way every time and
    is not retried.
    """


def worth_retrying(task: Any, task_run: TaskRun, state: State) -> bool:
    # A raised exception reaches here as the data of a Failed state; a failed entry
    # point is returned as a Failed state carrying CaseFailed.
    return isinstance(state.data, CaseFailed)


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
    # Returned, not raised: Prefect still retries a returned Failed state, and the
    # log shows the one-line reason instead of a traceback of this task's code.
    message = f"{variant_name} {outcome.status.value}: {outcome.reason}"
    return Failed(message=message, data=CaseFailed(message))


@task(
    name="run_case",
    task_run_name="{variant_name}",
    cache_policy=NO_CACHE,  # a case's inputs are not hashable, and its truth is on disk anyway
    persist_result=False,
    retry_condition_fn=worth_retrying,
)
def run_case_task(
    variant_name: str,
    planned: PlannedCase,
    entry_point: Path,
    timeout_seconds: float | None = None,
) -> CaseClassification | State:
    """Run ``planned`` unless its files say it already completed."""
    on_disk = classify_case(planned.paths)
    if on_disk.status is CaseStatus.COMPLETED:
        return Completed(name=SKIPPED, message=f"{variant_name}: completed earlier ({on_disk.reason})", data=on_disk)

    with _RunLog() as forward:
        outcome = run_case(
            planned.case, planned.paths, entry_point, timeout_seconds=timeout_seconds, on_output=forward,
            code=planned.code, fresh_attempt_dir=planned.fresh_attempt_dir, identity=planned.identity,
        )
    return _as_state(variant_name, outcome)


@task(
    name="run_inspect_case",
    task_run_name="{variant_name}",
    cache_policy=NO_CACHE,
    persist_result=False,
    retry_condition_fn=worth_retrying,
)
def run_inspect_case_task(
    variant_name: str,
    planned: InspectCase,
    log_dir: Path,
    timeout_seconds: float | None = None,
) -> CaseClassification | State:
    """Run one inspect-mode case; its ``.eval`` log (not this state) is the record."""
    with _RunLog() as forward:
        outcome = run_inspect_process(planned, log_dir, timeout_seconds=timeout_seconds, on_output=forward)
    return _as_state(variant_name, outcome)
