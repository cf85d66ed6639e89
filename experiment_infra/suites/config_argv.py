"""A config's fields on a command line: how each value is written, and every form read back.

The runner writes one ``--field=value`` per field (``encode_value``): ``None`` as
``__none__``, enums by value, bools as true/false, strings bare, and lists, dicts and
nested models as JSON. ``parse_flags`` reads that back exactly, and also what a person
or the spec's reference runner types, as pydantic-settings' CLI accepts it:
``--field value``, a bare ``--flag`` (true) or ``--no-flag`` for a bool, lists as JSON,
as repeated flags (``--classes 1 --classes 2``) or comma-separated (``--classes 1,2``),
dicts as JSON or ``key=value`` pairs. Nothing is ever skipped: an unknown flag, a
stray argument or a scalar given twice is a ``ConfigError`` naming it (and the closest
field).
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from enum import Enum
from typing import Any, Iterable, Sequence

from pydantic_core import to_jsonable_python

from ..errors import ExperimentError

NONE_SENTINEL = "__none__"
_MISSING = object()


class ConfigError(ExperimentError, ValueError):
    """A config that cannot be built or cannot travel to its entry point."""


# ------------------------------------------------------------------------- types


def _union_args(annotation: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return None


def strip_optional(annotation: Any) -> tuple[Any, bool]:
    """``(inner annotation, whether None is allowed)``: ``Optional[X]`` -> ``(X, True)``."""
    args = _union_args(annotation)
    if args is None:
        return annotation, annotation is None or annotation is type(None) or annotation is Any
    rest = tuple(a for a in args if a is not type(None))
    admits = len(rest) < len(args)
    if len(rest) == 1:
        return rest[0], admits
    return typing.Union[rest], admits  # type: ignore[return-value]


def admits_none(annotation: Any) -> bool:
    return strip_optional(annotation)[1]


def raw_string_type(annotation: Any) -> bool:
    """Fields whose values travel as the bare string (str, string enums, string Literals)."""
    annotation, _ = strip_optional(annotation)
    if annotation is str:
        return True
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return all(isinstance(m.value, str) for m in annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return all(isinstance(a, str) for a in typing.get_args(annotation))
    return False


def _is_bool(annotation: Any) -> bool:
    return strip_optional(annotation)[0] is bool


def _collection(annotation: Any) -> tuple[str, Any] | None:
    """``("list", item type)`` or ``("dict", value type)`` for collection fields, else None."""
    inner, _ = strip_optional(annotation)
    origin = typing.get_origin(inner) or inner
    args = typing.get_args(inner)
    if origin in (list, set, frozenset) or (origin is tuple and len(args) == 2 and args[1] is Ellipsis):
        return "list", args[0] if args else Any
    if origin is dict:
        return "dict", args[1] if len(args) == 2 else Any
    return None


def is_dict_type(annotation: Any) -> bool:
    if annotation is dict or typing.get_origin(annotation) is dict:
        return True
    args = _union_args(annotation)
    return bool(args) and any(is_dict_type(a) for a in args)


def type_name(annotation: Any) -> str:
    inner, optional = strip_optional(annotation)
    if isinstance(inner, type) and issubclass(inner, Enum):
        name = "{" + ",".join(str(m.value) for m in inner) + "}"
    else:
        name = getattr(inner, "__name__", None) if typing.get_origin(inner) is None else None
        name = name or str(inner).replace("typing.", "")
    return f"{name} or {NONE_SENTINEL}" if optional and inner is not Any else name


# --------------------------------------------------------------------- values


def encode_value(value: Any, annotation: Any = None) -> str:
    """One field value as a single argv string (see the module docstring)."""
    if value is None:
        return NONE_SENTINEL
    if raw_string_type(annotation):
        return value.value if isinstance(value, Enum) else str(value)
    try:
        return json.dumps(to_jsonable_python(value), allow_nan=True)
    except Exception as exc:
        raise ConfigError(f"cannot pass a {type(value).__name__} on a command line: {exc}") from None


def decode_value(raw: str, annotation: Any) -> Any:
    """One argv string back into a value for ``annotation`` (pydantic validates it after).

    ``__none__`` is None only where the type admits None: in a plain ``str`` field it is
    the string itself (a config refuses it in an optional string field, where it would
    be ambiguous)."""
    if raw == NONE_SENTINEL and admits_none(annotation):
        return None
    if raw_string_type(annotation):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        # Hand-typed values such as --color=blue for an enum-or-int field stay
        # strings and pydantic decides; what the runner writes is always JSON.
        return raw


def _list_items(raw: str, item: Any) -> list[Any]:
    """One occurrence of a list flag: a JSON list, one JSON item, or comma-separated items."""
    if not raw_string_type(item) or raw.startswith("["):
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError:
            parsed = _MISSING
        if isinstance(parsed, list):
            return parsed
        if parsed is not _MISSING and not raw_string_type(item):
            return [parsed]  # one JSON item (a number, an object, a quoted string)
    return [decode_value(piece, item) for piece in raw.split(",")]


def _dict_items(flag: str, raw: str, value_type: Any) -> dict[str, Any]:
    """One occurrence of a dict flag: a JSON object or ``key=value[,key=value]``."""
    if raw.lstrip().startswith("{"):
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{flag}: not a JSON object ({exc.msg} at column {exc.colno})") from None
        if isinstance(parsed, dict):
            return parsed
    items: dict[str, Any] = {}
    for pair in raw.split(","):
        key, eq, value = pair.partition("=")
        if not eq:
            raise ConfigError(f"{flag}: expected a JSON object or key=value pairs, got {raw!r}")
        items[key] = decode_value(value, value_type)
    return items


def _decode_flag(cls_name: str, name: str, raws: list[str], annotation: Any) -> Any:
    flag = f"{cls_name}: --{name}"
    kind = _collection(annotation)
    if len(raws) == 1 and (kind is None or raws[0] == NONE_SENTINEL and admits_none(annotation)):
        return decode_value(raws[0], annotation)
    if kind is None:
        shown = ", then ".join(repr(r) for r in raws)
        raise ConfigError(f"{flag} given {len(raws)} times ({shown}); give it once")
    what, item = kind
    if what == "list":
        return [v for raw in raws for v in _list_items(raw, item)]
    merged: dict[str, Any] = {}
    for raw in raws:
        merged.update(_dict_items(flag, raw, item))
    return merged


# ---------------------------------------------------------------------- flags


def closest(name: str, choices: Iterable[str]) -> str | None:
    found = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def _unknown(cls_name: str, name: str, fields: dict[str, Any]) -> ConfigError:
    near = closest(name, fields)
    hint = f"did you mean --{near}? " if near else ""
    return ConfigError(f"{cls_name}: unknown flag --{name}; {hint}fields: {', '.join(fields)}")


def split_flags(cls_name: str, fields: dict[str, Any], args: Sequence[str]) -> dict[str, list[str]]:
    """Every flag's raw values, by field name, in order; anything else is a ConfigError."""
    found: dict[str, list[str]] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or arg == "--":
            raise ConfigError(f"{cls_name}: unexpected argument {arg!r}; flags are --field=value or --field value")
        given, eq, raw = arg[2:].partition("=")
        name = given.replace("-", "_")
        if name not in fields and not eq and name.startswith("no_") and _is_bool(fields.get(name[3:])):
            found.setdefault(name[3:], []).append("false")  # --no-flag
            i += 1
            continue
        if name not in fields:
            raise _unknown(cls_name, name, fields)
        if not eq:
            following = args[i + 1] if i + 1 < len(args) else None
            if following is None or following.startswith("--"):
                if not _is_bool(fields[name]):
                    raise ConfigError(f"{cls_name}: --{name} needs a value (--{name}=VALUE or --{name} VALUE)")
                raw = "true"  # a bare --flag
            else:
                raw = following
                i += 1
        found.setdefault(name, []).append(raw)
        i += 1
    return found


def parse_flags(cls_name: str, fields: dict[str, Any], args: Sequence[str]) -> dict[str, Any]:
    """Field values from ``args`` (``fields``: name -> annotation), before validation."""
    return {
        name: _decode_flag(cls_name, name, raws, fields[name]) for name, raws in split_flags(cls_name, fields, args).items()
    }


def names_a_field(fields: dict[str, Any], args: Sequence[str]) -> bool:
    """Whether ``args`` are flags (and their values) addressed to these fields: every
    argument a flag or a flag's value, and at least one flag naming a field."""
    named = False
    for i, arg in enumerate(args):
        if arg.startswith("--") and arg != "--":
            name = arg[2:].partition("=")[0].replace("-", "_")
            named = named or name in fields or (name.startswith("no_") and _is_bool(fields.get(name[3:])))
        elif i == 0 or not args[i - 1].startswith("--") or "=" in args[i - 1]:
            return False  # a stray argument: this command line is some other program's
    return named
