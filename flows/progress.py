"""Live progress of a flow run: a Prefect progress artifact, and a line in the terminal.

``Progress(total, key, what)`` creates the artifact at 0 %; ``advance(failed=...)`` is
called as each case or run finishes (from the flow's own thread) and updates both; the
artifact ends at 100 % with ``finish()``. In a terminal the line is a rich progress bar
(done/total, failed, ETA); when stdout is not a TTY (a log file, CI) it is a plain line
per step, so a log reads "3/10 done, 1 failed, ETA 12 s". Updates are throttled: a
thousand tiny steps must not cost a thousand server calls.

A run that hands out GPUs on this machine passes ``devices=gpus_busy(pool)``: each update
then says which devices cases hold at that moment ("5/16 cases done, ETA 12 s; GPUs busy
0,1,3 of 0-3"), read from the run's ``ResourcePool`` when the text is written (no extra
server call). On Dask or Slurm each worker holds its own pool, out of the flow's reach:
there the line says nothing of devices (the cases table names each case's).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from prefect.artifacts import create_progress_artifact, update_progress_artifact

from experiment_infra.running.resources import ResourcePool

log = logging.getLogger(__name__)

MIN_UPDATE_SECONDS = 2.0  # between two artifact updates (the last one always goes out); the UI polls
# every few seconds, and each update is a request, a database write and an event on the server
PLAIN_LINE_SECONDS = 2.0  # between two plain progress lines, unless a twentieth more is done


def eta_text(done: int, total: int, elapsed: float) -> str:
    if done == 0 or done >= total:
        return ""
    remaining = elapsed / done * (total - done)
    return f", ETA {remaining:.0f} s" if remaining < 120 else f", ETA {remaining / 60:.0f} min"


def device_span(ids: Sequence[str]) -> str:
    """Device ids, short: a run of three or more consecutive numbers as ``0-3``, the rest
    comma-separated (``0,1,3``; ids that are not numbers, such as UUIDs, as given)."""
    parts: list[str] = []
    i = 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j].isdigit() and ids[j + 1].isdigit() and int(ids[j + 1]) == int(ids[j]) + 1:
            j += 1
        parts.append(f"{ids[i]}-{ids[j]}" if j - i >= 2 else ",".join(ids[i:j + 1]))
        i = j + 1
    return ",".join(parts)


def gpus_busy(pool: ResourcePool) -> Callable[[], str] | None:
    """What the progress text says of ``pool``'s devices ("GPUs busy 0,3 of 0-3"); None for a
    pool that hands none out (no GPUs asked for, or a Dask/Slurm stand-in): the text is then
    as without GPUs."""
    if not pool.devices:
        return None
    every = device_span(pool.devices)
    return lambda: f"GPUs busy {device_span(pool.busy()) or 'none'} of {every}"


class Progress:
    def __init__(
        self, total: int, key: str, what: str = "cases", devices: Callable[[], str] | None = None,
    ) -> None:
        self.total, self.key, self.what = max(total, 0), key, what
        self._devices = devices  # read from the in-memory pool when a text or the bar is drawn: no server call
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
                TimeRemainingColumn(), TextColumn("{task.fields[devices]}"), transient=True,
            )
            self._task = self._bar.add_task(what, total=total, failed=0, devices=self._devices_text())
            self._bar.start()

    def _devices_text(self) -> str:
        return self._devices() if self._devices is not None else ""

    def _text(self) -> str:
        failed = f", {self.failed} failed" if self.failed else ""
        devices = self._devices_text()
        return f"{self.done}/{self.total} {self.what} done{failed}" + eta_text(
            self.done, self.total, time.monotonic() - self.started
        ) + (f"; {devices}" if devices else "")

    def _percent(self) -> float:
        return 100.0 if not self.total else round(100.0 * self.done / self.total, 1)

    def advance(self, failed: bool = False) -> None:
        self.done += 1
        self.failed += int(failed)
        now = time.monotonic()
        if self._bar is not None:
            self._bar.update(self._task, advance=1, failed=self.failed, devices=self._devices_text())
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
