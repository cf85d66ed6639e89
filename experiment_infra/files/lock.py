"""One writer per directory at a time (a recovery, a resumed suite run): a lock file that names its holder.

The lock is created atomically (a fully written temporary file hard-linked into
place, which fails if the lock exists, like ``O_EXCL``; plain ``O_EXCL`` where hard
links are not supported), so a reader never sees half a lock. A lock whose holder is
gone (same host, pid not alive, or alive but a different process reusing the pid)
is stale and is taken over by an atomic rename over it; a short-lived takeover
marker makes sure only one contender replaces a given stale lock, and the lock is
re-checked under that marker so a lock that was just taken over is never replaced.
A holder on another host cannot be checked from here, so its lock is never taken.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from ..errors import LockedError
from ..layout import lock_aside, lock_takeover_marker, lock_temp
from ..processes.process import is_zombie, proc_start
from ..records import LockInfo, read_record, utc_now_iso

# A lock file that cannot be parsed is normally one being written by hand or a
# foreign tool; only once it is this old is it treated as abandoned.
UNREADABLE_GRACE_SECONDS = 10.0
_ATTEMPTS = 5


class LockHeld(LockedError, RuntimeError):
    """Another live process holds the lock (the message names it)."""


def holder_alive(info: LockInfo) -> bool | None:
    """True/False for a holder on this host; None when it is on another host."""
    if info.host != socket.gethostname():
        return None
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user
    except OSError:
        return None
    if is_zombie(info.pid):
        return False
    if info.pid_start is not None:
        now = proc_start(info.pid)
        if now is not None and now != info.pid_start:
            return False  # the pid was reused by an unrelated process
    return True


def describe_holder(info: LockInfo) -> str:
    command = f" ({' '.join(info.command)})" if info.command else ""
    return f"pid {info.pid} on {info.host}, started {info.started_at}{command}"


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _write_exclusive(path: Path, data: bytes) -> bool:
    """Create ``path`` with ``data``; False if it already exists."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0), 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def _link_into_place(tmp: Path, path: Path, data: bytes) -> bool:
    """Atomically create ``path`` holding ``data``; False if it exists."""
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
    return _write_exclusive(path, data)  # no hard links on this filesystem


@dataclass
class HeldLock:
    """A lock this process holds; ``release()`` (or leaving the ``with`` block) frees it."""

    path: Path
    info: LockInfo
    took_over_from: LockInfo | None = None
    took_over_unreadable: bool = False

    def release(self) -> None:
        current = read_record(self.path, LockInfo).record
        if current is not None and current.token == self.info.token:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> HeldLock:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def acquire_lock(path: Path, *, what: str, command: list[str] | None = None) -> HeldLock:
    """Take the lock at ``path`` or raise ``LockHeld`` naming the holder.

    ``what`` names the locked thing in messages (e.g. the experiment directory).
    """
    path = Path(path)
    info = LockInfo(
        pid=os.getpid(),
        host=socket.gethostname(),
        started_at=utc_now_iso(),
        token=uuid.uuid4().hex,
        command=list(command if command is not None else sys.argv),
        pid_start=proc_start(os.getpid()),
    )
    data = info.model_dump_json(indent=2).encode() + b"\n"
    tmp = lock_temp(path, info.token, info.host, info.pid)
    if not _write_exclusive(tmp, data):
        raise LockHeld(f"{tmp}: already exists (token collision); try again")
    try:
        for _ in range(_ATTEMPTS):
            if _link_into_place(tmp, path, data):
                return HeldLock(path, info)
            identity = _identity(path)
            current = read_record(path, LockInfo)
            if current.problem == "missing":
                continue  # released in between: try to create it again
            holder = current.record
            if holder is None:
                age = time.time() - (identity[1] / 1e9 if identity else time.time())
                if age < UNREADABLE_GRACE_SECONDS:
                    raise LockHeld(
                        f"{what} is locked by {path} ({current.problem}); another process may be writing "
                        "it: try again in a few seconds"
                    )
            else:
                alive = holder_alive(holder)
                if alive is None:
                    raise LockHeld(
                        f"{what} is locked by {describe_holder(holder)}; that host cannot be checked from "
                        f"here: if that process is gone, delete {path}"
                    )
                if alive:
                    raise LockHeld(
                        f"{what} is locked by {describe_holder(holder)}: that process is still running "
                        f"(lock file {path})"
                    )
            if identity is not None and _take_over(path, tmp, identity, info, what):
                return HeldLock(path, info, took_over_from=holder, took_over_unreadable=holder is None)
        raise LockHeld(f"{what}: could not take the lock {path} after {_ATTEMPTS} attempts (contended); try again")
    finally:
        tmp.unlink(missing_ok=True)


def _take_over(path: Path, tmp: Path, identity: tuple[int, int, int], info: LockInfo, what: str) -> bool:
    """Replace the stale lock ``identity`` with ``tmp``; False if it changed meanwhile."""
    marker = lock_takeover_marker(path)
    marker_data = info.model_dump_json().encode()
    if not _write_exclusive(marker, marker_data):
        _clear_stale_marker(marker, info, what)
        return False
    try:
        # Under the marker nobody else replaces the lock: if it is still the file judged
        # stale, the rename swaps it for ours in one step (never a moment with no lock).
        if _identity(path) != identity:
            return False
        os.replace(tmp, path)
        return True
    finally:
        marker.unlink(missing_ok=True)


def _clear_stale_marker(marker: Path, info: LockInfo, what: str) -> None:
    """A takeover marker left by a process killed mid-takeover is moved away; a live one wins."""
    identity = _identity(marker)
    current = read_record(marker, LockInfo)
    if current.problem == "missing":
        return
    if current.record is not None and holder_alive(current.record) is not False:
        raise LockHeld(f"{what}: {describe_holder(current.record)} is taking over a stale lock; try again")
    if current.record is None and identity is not None and time.time() - identity[1] / 1e9 < UNREADABLE_GRACE_SECONDS:
        raise LockHeld(f"{what}: another process is taking over a stale lock; try again")
    aside = lock_aside(marker, info.token)
    try:
        os.rename(marker, aside)
    except FileNotFoundError:
        return
    if _identity(aside) != identity:
        # Moved a marker that was created in between: put it back unless another appeared.
        try:
            os.link(aside, marker)
        except OSError:
            pass
    aside.unlink(missing_ok=True)


def check_lock(path: Path, *, what: str) -> None:
    """Raise ``LockHeld`` if a live holder (or one that cannot be checked) holds ``path``.

    Takes nothing: a command line calls this before starting a flow, so a held lock is
    reported at once; the flow's own ``acquire_lock`` is what actually decides.
    """
    current = read_record(path, LockInfo)
    if current.record is None:
        return
    alive = holder_alive(current.record)
    if alive is None:
        raise LockHeld(
            f"{what} is locked by {describe_holder(current.record)}; that host cannot be checked from here: "
            f"if that process is gone, delete {path}"
        )
    if alive:
        raise LockHeld(f"{what} is locked by {describe_holder(current.record)}: that process is still running (lock file {path})")
