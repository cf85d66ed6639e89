"""Ctrl-C, SIGTERM and the Prefect UI's Cancel, for the flows that run cases.

``stoppable()`` wraps a flow's body: the first SIGINT/SIGTERM (``experiment_infra.processes.interrupt``)
or the flow run set to Cancelling from the UI or the API stops every running case
(recorded ``interrupted``) and starts no new one; the flow then finishes what it does
after its cases (summary, reports, artifacts) and ``cancelled_if_stopped`` turns its
result into a ``Cancelled`` state. Tasks call ``not_started`` before they start anything.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.context import FlowRunContext
from prefect.states import Cancelled, State

from experiment_infra.files.atomic import atomic_write_text
from experiment_infra.processes.interrupt import request_stop, reset, stop_on_signals, stop_requested, stop_signal
from tasks.stopping import CANCELLED_FROM_API, stop_message

__all__ = ["CANCEL_POLL_SECONDS", "cancelled_if_stopped", "stop_file_written", "stoppable"]

# How often a running flow asks the server whether it was cancelled: one small read.
CANCEL_POLL_SECONDS = 2.0
_STOPPED_STATES = {StateType.CANCELLING, StateType.CANCELLED}


def _watch_cancel(flow_run_id: Any, done: threading.Event) -> None:
    # A flow run called in-process has no worker to enforce a cancellation: this reads
    # its state and stops the cases the way a signal does.
    try:
        with get_client(sync_client=True) as client:
            while not done.wait(CANCEL_POLL_SECONDS):
                try:
                    state = client.read_flow_run(flow_run_id).state
                except Exception:  # a server that is busy or gone: the run goes on, try again
                    continue
                if state is not None and state.type in _STOPPED_STATES:
                    request_stop(CANCELLED_FROM_API, signal.SIGTERM)
                    return
    except Exception:
        return


_depth = 0  # stoppable flows running in this process (a recovery runs run_suite inside)


@contextmanager
def stoppable() -> Iterator[None]:
    """Inside a flow: signals stop the run (``stop_on_signals``), and so does a cancellation.
    The outermost one starts afresh (a process that runs flow after flow: a worker, tests)."""
    global _depth
    if _depth == 0:
        reset()
    _depth += 1
    ctx = FlowRunContext.get()
    done = threading.Event()
    watcher = None
    if ctx is not None and ctx.flow_run is not None:
        watcher = threading.Thread(target=_watch_cancel, args=(ctx.flow_run.id, done), name="watch-cancel", daemon=True)
        watcher.start()
    try:
        with stop_on_signals():
            yield
    finally:
        done.set()
        _depth -= 1


def cancelled_if_stopped(result: Any) -> Any:
    """``result`` (a flow's return value or state), or a ``Cancelled`` state carrying its data
    when the run was stopped."""
    if stop_requested() is None:
        return result
    data = result.data if isinstance(result, State) else result
    detail = f": {result.message}" if isinstance(result, State) and result.message else ""
    return Cancelled(message=f"{stop_message()}{detail}", data=data)


@contextmanager
def stop_file_written(path: Path, remote: bool) -> Iterator[None]:
    """While the block runs cases on other hosts (``remote``: Dask, Slurm), a stop of this
    run writes ``path`` (the run's stop file, holding the signal's name): their waiters
    stop their entry points and record it, and cases not started yet do not start. A stale
    one (an earlier stopped run of this directory) is removed first, and this one after."""
    # Removed whatever runs this time: a stopped remote run whose command was ended by a
    # second Ctrl-C (os._exit: no clean-up) leaves one, which would stop every later case.
    path.unlink(missing_ok=True)
    if not remote:
        yield
        return
    done = threading.Event()

    def write_on_stop() -> None:
        while not done.wait(0.2):
            if stop_requested() is not None:
                atomic_write_text(path, signal.Signals(stop_signal()).name + "\n")
                return

    watcher = threading.Thread(target=write_on_stop, name="write-stop-file", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
        path.unlink(missing_ok=True)
