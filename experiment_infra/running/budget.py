"""``max_failures``: the budget of failures after which a suite run starts no new case.

Counted in the flow's process; its file (the run directory's ``budget_file``) tells cases
queued on other hosts, where the flow's event cannot reach, not to start.
"""

from __future__ import annotations

import threading
from pathlib import Path

from ..files.atomic import atomic_write_text

__all__ = ["FailureBudget"]


class FailureBudget:
    """``max_failures``: once ``limit`` cases failed for good, ``spent`` is set and no new
    case starts (the ones running finish). Counted where each failure becomes final, in
    the thread that ran the case, so with ``-p 1`` the next case already sees it.

    ``marker``: a file written once the budget is spent (the run directory's
    ``budget_file``), so that a case queued on another host (a Dask or Slurm worker, where
    the event cannot reach) does not start either (``layout.case_files.budget_spent``).
    """

    def __init__(self, limit: int | None, marker: Path | None = None) -> None:
        self.limit = limit
        self.marker = marker
        self.failed = 0
        self.spent = threading.Event()
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[type[FailureBudget], tuple[int | None]]:
        # The task (and this hook's budget) shipped to a Dask worker: a budget of its own
        # there, which counts only that worker's failures, so it writes no marker.
        return (FailureBudget, (self.limit,))

    def record_failure(self) -> None:
        with self._lock:
            self.failed += 1
            if self.limit is not None and self.failed >= self.limit and not self.spent.is_set():
                self.spent.set()
                if self.marker is not None:
                    try:
                        atomic_write_text(self.marker, f"{self.failed} case(s) failed; max_failures {self.limit}\n")
                    except OSError:
                        pass  # a run directory that cannot be written: its cases fail on their own
