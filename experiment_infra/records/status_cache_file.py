"""``.recover-cache.json``, the classification cache a recovery keeps beside an experiment:
its schema, its reader and its writer.

Free of pydantic: a dry run reads it, and checks its runs' signatures in child
processes, before the models are imported (``status_prefetch``).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TypedDict

import orjson

from ..files.atomic import atomic_write_bytes
from .raw import MAX_RECORD_BYTES, NOFOLLOW_READ_FLAGS, read_all

__all__ = [
    "STATUS_CACHE_FORMAT", "CachedClass", "CachedRun", "StatusCacheFile", "cached_class_ok", "cached_run_ok",
    "read_status_cache", "write_status_cache",
]

# ``.recover-cache.json`` is read whole by every survey (ten thousand runs and more), so
# it is small and flat: each distinct classification is stored once in ``classes`` and
# each run names one by index, with the stat signature it was made under. It is parsed
# with orjson into plain lists (a model per entry would cost more than the stat checks
# the cache saves); each entry's shape is checked where it is used.

STATUS_CACHE_FORMAT = 2  # 2: classes table, runs as [sig, class, absent]; 1 had one object per run

# [status, reason, [[judge status, judge reason], ...] per slot in slot order]
CachedClass = list

# [signature (hex digest), index into classes, absent entries (bit i: entry i of
# status_entries.run_signature_dir was absent; a later check counts it absent without an lstat)]
CachedRun = list


class StatusCacheFile(TypedDict):
    """``.recover-cache.json``: lets a recovery skip re-reading runs whose files did not change."""

    format: int
    version: int  # status.STATUS_RULES_VERSION the classifications were made under
    judge_models: list[str]
    classes: list[CachedClass]
    runs: dict[str, CachedRun]


def cached_class_ok(entry: object, slots: int) -> bool:
    """``entry`` has CachedClass's shape, with ``slots`` judge slots."""
    if not (isinstance(entry, list) and len(entry) == 3):
        return False
    status, reason, judges = entry
    return (
        isinstance(status, str) and isinstance(reason, str) and isinstance(judges, list) and len(judges) == slots
        and all(isinstance(j, list) and len(j) == 2 and all(isinstance(x, str) for x in j) for j in judges)
    )


def cached_run_ok(entry: object, classes: int) -> bool:
    """``entry`` has CachedRun's shape and names one of ``classes`` classes."""
    return (
        isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)
        and type(entry[1]) is int and 0 <= entry[1] < classes and type(entry[2]) is int and entry[2] >= 0
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
        data = orjson.loads(read_all(fd, st.st_size, limit=MAX_RECORD_BYTES * 8))
    except (OSError, orjson.JSONDecodeError):
        return None
    finally:
        os.close(fd)
    if not (isinstance(data, dict) and data.get("format") == STATUS_CACHE_FORMAT and isinstance(data.get("version"), int)
            and isinstance(data.get("runs"), dict) and isinstance(data.get("classes"), list)
            and isinstance(data.get("judge_models"), list)):
        return None
    return data  # type: ignore[return-value]


def write_status_cache(path: Path, cache: StatusCacheFile) -> None:
    # A lost or torn cache is only a slower next survey: no fsync.
    atomic_write_bytes(path, orjson.dumps(cache, option=orjson.OPT_INDENT_2) + b"\n", fsync=False)
