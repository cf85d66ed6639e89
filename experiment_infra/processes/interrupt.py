"""Stopping a run: the first SIGINT or SIGTERM stops every case, the second exits at once.

A command that runs cases installs ``stop_on_signals`` in its main thread. The first
signal does not raise anywhere (an exception in the main thread would leave the
worker threads, and the cases they wait on, running to the end): it records the
request (``stop_requested``), and every process started through ``tracked`` is
stopped. A case's waiter (``case_waiter``) is sent the same signal, so it stops its
entry point's group (SIGTERM, a grace period, SIGKILL) and records the end with that
signal; any other command's process group gets SIGTERM. What is still running a grace
period later gets SIGKILL. Nothing new starts: runners check ``stop_requested`` before
starting a case, and a process registered after the request is stopped at once. The
flow then finishes normally with what did finish (reports, summary) and says
``Cancelled``. A second signal exits at once with ``INTERRUPTED_EXIT_CODE``.

Only processes this process started are signalled (their ``Popen``, unreaped, so
their pid cannot belong to anyone else). A runner killed with SIGKILL stops nothing:
its cases keep running, and their waiters still record their ends.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import contextmanager

from ..errors import ExperimentError

# Neither typing nor subprocess at run time: the case waiter imports the streaming
# module, which imports this one.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from typing import Iterator

__all__ = [
    "CANCELLED", "INTERRUPTED_EXIT_CODE", "STOP_GRACE_SECONDS", "RunInterrupted", "interrupted_reason", "request_stop", "reset", "stop_on_signals",
    "stop_requested", "stop_signal", "tracked", "wait_stopped",
]

INTERRUPTED_EXIT_CODE = 130  # what a shell reports for a command ended by Ctrl-C
# The waiter gives its entry point 5 s (process.KILL_GRACE_SECONDS) between SIGTERM and
# SIGKILL, then writes the record: a waiter still running past this is killed too.
STOP_GRACE_SECONDS = 10.0


class RunInterrupted(ExperimentError):
    """The run was asked to stop before this case (or run) started; it was not started."""

    exit_code = INTERRUPTED_EXIT_CODE


class _Stop:
    def __init__(self) -> None:
        # Reentrant: the signal handler runs in the main thread, perhaps while it holds the lock.
        self.lock = threading.RLock()
        self.why: str | None = None  # the signal's name (SIGINT, SIGTERM) or "cancelled"
        self.signum = signal.SIGTERM
        self.procs: dict[int, tuple[subprocess.Popen[bytes], bool]] = {}


_stop = _Stop()


def stop_requested() -> str | None:
    """Why the run is stopping (``SIGINT``, ``SIGTERM``, ``cancelled ...``), or None while it runs on."""
    return _stop.why


def stop_signal() -> int:
    """The signal a case's waiter is sent (the one the command received; SIGTERM for a cancellation)."""
    return _stop.signum


def reset() -> None:
    """Forget a stop request (a process that runs several flows one after another: tests)."""
    with _stop.lock:
        _stop.why = None
        _stop.signum = signal.SIGTERM


def _signal(proc: subprocess.Popen[bytes], forward: bool, signum: int) -> None:
    # Only an unreaped child: its pid (and group id) cannot have been given to anyone else.
    if proc.returncode is not None:
        return
    try:
        if forward:
            os.kill(proc.pid, signum)  # a waiter: it stops its entry point's group and records why
        else:
            os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_late(procs: list[tuple[subprocess.Popen[bytes], bool]], grace: float) -> None:
    deadline = time.monotonic() + grace
    for proc, _ in procs:
        while proc.returncode is None and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.returncode is None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def request_stop(why: str, signum: int = signal.SIGTERM, grace: float = STOP_GRACE_SECONDS) -> bool:
    """Stop the run: every tracked process is signalled, SIGKILLed after ``grace`` if still
    running; True if this was the first request."""
    with _stop.lock:
        if _stop.why is not None:
            return False
        _stop.why, _stop.signum = why, signum
        procs = list(_stop.procs.values())
    for proc, forward in procs:
        _signal(proc, forward, signum)
    if procs:
        threading.Thread(target=_kill_late, args=(procs, grace), name="stop-cases", daemon=True).start()
    return True


def wait_stopped(timeout: float) -> bool:
    """Wait until no tracked process runs (each runner has seen its case end); True if none does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with _stop.lock:
            if not _stop.procs:
                return True
        time.sleep(0.05)
    return False


@contextmanager
def tracked(proc: subprocess.Popen[bytes], *, forward: bool = False) -> Iterator[None]:
    """While the block runs, ``proc`` is stopped with the run. ``forward``: send it the
    signal the command received (a case's waiter); otherwise SIGTERM its process group
    (started with ``start_new_session``)."""
    with _stop.lock:
        _stop.procs[proc.pid] = (proc, forward)
        late = _stop.why is not None
    if late:  # the stop came between the runner's check and this start
        _signal(proc, forward, _stop.signum)
        threading.Thread(target=_kill_late, args=([(proc, forward)], STOP_GRACE_SECONDS), daemon=True).start()
    try:
        yield
    finally:
        with _stop.lock:
            _stop.procs.pop(proc.pid, None)


CANCELLED = "cancelled"  # the stop request's reason when the flow run was cancelled (UI, API)


def interrupted_reason(why: str) -> str:
    """The reason a case stopped by the run's stop request records (``why``: a signal's name
    or ``cancelled``)."""
    what = "cancelled" if why == CANCELLED else f"interrupted ({why})"
    return f"{what}: the run was stopped; process group terminated"


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """In the main thread: the first SIGINT/SIGTERM calls ``request_stop``, the second exits
    at once (``INTERRUPTED_EXIT_CODE``). Elsewhere (a worker thread) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if not request_stop(name, signum):
            os.write(2, f"\n{name} again: exiting now (cases already stopped record their ends)\n".encode())
            os._exit(INTERRUPTED_EXIT_CODE)
        os.write(2, (
            f"\n{name}: stopping: no new case starts, running ones are terminated and recorded; "
            "press Ctrl-C again to exit at once\n"
        ).encode())

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old if old is not None else signal.SIG_DFL)
