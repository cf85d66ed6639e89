"""Pure file work split over forked child processes.

Used for reading many runs' files at once (``status_batch``, ``status_prefetch``):
CPU-bound Python that threads cannot share. ``Chunks`` puts the numbers of the work's
chunks on a queue (a pipe) that forked children and then the caller itself take them
from, one at a time, so a slow chunk never idles a CPU; each ``Child`` sends its
results back pickled through a pipe of its own. Plain ``os.fork`` and pipes, not a
process pool: the pool's imports and start cost a dry run about 20 ms, a tenth of the
work it splits. Forking is refused in a process with other threads (a Prefect flow's:
a fork could leave their locks held in the child); callers then do the work in
process (``processes_for``). Free of pydantic, so a child forked before the models
are imported stays light.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ..processes.process import usable_cpus

__all__ = ["MAX_PROCESSES", "MIN_ITEMS", "Child", "Chunks", "chunk_size", "processes_for"]

T = TypeVar("T")

# Below this many items (runs) the work takes well under a second in one process, less
# than starting children and shipping their results back would save.
MIN_ITEMS = 2000
MAX_PROCESSES = 8
CHUNK_ITEMS = 250  # items per chunk (at least): small enough that the last chunks balance out
# At most this many chunks (more items make larger chunks): their numbers, four bytes
# each, are written before anyone reads them, so they must fit in a pipe's buffer: one
# page, the least Linux gives a pipe (a user over fs.pipe-user-pages-soft gets that).
MAX_CHUNKS = 1024
_NUMBER = struct.Struct("=I")  # a chunk number on the queue: one pipe read of 4 bytes, atomic


def processes_for(items: int) -> int:
    """Processes worth using for ``items`` runs of file work: one per CPU for a large
    batch in a single-threaded process that can fork, else 1."""
    if items < MIN_ITEMS or threading.active_count() > 1 or not hasattr(os, "fork"):
        return 1
    return min(usable_cpus(), MAX_PROCESSES)


def chunk_size(items: int) -> int:
    """Items per chunk for work on ``items`` items."""
    return max(CHUNK_ITEMS, -(-items // MAX_CHUNKS))


class Chunks(Generic[T]):
    """``work(k)`` for every chunk ``k`` in ``range(count)``, shared by ``children`` forked
    children (started here) and the caller, which joins in when it asks for the
    ``results()``; ``close()`` (or leaving the ``with``) stops the children if it never does.
    ``work`` runs in the children as it is at the fork: whatever it reads must be set first."""

    def __init__(self, work: Callable[[int], T], count: int, children: int) -> None:
        if not 0 <= count <= MAX_CHUNKS:
            raise ValueError(f"{count} chunks: at most {MAX_CHUNKS} (use chunk_size)")
        self._work = work
        self._count = count
        self._children: list[Child] = []
        self._queue, feed = os.pipe()
        try:
            # Every number is queued before anyone reads, and the write end is closed: an
            # empty queue then reads as its end.
            os.write(feed, b"".join(_NUMBER.pack(k) for k in range(count)))
        except BaseException:
            os.close(self._queue)
            raise
        finally:
            os.close(feed)
        try:
            for _ in range(children):
                self._children.append(Child(self._drain))
        except BaseException:
            self.close()
            raise

    @property
    def pids(self) -> list[int]:
        """The children's process ids (until they are reaped)."""
        return [child.pid for child in self._children]

    def _drain(self) -> dict[int, T]:
        """Do the chunks taken off the queue until it is empty."""
        done: dict[int, T] = {}
        while True:
            taken = os.read(self._queue, _NUMBER.size)
            if len(taken) < _NUMBER.size:
                return done
            (k,) = _NUMBER.unpack(taken)
            done[k] = self._work(k)

    def results(self) -> list[T]:
        """Every chunk's result, in chunk order: the caller does whatever chunks are left,
        then takes the children's."""
        try:
            done = self._drain()
            for child in self._children:
                done.update(child.result())
        finally:
            self.close()
        if len(done) != self._count:  # cannot happen unless a child lied: never drop work silently
            raise RuntimeError(f"{self._count - len(done)} of {self._count} chunks came back from no process")
        return [done[k] for k in range(self._count)]

    def close(self) -> None:
        for child in self._children:
            child.stop()
        self._children = []
        if self._queue >= 0:
            os.close(self._queue)
            self._queue = -1

    def __enter__(self) -> Chunks[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Child:
    """``fn(*args)`` running in a forked child; ``result()`` returns its value or raises
    its exception, ``stop()`` ends a child whose result will not be read. One or the
    other must be called: either reaps the child."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        read, write = os.pipe()
        try:
            pid = os.fork()
        except BaseException:
            os.close(read)
            os.close(write)
            raise
        if pid == 0:  # the child: work, send, and leave without running the parent's exit code
            status = 1
            try:
                os.close(read)
                try:
                    payload = pickle.dumps((True, fn(*args)), protocol=pickle.HIGHEST_PROTOCOL)
                except BaseException as exc:  # noqa: BLE001 - sent to the parent, raised there
                    payload = _failure(exc)
                with os.fdopen(write, "wb") as pipe:
                    pipe.write(payload)
                status = 0
            finally:
                os._exit(status)
        os.close(write)
        self.pid, self._fd, self._reaped = pid, read, False

    def result(self) -> Any:
        with os.fdopen(self._fd, "rb", closefd=False) as pipe:
            data = pipe.read()
        self._close()
        _, status = os.waitpid(self.pid, 0)
        self._reaped = True
        if status != 0 or not data:  # killed, perhaps mid-write: what it sent is not to be trusted
            raise RuntimeError(f"a child process (pid {self.pid}) reading files for this process died ({_exit_text(status)})")
        ok, value = pickle.loads(data)
        if not ok:
            raise value
        return value

    def stop(self) -> None:
        self._close()
        if self._reaped:
            return
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)
        self._reaped = True

    def _close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _failure(exc: BaseException) -> bytes:
    try:
        return pickle.dumps((False, exc), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - an exception that does not pickle: its text will do
        return pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))


def _exit_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"
