"""Typed experiment configs and their exact round trip through a command line.

A suite builds configs in the parent; each case's entry point rebuilds its config in
a fresh subprocess from ``--field=value`` flags with pydantic-settings. The rule is
that the child's config equals the parent's, field for field, so values are encoded
unambiguously: ``None`` as ``__none__``, enums by value, bools as true/false, and
lists, dicts and nested models as JSON (which can carry an empty list or a string
starting with ``-``, unlike repeated flags).
"""

from __future__ import annotations

import json
import sys
import types
import typing
from enum import Enum
from typing import Any, Sequence

from pydantic import ValidationError, field_validator
from pydantic_core import to_jsonable_python
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

NONE_SENTINEL = "__none__"
RUNNER_ONLY_FIELDS = frozenset({"output_dir"})


class ConfigError(ValueError):
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
        return {name: getattr(self, name) for name in type(self).model_fields}

    @classmethod
    def _validated(cls, values: dict[str, Any]) -> BaseExperimentConfig:
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigError(_one_line(cls.__name__, exc)) from None

    # ------------------------------------------------------------- command line

    def to_argv(self, *, case: str = "") -> list[str]:
        """``--field=value`` flags that ``from_cli`` turns back into an equal config."""
        argv: list[str] = []
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
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
        fields = cls.model_fields
        values: dict[str, Any] = {}
        i = 0
        while i < len(args):
            arg = args[i]
            if not arg.startswith("--"):
                raise ConfigError(f"{cls.__name__}: unexpected argument {arg!r}; expected --field=value")
            name, eq, raw = arg[2:].partition("=")
            name = name.replace("-", "_")
            if not eq:
                if i + 1 >= len(args):
                    raise ConfigError(f"{cls.__name__}: --{name} needs a value")
                i += 1
                raw = args[i]
            if name not in fields:
                raise ConfigError(f"{cls.__name__}: unknown field --{name}; valid fields: {', '.join(fields)}")
            values[name] = decode_value(raw, fields[name].annotation)
            i += 1
        return cls._validated(values)

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
