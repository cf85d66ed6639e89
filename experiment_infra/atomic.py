"""Crash-safe file writes and moves.

Every file this project writes goes through here, so a killed process leaves either
the old file or the new one, never half of one (temp file in the same directory,
fsync, then ``os.replace``, which is atomic on POSIX). The temp file's name carries
this host and pid (``layout.temp_prefix``), so what a killed writer leaves can be told
apart from a live writer's and swept (``sweep.sweep_stale_temps``).
"""

from __future__ import annotations

import json
import os

try:  # a dependency, but the case waiter runs without site-packages (python -S)
    import orjson
except ImportError:  # pragma: no cover - only there
    orjson = None  # type: ignore[assignment]

from .layout import TEMP_SUFFIX, temp_prefix

# Neither typing nor pathlib at run time (paths are handled with os.path): the case
# waiter, which starts beside every case, writes through here.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
# This host's name as socket.gethostname() gives it (the uname node name), without
# importing socket: the case waiter writes through here.
_HOST = os.uname().nodename if hasattr(os, "uname") else __import__("socket").gethostname()


def _open_temp(path: str) -> tuple[int, str]:
    """A new temp file beside ``path`` (its parent created if missing), open for writing.

    ``os.open`` with mode 0666 leaves the permissions to the umask, like any file a
    program creates (results on shared storage must be readable like any file), in one
    syscall: ``tempfile.mkstemp`` creates 0600 and needs a chmod after.
    """
    # The pid is read at each write: a forked writer must not name its parent.
    parent = os.path.dirname(path) or "."
    prefix = os.path.join(parent, temp_prefix(path, _HOST, os.getpid()))
    for _ in range(100):
        tmp = f"{prefix}{os.urandom(6).hex()}{TEMP_SUFFIX}"
        try:
            return os.open(tmp, _CREATE, 0o666), tmp
        except FileExistsError:
            continue
        except FileNotFoundError:  # the first file of its directory
            os.makedirs(parent, exist_ok=True)
    raise FileExistsError(f"{parent}: no free temp file name for {os.path.basename(path)}")


def atomic_write_bytes(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """``fsync=False`` for files derived from others (regenerated results): a crash may
    then leave them empty, never half-written, and readers treat empty as absent."""
    path = os.fspath(path)
    fd, tmp = _open_temp(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        # The half-written temp file is ours alone; the target was never touched.
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: Path, text: str, *, fsync: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)


_INT64 = (-(2**63), 2**63 - 1)


def _orjson_safe(data: object) -> bool:
    """Whether orjson writes ``data`` exactly as ``json.dumps(indent=2, ensure_ascii=False)``:
    str keys, 64-bit ints, and floats Python prints without an exponent (0, or
    1e-4 <= |x| < 1e16; orjson writes 1e-05 as 0.00001 and has no Infinity)."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if not isinstance(key, str):
                    return False
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, float):
            if item != 0.0 and not (1e-4 <= abs(item) < 1e16):
                return False
        elif isinstance(item, bool) or item is None or isinstance(item, str):
            continue
        elif isinstance(item, int):
            if not _INT64[0] <= item <= _INT64[1]:
                return False
        else:
            return False
    return True


def json_bytes(data: Any, *, floats: bool = True) -> bytes:
    """``data`` (plain JSON values) as indented JSON, UTF-8, no final newline: the bytes
    ``json.dumps(indent=2, ensure_ascii=False)`` gives, through orjson when that is exact
    (pure-Python indented ``json`` is most of the cost of a large report or ``--json``).

    ``floats=False``: the caller's document holds no floats (names, counts, statuses), so
    it is not walked first (the walk costs six times orjson's own work on a survey of ten
    thousand runs); orjson refuses what else it would write differently (keys that are
    not text, integers past 64 bits) and ``json`` writes those."""
    if orjson is not None and (not floats or _orjson_safe(data)):
        try:
            return orjson.dumps(data, option=orjson.OPT_INDENT_2)
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            pass
    return json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8")


def json_text(data: Any) -> str:
    """``data`` (a pydantic model or plain JSON value) as the indented JSON every file here holds."""
    if hasattr(data, "model_dump"):  # a pydantic model (not imported here: see clock.py)
        data = data.model_dump(mode="json")
    return json_bytes(data).decode("utf-8") + "\n"


def atomic_write_json(path: Path, data: Any, *, fsync: bool = True) -> None:
    """Write ``data`` (a pydantic model or plain JSON value) as indented JSON."""
    atomic_write_text(path, json_text(data), fsync=fsync)


def write_new_text(path: Path, text: str) -> None:
    """Atomically create ``path``; refuse to replace an existing file."""
    if os.path.exists(path):
        raise FileExistsError(f"{path}: already exists; refusing to overwrite it")
    atomic_write_text(path, text)


def unwritable_reason(directory: Path) -> str | None:
    """Why nothing can be created in ``directory`` (or, while it does not exist yet, in the
    nearest directory above it that does); None when it is writable.

    access(2) reports a read-only filesystem even to root, who ignores permission bits,
    so a run can refuse up front instead of failing at its first write.
    """
    path = os.path.abspath(directory)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    if os.access(path, os.W_OK | os.X_OK):
        return None
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return f"{path} is on a read-only filesystem"
    except OSError:
        pass
    return f"{path} is not writable by this user"


def move_aside(path: Path, dest: Path) -> Path:
    """Move ``path`` to ``dest`` (never deleting anything); returns ``dest``.

    ``dest`` must not exist: an earlier attempt kept there is never overwritten.
    """
    if os.path.exists(dest):
        raise FileExistsError(f"{dest}: already exists; refusing to overwrite an earlier attempt")
    os.makedirs(os.path.dirname(os.fspath(dest)) or ".", exist_ok=True)
    os.replace(path, dest)
    return dest
