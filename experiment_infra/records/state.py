"""Files a recovery keeps for itself beside an experiment: the lock and the
classification cache."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import NotRequired, TypedDict

import orjson

from ..atomic import atomic_write_bytes
from .base import MAX_RECORD_BYTES, NOFOLLOW_READ_FLAGS, _Closed, _read_all



class LockInfo(_Closed):
    """A per-experiment lock file (``.recover.lock``): who holds it, so a second
    recovery can name the holder and a dead holder's lock can be taken over."""

    pid: int
    host: str
    started_at: str
    token: str
    command: list[str] = []
    # The holder's process start time (Linux /proc), so a reused pid is not mistaken for it.
    pid_start: str | None = None


# ====================================================================== status cache
# ``.recover-cache.json`` holds one entry per classified run and is read whole by every
# survey, so it is parsed with orjson into plain dicts (a model per entry costs more
# than the stat checks the cache saves); each entry's shape is checked where it is used.


class CachedRun(TypedDict):
    """One run's classification and the stat signature of the files it was read from."""

    sig: str
    status: str
    reason: str
    judges: list[list[str]]  # [status, reason] per judge slot, in slot order
    # Indexes of the signature's entries that were absent (status.run_signature_dir):
    # a later check counts them absent without an lstat. Optional: older caches lack it.
    absent: NotRequired[list[int]]


class StatusCacheFile(TypedDict):
    """``.recover-cache.json``: lets a recovery skip re-reading runs whose files did not change."""

    version: int
    judge_models: list[str]
    runs: dict[str, CachedRun]


def cached_run_ok(entry: object, slots: int) -> bool:
    """``entry`` has CachedRun's shape, with ``slots`` judge slots."""
    if not isinstance(entry, dict):
        return False
    judges = entry.get("judges")
    return (
        isinstance(entry.get("sig"), str) and isinstance(entry.get("status"), str)
        and isinstance(entry.get("reason"), str) and isinstance(judges, list) and len(judges) == slots
        and all(isinstance(j, list) and len(j) == 2 and all(isinstance(x, str) for x in j) for j in judges)
    )


def read_status_cache(path: Path) -> StatusCacheFile | None:
    """The cache at ``path``, or None when it is missing, unreadable or not a cache."""
    try:
        fd = os.open(path, NOFOLLOW_READ_FLAGS)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_RECORD_BYTES * 8:
            return None
        data = orjson.loads(_read_all(fd, st.st_size, limit=MAX_RECORD_BYTES * 8))
    except (OSError, orjson.JSONDecodeError):
        return None
    finally:
        os.close(fd)
    if not (isinstance(data, dict) and isinstance(data.get("version"), int) and isinstance(data.get("runs"), dict)
            and isinstance(data.get("judge_models"), list)):
        return None
    return data  # type: ignore[return-value]


def write_status_cache(path: Path, cache: StatusCacheFile) -> None:
    # A lost or torn cache is only a slower next survey: no fsync.
    atomic_write_bytes(path, orjson.dumps(cache, option=orjson.OPT_INDENT_2) + b"\n", fsync=False)
