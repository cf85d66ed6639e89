"""Typed experiment configs and their exact round trip through a command line.

A suite builds configs in the parent; each case's entry point rebuilds its config in
a fresh subprocess from ``--field=value`` flags with pydantic-settings. The rule is
that the child's config equals the parent's, field for field, so values are encoded
unambiguously: ``None`` as ``__none__``, enums by value, bools as true/false, and
lists, dicts and nested models as JSON (which can carry an empty list or a string
starting with ``-``, unlike repeated flags).

An entry point may rebuild its config either way: ``MyConfig.from_cli()``, or the
spec's ``config = MyConfig()``, which reads the command line when this process is a
case's entry point (the runner says so in ``ENTRY_POINT_ENV``) or when a person runs
the entry point by hand with nothing but field flags (``python run_x.py --lr=0.1
--output_dir=out``). Anywhere else (a suite file, a notebook, a test, a suite being
loaded) ``MyConfig()`` is the class defaults: a process's own flags (``--dry-run``,
``-p 4``) never leak into a config.
"""

from __future__ import annotations

import json
import os
import sys
import types
import typing
from contextlib import contextmanager
from contextvars import ContextVar
from enum import Enum
from pathlib import Path
from typing import Any, Iterator, Sequence

from pydantic import PrivateAttr, ValidationError, field_validator
from pydantic_core import to_jsonable_python
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .errors import ExperimentError

NONE_SENTINEL = "__none__"
RUNNER_ONLY_FIELDS = frozenset({"output_dir"})
# Set by the runner in each case's environment: the entry point it started. A config
# built with no arguments in that process (and no other) reads its fields from argv.
ENTRY_POINT_ENV = "EXPERIMENT_INFRA_ENTRY_POINT"
# True while suite files are loaded (and while this module builds configs itself):
# a no-argument config is then the class defaults, whatever argv holds.
_ARGV_OFF: ContextVar[bool] = ContextVar("experiment_infra_argv_off", default=False)


@contextmanager
def configs_ignore_argv() -> Iterator[None]:
    """Within this block ``MyConfig()`` never reads the command line (used to load suite files)."""
    token = _ARGV_OFF.set(True)
    try:
        yield
    finally:
        _ARGV_OFF.reset(token)


class ConfigError(ExperimentError, ValueError):
    """A config that cannot be built or cannot travel to its entry point."""


def _replace_sentinel(value: Any) -> Any:
    if isinstance(value, str) and value == NONE_SENTINEL:
        return None
    if isinstance(value, list):
        return [_replace_sentinel(v) for v in value]
    if isinstance(value, dict):
        return {k: _replace_sentinel(v) for k, v in value.items()}
    return value


