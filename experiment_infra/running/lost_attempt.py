"""An attempt this run started whose runner went away under it (a lost Dask worker): wait for
it while it runs, or record it ``lost``.

Dask runs the tasks a dead worker held again on another worker (up to
``distributed.scheduler.allowed-failures`` times), and that task finds its case's attempt
on disk, started by this run and never finished. Two things can have happened:

- the case's waiter (a session of its own) outlived the worker process: the case still
  runs, or finished and recorded its end. It must not be started a second time: the task
  waits for that end and takes it as its own (a case that completed reads ``completed``);
- the case went with the worker (a machine, a container or a process tree lost): nobody
  will record its end. The attempt is recorded ``lost``, naming the worker, and the case
  runs again as the suite's ``retries`` allow (``lost`` is a transient class).

Only what is proven is believed, and nothing is signalled: on the attempt's own host, its
entry point by the recorded pid, start time and command (``process.is_recorded``); on
another host, the heartbeat its waiter keeps (``case_waiter.HEARTBEAT_SECONDS``: it touches
the run record), watched for a change, so no clock is compared across machines.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from typing import Callable

from ..layout import CasePaths
from ..processes.process import is_recorded
from ..records import RunRecord, read_record, utc_now_iso, write_record
from .case_waiter import HEARTBEAT_SECONDS

__all__ = ["LOST_POLL_SECONDS", "settle_lost_attempt", "started_since"]

LOST_POLL_SECONDS = 0.5
# A waiter whose entry point ended writes the end at once; this is more than enough.
WAITER_FINISH_SECONDS = 10.0
# Without a change of its heartbeat for this long, a waiter on another host is gone.
SILENT_SECONDS = 3 * HEARTBEAT_SECONDS


def started_since(now: RunRecord | None, planned: RunRecord | None) -> bool:
    """``now`` is an attempt started after the case was planned (``planned``): by this run."""
    if now is None:
        return False
    return planned is None or (now.attempt, now.started_at) != (planned.attempt, planned.started_at)


def _mtime(paths: CasePaths) -> int | None:
    try:
        return os.stat(paths.run_record).st_mtime_ns
    except OSError:
        return None


def settle_lost_attempt(
    paths: CasePaths, *, sleep: Callable[[float], None] = time.sleep, waiting: Callable[[RunRecord], None] | None = None,
) -> RunRecord | None:
    """Wait while the unfinished attempt at ``paths`` provably runs; if it ended with its end
    unrecorded, record it ``lost``. The record as it then reads (None: there is none).
    ``waiting``: told once, with the record, when the attempt is found running."""
    here = socket.gethostname()
    heard, heard_at, gone_at = _mtime(paths), time.monotonic(), None
    while True:
        record = read_record(paths.run_record, RunRecord).record
        if record is None or record.ended_at is not None:
            return record
        now = time.monotonic()
        if record.host == here:
            alive = record.pid is not None and is_recorded(record.pid, record.command, record.pid_start)
            if alive:
                gone_at = None
                if waiting is not None:
                    waiting(record)
                    waiting = None
            else:
                gone_at = gone_at if gone_at is not None else now  # its waiter may be writing the end
                if now - gone_at > WAITER_FINISH_SECONDS:
                    return _record_lost(paths, record, "its entry point is gone")
        else:
            seen = _mtime(paths)
            if seen != heard:
                heard, heard_at = seen, now
                if waiting is not None:
                    waiting(record)
                    waiting = None
            elif now - heard_at > SILENT_SECONDS:
                return _record_lost(paths, record, f"its waiter's heartbeat stopped for {SILENT_SECONDS:.0f} s")
        sleep(LOST_POLL_SECONDS)


def _record_lost(paths: CasePaths, record: RunRecord, how: str) -> RunRecord:
    now = read_record(paths.run_record, RunRecord).record
    if now is None or now.ended_at is not None or (now.attempt, now.pid, now.started_at) != (record.attempt, record.pid, record.started_at):
        return now or record  # its waiter recorded the end after all, or another took the case over
    who = f"the Dask worker {record.worker}" if record.worker else "the worker process"
    reason = f"lost: {who} on {record.host} that ran it went away and the case's end was never recorded ({how})"
    # The exit code is unknown: SIGKILL, as for any waiter that died without recording one (runner.run_case).
    update = {"ended_at": utc_now_iso(), "exit_code": -signal.SIGKILL, "reason": reason, "failure": "lost"}
    ended = record.model_copy(update=update)
    write_record(paths.run_record, ended)
    return ended
