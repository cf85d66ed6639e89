"""The one reader of result files, and the writer: ``read_record`` parses a file as its
model and never raises for bad content (it says why); ``write_record`` writes atomically.

Models of foreign files (ProjectScylla's agent-evaluation layout) derive from ``_Open``
and keep unknown keys, so a newer writer's additions never make a good file look
broken; files only this project writes derive from ``_Closed``, where a typo is an error.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from ..files.atomic import atomic_write_text, json_text
from ..clock import utc_now, utc_now_iso  # noqa: F401 (part of this module's API)
from ..errors import ExperimentError
from .raw import MAX_RECORD_BYTES, NOFOLLOW_READ_FLAGS, read_all as _read_all  # noqa: F401 (part of this module's API)

M = TypeVar("M", bound=BaseModel)


class RecordError(ExperimentError, ValueError):
    """A result file that is missing or does not hold what its model requires."""


# defer_build: a model's validator is built on its first use, not at import. A command
# imports every model of the package and uses a handful (a dry run: the ten its status
# rules read), and building them all took a tenth of a second of every command's start.


class _Open(BaseModel):
    """Foreign files: unknown keys are kept and written back unchanged."""

    model_config = ConfigDict(extra="allow", defer_build=True)


class _Closed(BaseModel):
    """Files only this project writes: a typo is an error, not a silent extra key."""

    model_config = ConfigDict(extra="forbid", defer_build=True)


# ----------------------------------------------------------------- reading helpers


class ReadResult(Generic[M]):
    """A parsed record, or the reason there is none (``missing``, ``invalid: ...``)."""

    __slots__ = ("record", "problem")

    def __init__(self, record: M | None, problem: str | None) -> None:
        self.record = record
        self.problem = problem

    @property
    def ok(self) -> bool:
        return self.record is not None

    @property
    def exists(self) -> bool:
        return self.problem != "missing"


class _Memo(threading.local):
    reads: dict[tuple[str, type], ReadResult[Any]] | None = None  # inside read_once(); a class default reads fast


_memo = _Memo()


@contextmanager
def read_once() -> Iterator[None]:
    """Within the block, this thread reads each (file, model) once: rebuilding one run's
    files asks for some of them three times over (timings, command logs, the run
    result). ``write_record`` and ``forget`` drop what they replace or move."""
    outer = _memo.reads
    _memo.reads = {} if outer is None else outer
    try:
        yield
    finally:
        _memo.reads = outer


def forget(path: Path | str) -> None:
    """``path`` changed: the next ``read_record`` of it reads the file again."""
    reads = _memo.reads
    if reads:
        name = os.fspath(path)
        for key in [k for k in reads if k[0] == name]:
            del reads[key]


def read_record(path: Path | str, model: type[M]) -> ReadResult[M]:
    """Parse ``path`` as ``model``; never raises for bad content, never follows a symlink
    (inside ``read_once``, the same file and model are read only once)."""
    reads = _memo.reads
    if reads is None:
        return _read_record(path, model)
    key = (os.fspath(path), model)
    found = reads.get(key)
    if found is None:
        found = reads[key] = _read_record(path, model)
    return found


def _read_record(path: Path | str, model: type[M]) -> ReadResult[M]:
    """Parse ``path`` as ``model``; never raises for bad content, never follows a symlink.

    Classification reads thousands of these, so the file is opened once with
    O_NOFOLLOW (the open is the existence check), parsed with orjson and validated from
    the parsed value: for ProjectScylla's judgments (nested per-criterion scores) that is
    half pydantic's own JSON parsing, and a quarter less over one run's files. What orjson
    refuses (NaN, integers past 64 bits, lone surrogates, bad JSON) is parsed again with
    ``json``, which accepts the first three as before and names the error of the last.
    """
    try:
        fd = os.open(path, NOFOLLOW_READ_FLAGS)
    except FileNotFoundError:
        return ReadResult(None, "missing")
    except NotADirectoryError:
        return ReadResult(None, "missing")
    except OSError as exc:
        name = os.path.basename(path)
        if exc.errno == errno.ELOOP:
            return ReadResult(None, f"invalid: {name} is a symlink (not followed)")
        return ReadResult(None, f"invalid: {name} unreadable ({exc.strerror or exc})")
    try:
        # The read comes first: for the usual small regular file it is the whole file in
        # one call, and only a file it cannot settle (empty, unreadable, as large as the
        # read, or not a regular file at all: a FIFO reads as empty) costs an fstat.
        raw = os.read(fd, _FIRST_READ)
        if not raw or len(raw) == _FIRST_READ:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return ReadResult(None, "missing")
            if st.st_size > MAX_RECORD_BYTES:
                return ReadResult(None, f"invalid: {os.path.basename(path)} is {st.st_size} bytes (limit {MAX_RECORD_BYTES})")
            if raw:
                raw += _read_all(fd, max(0, st.st_size - len(raw)), limit=MAX_RECORD_BYTES - len(raw))
    except OSError as exc:  # a directory (EISDIR), a FIFO with a writer (EAGAIN), or a real error
        if not _is_regular(fd):
            return ReadResult(None, "missing")
        return ReadResult(None, f"invalid: {os.path.basename(path)} unreadable ({exc.strerror or exc})")
    finally:
        os.close(fd)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        name = os.path.basename(path)
        if not raw.strip():
            return ReadResult(None, f"invalid: {name} is empty")
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return ReadResult(None, f"invalid: {name} is not UTF-8")
        except json.JSONDecodeError as exc:
            return ReadResult(None, f"invalid: {name} is not valid JSON ({exc.msg} at line {exc.lineno})")
    try:
        # model_validate(data) without its Python frame: classification validates tens of thousands.
        return ReadResult(model.__pydantic_validator__.validate_python(data), None)
    except ValidationError as exc:
        return ReadResult(None, f"invalid: {os.path.basename(path)} {explain_validation(exc)}")


_EXPECTED = {
    "dict_type": "should be a JSON object",
    "model_type": "should be a JSON object",
    "model_attributes_type": "should be a JSON object",
    "list_type": "should be a list",
    "tuple_type": "should be a list",
    "int_type": "should be a whole number",
    "int_parsing": "should be a whole number",
    "int_from_float": "should be a whole number",
    "float_type": "should be a number",
    "float_parsing": "should be a number",
    "finite_number": "should be a finite number",
    "bool_type": "should be true or false",
    "bool_parsing": "should be true or false",
    "string_type": "should be text",
}


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def explain_validation(exc: ValidationError) -> str:
    """The first problem pydantic found, as the end of a sentence a researcher can act on
    (``lacks the required field exit_code``, ``field criteria_scores should be a JSON object,
    but it is null``), never pydantic's own wording (``Input should be a valid dictionary``)."""
    first = exc.errors()[0]
    loc = first["loc"]
    where = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(loc))
    kind, ctx = first["type"], first.get("ctx") or {}
    if not where:
        return f"should hold a JSON object, but it is {_shown(first.get('input'))}" if kind.endswith("_type") else first["msg"].lower()
    if kind == "missing":
        return f"lacks the required field {where}"
    if kind == "extra_forbidden":
        return f"has a field this project does not write: {where}"
    if kind == "value_error" and ctx.get("error") is not None:
        said, last = str(ctx["error"]), str(loc[-1])  # a validator's own sentence, e.g. "score must be ..."
        return f"field {where}{said[len(last):]}" if said.startswith(last + " ") else f"field {where}: {said}"
    if kind == "too_short":
        return f"field {where} should not be empty"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = {"greater_than_equal": ("at least", "ge"), "greater_than": ("more than", "gt"),
                 "less_than_equal": ("at most", "le"), "less_than": ("less than", "lt")}[kind]
        return f"field {where} should be {bound[0]} {ctx.get(bound[1])}, but it is {_shown(first.get('input'))}"
    expected = _EXPECTED.get(kind)
    if expected is None:
        msg = first["msg"]
        expected = msg[:1].lower() + msg[1:]
        expected = expected[len("input "):] if expected.startswith("input ") else expected
    return f"field {where} {expected}, but it is {_shown(first.get('input'))}"


# Larger than nearly every result file, and below the size at which malloc maps fresh
# pages for the buffer (a 256 KiB read costs five times a 64 KiB one).
_FIRST_READ = 64 * 1024


def _is_regular(fd: int) -> bool:
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        return False

def load_record(path: Path, model: type[M]) -> M:
    """Like ``read_record`` but raises ``RecordError`` naming the file."""
    result = read_record(path, model)
    if result.record is None:
        raise RecordError(f"{path}: {result.problem}")
    return result.record


def record_json(record: BaseModel) -> str:
    """The exact text ``write_record`` writes for ``record``."""
    return json_text(record.model_dump(mode="json", exclude_none=False))


def write_record(path: Path, record: BaseModel, *, fsync: bool = True) -> None:
    atomic_write_text(path, record_json(record), fsync=fsync)
    forget(path)