class BaseExperimentConfig(BaseSettings):
    """Base class of every experiment config: frozen, typed, rebuilt from argv.

    ``output_dir`` is set by the runner (the case's results directory) and
    ``seed`` defaults to 42. Derive variants with ``copy_with(**changes)``.
    """

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        validate_default=True,
    )

    output_dir: str = ""
    seed: int = 42
    # A config built in a script's top level with nowhere to write: reading its
    # output_dir is an error instead of a silent write into the current directory.
    _no_output_dir: str = PrivateAttr(default="")

    def __init__(self, **values: Any) -> None:
        from_argv = None
        if not values and not _ARGV_OFF.get():
            from_argv = _argv_values(type(self))
        super().__init__(**(from_argv if from_argv is not None else values))
        if self.__dict__["output_dir"] or _ARGV_OFF.get():
            return
        if from_argv is not None:
            self._no_output_dir = "the command line has no --output_dir"
        elif not values and sys._getframe(1).f_globals.get("__name__") == "__main__":
            self._no_output_dir = "it was built with no arguments outside a case"

    def __getattribute__(self, name: str) -> Any:
        if name == "output_dir":
            value = object.__getattribute__(self, "__dict__")["output_dir"]
            if not value:
                private = object.__getattribute__(self, "__pydantic_private__") or {}
                if private.get("_no_output_dir"):
                    raise ConfigError(_no_output_dir_message(type(self).__name__, private["_no_output_dir"]))
            return value
        return object.__getattribute__(self, name)

    @property
    def assigned_output_dir(self) -> str:
        """``output_dir`` as set ("" when the runner has not placed this config), never an error."""
        return self.__dict__["output_dir"]

    @field_validator("*", mode="before")
    @classmethod
    def _none_sentinel(cls, value: Any) -> Any:
        return _replace_sentinel(value)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only the suite (init) and the command line may set a field: an ambient
        # SEED or OUTPUT_DIR variable must not change what a case computes.
        return (init_settings,)

    # ------------------------------------------------------------------ building

    def copy_with(self, **changes: Any) -> BaseExperimentConfig:
        """A validated copy with ``changes`` applied (unknown names are errors)."""
        cls = type(self)
        unknown = sorted(set(changes) - set(cls.model_fields))
        if unknown:
            raise ConfigError(
                f"{cls.__name__}.copy_with: unknown field(s) {', '.join(unknown)}; "
                f"valid fields: {', '.join(cls.model_fields)}"
            )
        runner_only = sorted(set(changes) & RUNNER_ONLY_FIELDS)
        if runner_only:
            raise ConfigError(
                f"{cls.__name__}.copy_with: {runner_only[0]} is set by the runner for each case; "
                "remove it from the suite"
            )
        return cls._validated({**self._field_values(), **changes})

    def model_copy(self, *args: Any, **kwargs: Any) -> BaseExperimentConfig:  # type: ignore[override]
        raise TypeError(
            f"{type(self).__name__}.model_copy() skips validation and ignores misspelt "
            "field names; use copy_with(**changes)"
        )

    def with_output_dir(self, output_dir: str) -> BaseExperimentConfig:
        """The runner's way to place a case: the one path that may set ``output_dir``."""
        return type(self)._validated({**self._field_values(), "output_dir": output_dir})

    def _field_values(self) -> dict[str, Any]:
        return {name: self.__dict__[name] for name in type(self).model_fields}

    @classmethod
    def _validated(cls, values: dict[str, Any]) -> BaseExperimentConfig:
        try:
            with configs_ignore_argv():  # {} means the defaults here, never argv
                return cls(**values)
        except ValidationError as exc:
            raise ConfigError(_one_line(cls.__name__, exc)) from None

    # ------------------------------------------------------------- command line

    def to_argv(self, *, case: str = "") -> list[str]:
        """``--field=value`` flags that ``from_cli`` turns back into an equal config."""
        argv: list[str] = []
        for name, info in type(self).model_fields.items():
            value = self.__dict__[name]
            if value is None and _is_dict_type(info.annotation):
                where = f"case {case!r}: " if case else ""
                raise ConfigError(
                    f"{where}field {name!r} is a dict set to None, which cannot reach the entry "
                    "point unambiguously; use {} or a non-dict type"
                )
            argv.append(f"--{name}={encode_value(value, info.annotation)}")
        return argv

    @classmethod
    def from_cli(cls, argv: Sequence[str] | None = None) -> BaseExperimentConfig:
        """Rebuild the config in an entry point (``argv`` defaults to ``sys.argv[1:]``).

        Accepts ``--field=value`` and ``--field value``; ``--help`` lists the fields.
        """
        args = list(sys.argv[1:] if argv is None else argv)
        if any(a in ("-h", "--help") for a in args):
            print(cls.cli_help())
            raise SystemExit(0)
        return cls._validated(cls._values_from_argv(args))

    @classmethod
    def _values_from_argv(cls, args: Sequence[str]) -> dict[str, Any]:
        fields = cls.model_fields
        values: dict[str, Any] = {}
        for name, raw in _flag_pairs(cls.__name__, args):
            if name not in fields:
                raise ConfigError(f"{cls.__name__}: unknown field --{name}; valid fields: {', '.join(fields)}")
            values[name] = decode_value(raw, fields[name].annotation)
        return values

    @classmethod
    def cli_help(cls) -> str:
        lines = [f"usage: ENTRY_POINT [--field=value ...]   ({cls.__name__})", ""]
        for name, info in cls.model_fields.items():
            default = "required" if info.is_required() else f"default {info.get_default()!r}"
            lines.append(f"  --{name}=  {_type_name(info.annotation)}  ({default})")
        lines.append(f"\nNone is written {NONE_SENTINEL}; lists, dicts and nested models as JSON.")
        return "\n".join(lines)

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _flag_pairs(cls_name: str, args: Sequence[str]) -> list[tuple[str, str]]:
    """``--name=value`` / ``--name value`` pairs (names with ``_`` for ``-``)."""
    pairs = []
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise ConfigError(f"{cls_name}: unexpected argument {arg!r}; expected --field=value")
        name, eq, raw = arg[2:].partition("=")
        name = name.replace("-", "_")
        if not eq:
            if i + 1 >= len(args):
                raise ConfigError(f"{cls_name}: --{name} needs a value")
            i += 1
            raw = args[i]
        pairs.append((name, raw))
        i += 1
    return pairs


