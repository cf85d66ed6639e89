"""Expected failures read as one line in a task run's log.

A case, agent or judge that ran and failed is returned as a Failed state (tasks never
raise for it). Prefect then logs "Task run failed with state: ..." with
``exc_info=True`` although no exception is being handled, and every handler appends
``NoneType: None`` to the record, in the terminal and in the UI. This filter drops
that empty exception info; a real exception keeps its traceback.
"""

from __future__ import annotations

import logging

__all__ = ["install"]


class _NoEmptyExcInfo(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info is not None and record.exc_info[0] is None:
            record.exc_info = None
        return True


_FILTER = _NoEmptyExcInfo()


def install() -> None:
    """Idempotent: the filter goes on Prefect's task-run logger once per process
    (Dask workers included: importing any ``tasks`` module installs it)."""
    logger = logging.getLogger("prefect.task_runs")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
