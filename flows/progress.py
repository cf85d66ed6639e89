"""Live progress of a flow run: a Prefect progress artifact, and a line in the terminal.

``Progress(total, key, what)`` creates the artifact at 0 %; ``advance(failed=...)`` is
called as each case or run finishes (from the flow's own thread) and updates both; the
artifact ends at 100 % with ``finish()``. In a terminal the line is a rich progress bar
(done/total, failed, ETA); when stdout is not a TTY (a log file, CI) it is a plain line
per step, so a log reads "3/10 done, 1 failed, ETA 12 s". Updates are throttled: a
thousand tiny steps must not cost a thousand server calls.
"""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType
from typing import Any

from prefect.artifacts import create_progress_artifact, update_progress_artifact

log = logging.getLogger(__name__)

MIN_UPDATE_SECONDS = 2.0  # between two artifact updates (the last one always goes out); the UI polls
# every few seconds, and each update is a request, a database write and an event on the server
PLAIN_LINE_SECONDS = 2.0  # between two plain progress lines, unless a twentieth more is done


def eta_text(done: int, total: int, elapsed: float) -> str:
    if done == 0 or done >= total:
        return ""
    remaining = elapsed / done * (total - done)
    return f", ETA {remaining:.0f} s" if remaining < 120 else f", ETA {remaining / 60:.0f} min"


class Progress:
    def __init__(self, total: int, key: str, what: str = "cases") -> None:
        self.total, self.key, self.what = max(total, 0), key, what
        self.done = self.failed = 0
        self.started = time.monotonic()
        self._sent = self._printed = 0.0
        self._printed_done = 0
        self._artifact: Any = None
        try:
            self._artifact = create_progress_artifact(0.0 if total else 100.0, key=key, description=self._text())
        except Exception as exc:  # a UI nicety: a lost call must not fail the run
            log.warning("progress artifact not created: %s", exc)
        self._bar: Any = None
        if sys.stdout.isatty() and total:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeRemainingColumn

            self._bar = Bar(
                TextColumn(f"{what}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[failed]} failed"),
                TimeRemainingColumn(), transient=True,
            )
            self._task = self._bar.add_task(what, total=total, failed=0)
            self._bar.start()

    def _text(self) -> str:
        failed = f", {self.failed} failed" if self.failed else ""
        return f"{self.done}/{self.total} {self.what} done{failed}" + eta_text(
            self.done, self.total, time.monotonic() - self.started
        )

    def _percent(self) -> float:
        return 100.0 if not self.total else round(100.0 * self.done / self.total, 1)

    def advance(self, failed: bool = False) -> None:
        self.done += 1
        self.failed += int(failed)
        now = time.monotonic()
        if self._bar is not None:
            self._bar.update(self._task, advance=1, failed=self.failed)
        elif self._plain_line_due(now):
            print(f"progress: {self._text()}", flush=True)
            self._printed, self._printed_done = now, self.done
        if self.done >= self.total or now - self._sent >= MIN_UPDATE_SECONDS:
            self._send()
            self._sent = now

    def _plain_line_due(self, now: float) -> bool:
        # A log file gets a line every few seconds or every twentieth, not one a case.
        return (
            self.done >= self.total
            or now - self._printed >= PLAIN_LINE_SECONDS
            or self.done - self._printed_done >= max(1, self.total // 20)
        )

    def _send(self, percent: float | None = None) -> None:
        if self._artifact is None:
            return
        try:
            update_progress_artifact(self._artifact, self._percent() if percent is None else percent, description=self._text())
        except Exception as exc:
            log.warning("progress artifact not updated: %s", exc)

    def finish(self) -> None:
        """100 % (whatever was counted: a run that stopped early is still over)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        self._send(100.0)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.finish()
