"""Files beside any layout: lock files and their takeover markers, and the temp files of
atomic writes (named for their writer, so a sweep can tell a dead writer's)."""

from __future__ import annotations

import os
import re
from collections import namedtuple

# Neither dataclasses nor pathlib: the case waiter, beside every case, writes through here.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

# ---------------------------------------------------------------------------- locks


def lock_takeover_marker(lock: Path) -> Path:
    """Held for the instant a stale lock is replaced, so only one process replaces it."""
    return lock.with_name(lock.name + ".takeover")


def lock_temp(lock: Path, token: str, host: str, pid: int) -> Path:
    """A fully written lock file, linked or renamed into place (never seen half-written);
    named like every other temp file (``temp_prefix``), so a killed contender's is swept."""
    return lock.with_name(f"{temp_prefix(lock, host, pid)}{token}{TEMP_SUFFIX}")


# ---------------------------------------------------------------- atomic-write temps
# A file is written as a temp file beside it, then renamed over it. A writer killed in
# between leaves the temp behind; its name says which host and pid wrote it, so a later
# run can tell a dead writer's leftover (same host, pid gone) from a live writer's file
# (any other host is never judged from here).

TEMP_SUFFIX = ".tmp"
_HOST_CHARS = re.compile(r"[^A-Za-z0-9.-]")
# ".{target}~{host}~{pid}~{random}.tmp": host, pid and the random part hold no "~" (so
# a host name with dots cannot be misread), the random part no ".".
_TEMP = re.compile(r"^\.(?P<target>.+)~(?P<host>[A-Za-z0-9.-]+)~(?P<pid>[0-9]+)~[^.~/]*\.tmp\Z")


def temp_host(host: str) -> str:
    """``host`` as it appears in temp names (anything but letters, digits, ``.-`` becomes ``-``)."""
    return _HOST_CHARS.sub("-", host) or "-"


def temp_prefix(target: Path, host: str, pid: int) -> str:
    """The start of a temp file name for writing ``target`` (the writer adds a random part)."""
    return f".{os.path.basename(target)}~{temp_host(host)}~{pid}~"


class TempOwner(namedtuple("TempOwner", "target host pid")):
    """Who wrote a temp file, read back from its name: ``target`` and ``host`` (text), ``pid`` (int)."""

    __slots__ = ()


def parse_temp_name(name: str) -> TempOwner | None:
    """The writer of a temp file named by ``temp_prefix``; None for any other name
    (older temp names carry no writer, and are never judged)."""
    m = _TEMP.match(name)
    return TempOwner(m.group("target"), m.group("host"), int(m.group("pid"))) if m else None


# Directories a sweep does not descend into: kept attempts stay exactly as they were
# moved; clones and worktrees hold the task's files, not ours (a workspace's top level is
# still looked at: its CLAUDE.md is written atomically).
SWEEP_SKIP_DIRS = frozenset({".attempts", ".failed", ".git", "repo"})
SWEEP_TOP_ONLY_DIRS = frozenset({"workspace"})


def lock_aside(lock: Path, token: str) -> Path:
    """Where a stale takeover marker is moved to check that it was the one judged stale."""
    return lock.with_name(f"{lock.name}.{token}.stale")