def _same_file(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except (OSError, RuntimeError):
        return False


def _argv_values(cls: type[BaseExperimentConfig]) -> dict[str, Any] | None:
    """Field values from ``sys.argv`` when this process is the config's entry point, else None.

    The runner names the entry point in ``ENTRY_POINT_ENV``: there argv is the case's
    command line and anything off in it is an error. Without it (a person running the
    entry point by hand), argv counts only when every argument is a flag naming one of
    the class's fields, so a suite's ``--dry-run -p 4`` or pytest's flags are never
    mistaken for a config.
    """
    args = sys.argv[1:]
    started_by_runner = os.environ.get(ENTRY_POINT_ENV)
    if started_by_runner and sys.argv and _same_file(started_by_runner, sys.argv[0]):
        return cls._values_from_argv(args)
    if not args:
        return None
    try:
        pairs = _flag_pairs(cls.__name__, args)
    except ConfigError:
        return None
    if not all(name in cls.model_fields for name, _ in pairs):
        return None
    return cls._values_from_argv(args)


def _no_output_dir_message(cls_name: str, why: str) -> str:
    return (
        f"{cls_name}.output_dir is not set ({why}): run this entry point through its suite "
        "(python SUITE.py or python flows/run_suite.py SUITE.py), or by hand with --output_dir=DIR"
    )


def _raw_string_type(annotation: Any) -> bool:
    """Fields whose values travel as the bare string (str, string enums, string Literals)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return len(args) == 1 and _raw_string_type(args[0])
    if annotation is str:
        return True
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return all(isinstance(m.value, str) for m in annotation)
    if origin is typing.Literal:
        return all(isinstance(a, str) for a in typing.get_args(annotation))
    return False


def encode_value(value: Any, annotation: Any = None) -> str:
    """One field value as a single argv string (see the module docstring)."""
    if value is None:
        return NONE_SENTINEL
    if _raw_string_type(annotation):
        return value.value if isinstance(value, Enum) else str(value)
    try:
        return json.dumps(to_jsonable_python(value), allow_nan=True)
    except Exception as exc:
        raise ConfigError(f"cannot pass a {type(value).__name__} on a command line: {exc}") from None


def decode_value(raw: str, annotation: Any) -> Any:
    if raw == NONE_SENTINEL:
        return None
    if _raw_string_type(annotation):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        # Hand-typed values such as --color=blue for an enum-or-int field stay
        # strings and pydantic decides; what the runner writes is always JSON.
        return raw


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _is_dict_type(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if annotation is dict or origin is dict:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_is_dict_type(a) for a in typing.get_args(annotation))
    return False


def _one_line(cls_name: str, exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or cls_name
        parts.append(f"{where}: {err['msg']}")
    return f"{cls_name}: " + "; ".join(parts)
