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

from ..layout import TEMP_SUFFIX, temp_prefix

# Neither typing nor pathlib at run time (paths are handled with os.path): the case
# waiter, which starts beside every case, writes through here.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, Callable

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


def _write_via_temp(path: str, data: bytes, fsync: bool, publish: Callable[[str], None]) -> None:
    """Write ``data`` to a temp file beside ``path``, then ``publish(tmp)`` puts it in place;
    on any failure the temp file (ours alone) is removed and the target never touched."""
    fd, tmp = _open_temp(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        publish(tmp)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_bytes(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """``fsync=False`` for files derived from others (regenerated results): a crash may
    then leave them empty, never half-written, and readers treat empty as absent."""
    path = os.fspath(path)
    _write_via_temp(path, data, fsync, lambda tmp: os.replace(tmp, path))


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
    """Atomically create ``path``; refuse to replace an existing file, even one that
    appears while this writes (the temp file is renamed without replacing, see
    ``_rename_noreplace``), and a symlink at ``path`` (an entry that exists)."""
    path = os.fspath(path)

    def publish_new(tmp: str) -> None:
        parent = os.open(os.path.dirname(path) or ".", _DIR_FLAGS & ~_NOFOLLOW)
        try:
            _rename_noreplace(parent, os.path.basename(tmp), parent, os.path.basename(path), path, "it")
        finally:
            os.close(parent)

    _write_via_temp(path, text.encode("utf-8"), True, publish_new)


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


# Moves never go through a symlink and never replace anything.
#
# A path below the experiment (or run) directory is opened one component at a time with
# O_NOFOLLOW, each relative to the directory fd of the one above, and the move is done
# between the two directory fds: a link planted where a directory should be (before the
# move or while it runs) fails the open (ELOOP) and is named, it is never followed. The
# rename itself is renameat2(RENAME_NOREPLACE) (Linux 3.15+, on most local filesystems),
# which fails if the destination exists, atomically. Where that is unavailable (another
# OS, NFS): a file is hard-linked to the destination (link(2) never replaces) and then
# unlinked; a directory first claims the destination with mkdir(2) (which never
# replaces either) and is renamed onto that empty claim: a claim somebody fills
# meanwhile makes the rename fail (ENOTEMPTY), so nothing is overwritten.

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_RENAME_NOREPLACE = 1
_renameat2: Any = None  # loaded at the first move (ctypes costs the case waiter's start-up)


def _is_link(name: str, dir_fd: int) -> bool:
    import stat

    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _open_below(root: str, directory: str, *, create: bool) -> int:
    """An fd of ``directory``, which is ``root`` or below it, opened without following a
    symlink below ``root`` (``root`` itself may be one: the user named it); ``create``:
    make what is missing. Raises ``LinkedPathError`` naming a link found on the way."""
    from ..errors import LinkedPathError

    rel = os.path.relpath(directory, root)
    if rel == os.curdir:
        parts: list[str] = []
    elif rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
        raise ValueError(f"{directory} is not below {root}")
    else:
        parts = rel.split(os.sep)
    fd = os.open(root, _DIR_FLAGS & ~_NOFOLLOW)
    here = root
    try:
        for part in parts:
            here = os.path.join(here, part)
            if create:
                try:
                    os.mkdir(part, dir_fd=fd)
                except FileExistsError:
                    pass
            try:
                below = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError:
                if _is_link(part, fd):
                    raise LinkedPathError(
                        f"{here} is a symlink; nothing is written or moved through one: replace it with a real directory"
                    ) from None
                raise
            os.close(fd)
            fd = below
    except BaseException:
        os.close(fd)
        raise
    return fd


def _rename_noreplace(src_fd: int, src: str, dst_fd: int, dst: str, shown: str, what: str) -> None:
    """Rename ``src`` (in ``src_fd``) to ``dst`` (in ``dst_fd``) unless ``dst`` exists, then
    or at any moment before (see above); ``shown`` and ``what`` name it in the error."""
    import errno

    global _renameat2
    if _renameat2 is None:
        try:
            import ctypes

            _renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
        except (OSError, AttributeError):
            _renameat2 = False
    exists = FileExistsError(f"{shown}: already exists; refusing to overwrite {what}")
    if _renameat2:
        import ctypes

        if _renameat2(src_fd, os.fsencode(src), dst_fd, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            raise exists
        if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise OSError(err, os.strerror(err), shown)
    import stat

    if stat.S_ISDIR(os.stat(src, dir_fd=src_fd, follow_symlinks=False).st_mode):
        try:
            os.mkdir(dst, dir_fd=dst_fd)  # the claim
        except FileExistsError:
            raise exists from None
        try:
            os.rename(src, dst, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
        except OSError:
            try:
                os.rmdir(dst, dir_fd=dst_fd)
            except OSError:
                pass
            raise
        return
    try:
        os.link(src, dst, src_dir_fd=src_fd, dst_dir_fd=dst_fd, follow_symlinks=False)
    except FileExistsError:
        raise exists from None
    os.unlink(src, dir_fd=src_fd)


def move_aside(path: Path, dest: Path, *, root: Path | None = None) -> Path:
    """Move ``path`` to ``dest`` (never deleting anything); returns ``dest``.

    ``dest`` must not exist: an earlier attempt kept there is never overwritten, not
    even one that appears while this moves (FileExistsError). No directory below
    ``root`` (the experiment or run directory; by default the deepest directory holding
    both) is followed if it is a symlink: ``LinkedPathError`` names it. ``path`` itself
    may be a symlink: the link is moved, not what it points to. Missing directories of
    ``dest`` are created.
    """
    src, dst = os.path.abspath(path), os.path.abspath(dest)
    top = os.path.abspath(root) if root is not None else os.path.commonpath([os.path.dirname(src), os.path.dirname(dst)])
    src_fd = _open_below(top, os.path.dirname(src), create=False)
    try:
        dst_fd = _open_below(top, os.path.dirname(dst), create=True)
        try:
            _rename_noreplace(src_fd, os.path.basename(src), dst_fd, os.path.basename(dst), os.fspath(dest), "an earlier attempt")
        finally:
            os.close(dst_fd)
    finally:
        os.close(src_fd)
    return dest
