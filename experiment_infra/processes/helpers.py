"""Helper processes for pure file work (regeneration batches, report rebuilds), off the
caller's GIL.

Inside a Prefect flow, regenerating a thousand runs is a few thousand small syscalls
and JSON parses on the flow's threads. Each syscall gives up the GIL and then waits to
get it back behind Prefect's own threads (events, logs, state changes), which made the
same work three times slower in a flow than in a plain process. A helper is a plain
process: ``python -m experiment_infra.processes.helpers MODULE...``, started fresh (never forked
from a threaded process), importing the named modules at once (``module:function``
also calls that function: a warm-up such as starting the plots' own helper), then answering calls
one at a time: a pickled ``(function, args)`` on its stdin, a pickled ``(ok, value)``
on its stdout, each framed by its length.

``call(fn, *args)`` blocks the calling thread (which holds no GIL while it waits) until
an idle helper has run ``fn(*args)``; at most one helper per CPU is started. A helper
that cannot start, or dies mid-call, costs nothing but speed: the call runs in the
calling process instead, so the work must be safe to repeat (regeneration and report
rebuilds are: they write only what is missing or changed). ``fn`` must be importable by
name (a module-level function of this package). A helper exits when its stdin closes,
so helpers never outlive the process that started them by more than the call they are in.
"""

from __future__ import annotations

import atexit
import os
import pickle
import struct
import subprocess
import sys
import threading
from typing import IO, Any, Callable, Sequence, TypeVar

from .process import package_env, usable_cpus

__all__ = ["call", "close", "prewarm"]

T = TypeVar("T")

MAX_HELPERS = 4  # per process; pure file work gains little beyond that on a shared disk
HELPER_NICENESS = 10  # helpers load while the caller's Prefect server starts: it goes first
_FRAME = struct.Struct("!Q")


def _send(stream: IO[bytes], payload: bytes) -> None:
    stream.write(_FRAME.pack(len(payload)) + payload)
    stream.flush()


def _receive(stream: IO[bytes]) -> bytes | None:
    """One frame, or None at end of stream."""
    head = stream.read(_FRAME.size)
    if len(head) < _FRAME.size:
        return None
    (size,) = _FRAME.unpack(head)
    body = stream.read(size)
    if len(body) < size:
        raise EOFError("a helper's frame ended early")
    return body


class _Helper:
    def __init__(self, modules: Sequence[str]) -> None:
        # stderr is not ours to show: a helper's failures come back as exceptions.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "experiment_infra.processes.helpers", *modules],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=package_env(),
        )

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        _send(self.proc.stdin, pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL))
        answer = _receive(self.proc.stdout)
        if answer is None:
            raise EOFError("a helper exited mid-call")
        return pickle.loads(answer)

    def stop(self) -> None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()  # the helper's cue to exit
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class _Pool:
    def __init__(self) -> None:
        self._idle: list[_Helper] = []  # last in, first out: the warmest helper goes first
        self._ready = threading.Condition()  # guards every field; notified when a helper frees up
        self._started = 0
        self._broken = False  # a helper could not start here: stop trying
        self._pid = os.getpid()
        self._first: _Helper | None = None  # the helper that also loaded prewarm's ``first``

    def _size(self) -> int:
        return max(1, min(MAX_HELPERS, usable_cpus()))

    def _start(self, modules: Sequence[str]) -> _Helper | None:
        try:
            return _Helper(modules)
        except OSError:
            self._broken = True
            return None

    def prewarm(self, modules: Sequence[str], first: Sequence[str]) -> None:
        with self._ready:
            while not self._broken and self._started < self._size():
                extra = first if self._first is None else ()
                helper = self._start([*modules, *extra])
                if helper is None:
                    return
                if extra:
                    self._first = helper
                self._started += 1
                self._idle.append(helper)
            self._ready.notify_all()

    def _take(self, first: bool) -> _Helper | None:
        with self._ready:
            while True:
                if self._idle:
                    helper = self._first if first and self._first in self._idle else self._idle[-1]
                    self._idle.remove(helper)
                    return helper
                if self._broken:
                    return None
                if self._started < self._size():
                    helper = self._start(())
                    if helper is not None:
                        self._started += 1
                    return helper
                # Every helper is busy: wait for one (a helper that dies frees its place).
                self._ready.wait(timeout=0.5)

    def _put(self, helper: _Helper) -> None:
        with self._ready:
            self._idle.append(helper)
            self._ready.notify()

    def _lost(self, helper: _Helper) -> None:
        with self._ready:
            self._started -= 1
            if helper is self._first:
                self._first = None
            self._ready.notify()

    def call(self, fn: Callable[..., T], args: tuple[Any, ...], first: bool) -> T:
        if os.getpid() != self._pid:  # a forked child shares no helpers with its parent
            return fn(*args)
        helper = self._take(first)
        if helper is None:
            return fn(*args)
        try:
            ok, value = helper.call(fn, args)
        except (OSError, EOFError, pickle.PickleError, AttributeError, ImportError, TypeError):
            # The helper died, or the call or its answer would not pickle: run it here.
            helper.proc.kill()
            helper.proc.wait()
            self._lost(helper)
            return fn(*args)
        self._put(helper)
        if ok:
            return value
        raise value

    def close(self) -> None:
        if os.getpid() != self._pid:
            return
        with self._ready:
            idle, self._idle = self._idle, []
        for helper in idle:
            helper.stop()
            self._lost(helper)


_POOL = _Pool()
atexit.register(_POOL.close)


def call(fn: Callable[..., T], *args: Any, first: bool = False) -> T:
    """``fn(*args)`` in an idle helper process (here, if none can run it); its exception is raised here.

    ``first``: in the helper that loaded prewarm's ``first`` too, when it is idle (any
    other helper otherwise): the call that needs what only that one loaded."""
    return _POOL.call(fn, args, first)


def prewarm(modules: Sequence[str] = (), *, first: Sequence[str] = ()) -> None:
    """Start every helper now, each importing ``modules`` (and calling each ``module:function``)
    while the caller does other work: ``recover`` calls it once Prefect is imported, so that
    the helpers load while Prefect's temporary server starts. ``first``: loaded by one
    helper only (what one call needs, such as the plots' own helper processes: started in
    every helper, all but one set would never be used); ``call(..., first=True)`` goes there."""
    _POOL.prewarm(modules, first)


def close() -> None:
    """Stop the idle helpers (also done at exit)."""
    _POOL.close()


def _serve(stdin: IO[bytes], stdout: IO[bytes]) -> int:
    while (frame := _receive(stdin)) is not None:
        fn, args = pickle.loads(frame)
        try:
            answer = (True, fn(*args))
        except Exception as exc:  # raised in the caller instead
            answer = (False, exc)
        try:
            payload = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # an answer that does not pickle: say what it was
            payload = pickle.dumps((False, RuntimeError(f"{type(answer[1]).__name__}: {answer[1]}"[:2000])))
        _send(stdout, payload)
    return 0


if __name__ == "__main__":
    import importlib

    try:  # background work: what the caller waits on meanwhile (a starting server) comes first
        os.nice(HELPER_NICENESS)
    except OSError:
        pass
    for name in sys.argv[1:]:
        module, _, function = name.partition(":")
        loaded = importlib.import_module(module)
        if function:
            getattr(loaded, function)()
    # The protocol owns stdout: anything the work prints goes to stderr instead.
    channel, sys.stdout = sys.stdout.buffer, sys.stderr
    sys.exit(_serve(sys.stdin.buffer, channel))
