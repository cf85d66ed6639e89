"""Run a command in its own process group, streaming its output (no Prefect here).

Bytes go to log files as they come and lines to a callback; a timeout or an
interrupted caller kills the whole group. Used by the case waiter (between a runner
and a standard-mode entry point), by the runner to read its waiter, and by inspect mode.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from collections import namedtuple
from collections.abc import Callable

from ..processes.interrupt import interrupted_reason, stop_requested, tracked
from ..processes.process import START_FAILED_EXIT_CODE, describe_exit, kill_group

# Neither typing, dataclasses nor pathlib at run time: the case waiter runs beside every case.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import IO

# (stream, line): stream is "stdout" or "stderr", line has no trailing newline.
OutputCallback = Callable[[str, str], None]

# After the entry point exits, a grandchild that kept its stdout open would keep the
# logs open forever; past this delay the rest of its process group is killed.
DRAIN_SECONDS = 5.0
POLL_SECONDS = 0.5  # how often a silent case is checked for exit and timeout


class _Stream:
    """One pipe of the case: bytes go to its log file as they come, lines to the callback."""

    def __init__(self, name: str, pipe: IO[bytes], log: IO[bytes] | None, on_output: OutputCallback | None) -> None:
        self.name, self.pipe, self.log, self.on_output = name, pipe, log, on_output
        self.pending = b""
        self.last_line = ""

    def feed(self, data: bytes) -> None:
        if self.log is not None:
            self.log.write(data)
            self.log.flush()
        *lines, self.pending = (self.pending + data).split(b"\n")
        for line in lines:
            self._emit(line)

    def close(self) -> None:
        if self.pending:
            self._emit(self.pending)
            self.pending = b""
        self.pipe.close()

    def _emit(self, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        if line.strip():
            self.last_line = line.strip()
        if self.on_output is not None:
            try:
                self.on_output(self.name, line)
            except Exception:  # a broken log forwarder must not cost the log file
                self.on_output = None


def _pump(
    proc: subprocess.Popen[bytes], streams: list[_Stream], deadline: float | None, drain: float = DRAIN_SECONDS
) -> bool:
    """Copy the pipes until both close; return True if ``deadline`` passed first.

    Runs in the calling thread (no reader threads: with hundreds of cases their
    start-up showed in the per-case overhead). A grandchild that keeps a pipe open
    after the entry point exited gets ``drain`` seconds, then its group is killed; a
    pipe still open a second later (held by a process that left the group) is given up.
    """
    selector = selectors.DefaultSelector()
    for stream in streams:
        selector.register(stream.pipe, selectors.EVENT_READ, stream)
    exited_at: float | None = None
    killed = False
    try:
        while selector.get_map():
            now = time.monotonic()
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > drain:
                if killed and now - exited_at > drain + 1.0:
                    return False
                if not killed:
                    kill_group(proc, grace=0.5)
                    killed = True
            # The timeout is the entry point's: once it has exited, only the drain delay applies
            # (a leftover child holding the pipe must not turn a finished case into a timeout).
            if deadline is not None and now >= deadline and exited_at is None:
                return True
            wait = POLL_SECONDS if deadline is None or exited_at is not None else min(POLL_SECONDS, deadline - now)
            for key, _ in selector.select(wait):
                stream = key.data
                data = os.read(key.fd, 65536)
                if data:
                    stream.feed(data)
                else:
                    selector.unregister(key.fileobj)
                    stream.close()
    finally:
        selector.close()
    return False


class Streamed(namedtuple("Streamed", "exit_code duration_seconds timed_out reason interrupted stopped", defaults=(None, None))):
    """How a streamed subprocess ended: ``exit_code`` (int), ``duration_seconds`` (float),
    ``timed_out`` (bool), ``reason`` (text or None), ``interrupted``: the exception
    that stopped the caller, or None; ``stopped``: why the run stopped it
    (``interrupt.stop_requested``: the signal's name), or None."""

    __slots__ = ()


def run_streaming(
    command: list[str],
    *,
    cwd: Path | str,
    env: dict[str, str],
    logs: tuple[IO[bytes], IO[bytes]] | None,
    on_output: OutputCallback | None,
    timeout_seconds: float | None,
    on_start: Callable[[int], None] | None = None,
    on_stop: str | None = None,
    spawn: Callable[[list[str], Path | str, dict[str, str]], subprocess.Popen[bytes]] | None = None,
) -> Streamed:
    """Run ``command`` in its own process group, copying its output to ``logs`` and ``on_output``.

    Never raises for the command's own failures; an interrupted runner (Ctrl-C,
    Prefect cancellation) kills the group and reports the exception in ``interrupted``.
    ``on_stop``: how the run's stop request (``interrupt``) reaches the command:
    ``"forward"`` (the signal itself: a case's waiter), ``"group"`` (SIGTERM to its
    group), None (it does not: the waiter's own entry point, which the waiter stops).
    ``spawn``: what starts it instead of ``subprocess.Popen`` (a forked case waiter,
    ``waiter_server.forked_waiter``): in its own session, stdout and stderr piped.
    """
    started = time.monotonic()
    try:
        proc = spawn(command, cwd, env) if spawn is not None else subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: a timeout kills grandchildren too
        )
    except OSError as exc:
        return Streamed(START_FAILED_EXIT_CODE, 0.0, False, f"could not start {command[0]}: {exc.strerror or exc}")
    if on_start is not None:
        on_start(proc.pid)
    assert proc.stdout is not None and proc.stderr is not None
    out_log, err_log = logs if logs is not None else (None, None)
    streams = [_Stream("stdout", proc.stdout, out_log, on_output), _Stream("stderr", proc.stderr, err_log, on_output)]
    deadline = started + timeout_seconds if timeout_seconds is not None else None

    timed_out = False
    interrupted: BaseException | None = None
    try:
        if on_stop is None:
            timed_out = _pump(proc, streams, deadline)
        else:
            with tracked(proc, forward=on_stop == "forward"):
                timed_out = _pump(proc, streams, deadline)
        if not timed_out:
            proc.wait(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        timed_out = True
    except BaseException as exc:  # KeyboardInterrupt, Prefect cancellation, ...
        interrupted = exc
        kill_group(proc)
    stopped = stop_requested() if on_stop is not None else None
    if timed_out:
        kill_group(proc)
    # Whatever the killed group wrote last still belongs in the logs.
    unread = [s for s in streams if not s.pipe.closed]
    if unread:
        _pump(proc, unread, None, drain=1.0)
    for stream in unread:
        if not stream.pipe.closed:
            stream.close()

    exit_code = proc.returncode if proc.returncode is not None else -signal.SIGKILL
    if timed_out:
        reason: str | None = f"timed out after {timeout_seconds:g} s; process group killed"
        stopped = None
    elif interrupted is not None:
        reason = f"runner interrupted ({type(interrupted).__name__}); process group killed"
    elif stopped is not None and exit_code != 0:
        reason = interrupted_reason(stopped)
    else:
        reason = describe_exit(exit_code, streams[1].last_line)
        if on_stop != "forward":  # a waiter exits 0 either way: its record says whether it was stopped
            stopped = None  # it finished on its own
    return Streamed(exit_code, round(time.monotonic() - started, 3), timed_out, reason, interrupted, stopped)
