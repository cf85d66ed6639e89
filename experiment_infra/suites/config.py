"""Typed experiment configs and their exact round trip through a command line.

A suite builds configs in the parent; each case's entry point rebuilds its config in
a fresh subprocess from ``--field=value`` flags. The rule is that the child's config
equals the parent's, field for field, so values are encoded unambiguously
(``config_argv``: ``None`` as ``__none__``, enums by value, bools as true/false, and
lists, dicts and nested models as JSON, which can carry an empty list or a string
starting with ``-``, unlike repeated flags). By hand, every form pydantic-settings'
CLI reads works too, and no flag is ever skipped: a wrong one is one ``error:`` line.

An entry point may rebuild its config either way: ``MyConfig.from_cli()``, or the
spec's ``config = MyConfig()``, which reads the command line when this process is a
case's entry point (the runner says so in ``ENTRY_POINT_ENV``) or when a person runs
the entry point by hand (``python run_x.py --lr 0.1 --output_dir out``; see
``_process_args``). Anywhere else (a suite file, run or imported, a notebook, a test,
a suite being loaded) ``MyConfig()`` is the class defaults: a process's own flags
(``--dry-run``, ``-p 4``) never leak into a config.
"""

from __future__ import annotations

import os
import sys
import types
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, NoReturn, Sequence

from pydantic import PrivateAttr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .config_argv import (
    NONE_SENTINEL,
    ConfigError,
    admits_none,
    closest,
    decode_value,
    encode_value,
    is_dict_type,
    names_a_field,
    parse_flags,
    raw_string_type,
    type_name,
)

__all__ = [
    "ENTRY_POINT_ENV", "NONE_SENTINEL", "BaseExperimentConfig", "ConfigError", "ConfigUsageError",
    "configs_ignore_argv", "decode_value", "encode_value",
]
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


class ConfigUsageError(ConfigError, TypeError):
    """A config method used in a way that would skip its checks (``model_copy``)."""



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
        cls = type(self)
        from_argv = caller = None
        if not values:
            caller = _caller(self)
            args = _process_args(cls, caller)
            if args is not None:
                from_argv = _or_exit(lambda: cls._values_from_argv(args, with_help=True))
        try:
            super().__init__(**(from_argv if from_argv is not None else values))
        except ValidationError as exc:
            error = ConfigError(_one_line(cls.__name__, exc))
            if from_argv is not None:
                _exit_with(error)
            raise error from None
        if self.__dict__["output_dir"] or _ARGV_OFF.get():
            return
        if from_argv is not None:
            self._no_output_dir = "the command line has no --output_dir"
        elif caller is not None and caller.f_globals.get("__name__") == "__main__":
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

    @field_validator("*", mode="after")
    @classmethod
    def _no_ambiguous_none(cls, value: Any, info: ValidationInfo) -> Any:
        # "__none__" is None on a command line: a string field keeps it as a string
        # (inside lists, dicts and models too), except where None is also allowed and
        # the two could not be told apart. Never a silent None.
        if isinstance(value, str) and value == NONE_SENTINEL and info.field_name:
            annotation = cls.model_fields[info.field_name].annotation
            if raw_string_type(annotation) and admits_none(annotation):
                raise ValueError(
                    f"the string {NONE_SENTINEL!r} means None on a command line, so this optional "
                    "field cannot hold it; use None or another string"
                )
        return value

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
            near = [m for m in (closest(name, cls.model_fields) for name in unknown) if m]
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            raise ConfigError(
                f"{cls.__name__}.copy_with: unknown field(s) {', '.join(unknown)}{hint}; "
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
        raise ConfigUsageError(
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
        with configs_ignore_argv():  # {} means the defaults here, never argv
            return cls(**values)  # a bad value is a one-line ConfigError (__init__)

    # ------------------------------------------------------------- command line

    def to_argv(self, *, case: str = "") -> list[str]:
        """``--field=value`` flags that ``from_cli`` turns back into an equal config."""
        argv: list[str] = []
        for name, info in type(self).model_fields.items():
            value = self.__dict__[name]
            if value is None and is_dict_type(info.annotation):
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

        Every form ``config_argv`` reads; ``--help`` lists the fields. Bad flags raise
        ``ConfigError``; read from ``sys.argv`` they are one ``error:`` line and exit 2.
        """
        if argv is not None:
            return cls._validated(cls._values_from_argv(argv, with_help=True))
        args = sys.argv[1:]
        return _or_exit(lambda: cls._validated(cls._values_from_argv(args, with_help=True)))

    @classmethod
    def _values_from_argv(cls, args: Sequence[str], *, with_help: bool = False) -> dict[str, Any]:
        if with_help and any(a in ("-h", "--help") for a in args):
            print(cls.cli_help())
            raise SystemExit(0)
        fields = {name: info.annotation for name, info in cls.model_fields.items()}
        return parse_flags(cls.__name__, fields, args)

    @classmethod
    def cli_help(cls) -> str:
        prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] not in ("", "-c") else "ENTRY_POINT"
        lines = [f"usage: {prog} [--field=value ...]   ({cls.__name__})", "", "fields:"]
        for name, info in cls.model_fields.items():
            if info.is_required():
                default = "required"
            else:
                try:
                    default = f"default {encode_value(info.get_default(call_default_factory=True), info.annotation)}"
                except ConfigError:
                    default = f"default {info.get_default(call_default_factory=True)!r}"
            if name == "output_dir":
                default = "set by the runner; by hand, where to write"
            lines.append(f"  --{name:<20} {type_name(info.annotation):<24} ({default})")
        lines += [
            "",
            "--field=value or --field value; bools true/false (a bare --flag is true, --no-flag false);",
            "lists as JSON ([1,2]), repeated (--f 1 --f 2) or comma-separated (1,2); dicts as JSON or",
            f"key=value pairs; nested models as JSON; None as {NONE_SENTINEL}.",
        ]
        return "\n".join(lines)

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _exit_with(error: ConfigError) -> NoReturn:
    print(f"error: {error}", file=sys.stderr)
    raise SystemExit(error.exit_code)


def _or_exit(build: Any) -> Any:
    """``build()``, with a ``ConfigError`` as the one-line exit of a command line."""
    try:
        return build()
    except ConfigError as exc:
        _exit_with(exc)


def _same_file(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except (OSError, RuntimeError):
        return False


def _caller(config: BaseExperimentConfig) -> types.FrameType | None:
    """The frame that built ``config`` (past any ``__init__`` of its own subclasses)."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_name == "__init__" and frame.f_locals.get("self") is config:
        frame = frame.f_back
    return frame


# Names only a suite file uses: code that names one of them builds a suite, not a case.
_SUITE_NAMES = frozenset({"run_experiments_cli", "ExperimentCase", "AgentEvalSuite"})


@lru_cache(maxsize=64)
def _code_names(code: types.CodeType) -> frozenset[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return frozenset(names)


def _in_suite_code(frame: types.FrameType | None) -> bool:
    """Whether the construction runs in a suite file's code: its top level (run or
    imported, by an entry point too) or a function of it."""
    while frame is not None:
        if frame.f_code.co_name == "<module>":
            return bool(_SUITE_NAMES & _code_names(frame.f_code))
        if _SUITE_NAMES & frame.f_globals.keys():
            return True
        frame = frame.f_back
    return False


def _is_main_script(frame: types.FrameType) -> bool:
    main = sys.modules.get("__main__")
    if main is None or frame.f_globals is not vars(main):
        return False
    name = frame.f_globals.get("__file__")
    return bool(name and sys.argv and sys.argv[0]) and _same_file(name, sys.argv[0])


def _process_args(cls: type[BaseExperimentConfig], caller: types.FrameType | None) -> list[str] | None:
    """``sys.argv[1:]`` when a no-argument construction is an entry point reading its
    command line, else None (the class defaults).

    It is, and every flag in it must then be right: in a process the runner started
    (it names the entry point in ``ENTRY_POINT_ENV``); in a script a person runs, when
    the script itself builds the config; anywhere in a process whose arguments are flags
    naming the class's fields. It is not while suite files load, in a suite file's own
    code (run, or imported by an entry point) or where the arguments are another
    program's (pytest's, a notebook kernel's, a suite's ``--dry-run -p 4``).
    """
    if _ARGV_OFF.get() or _in_suite_code(caller):
        return None
    args = sys.argv[1:]
    started_by_runner = os.environ.get(ENTRY_POINT_ENV)
    if started_by_runner and sys.argv and _same_file(started_by_runner, sys.argv[0]):
        return args
    if not args:
        return None
    if caller is not None and _is_main_script(caller):
        return args
    fields = {name: info.annotation for name, info in cls.model_fields.items()}
    return args if names_a_field(fields, args) else None


def _no_output_dir_message(cls_name: str, why: str) -> str:
    return (
        f"{cls_name}.output_dir is not set ({why}): run this entry point through its suite "
        "(python SUITE.py or python flows/run_suite.py SUITE.py), or by hand with --output_dir=DIR"
    )


def _one_line(cls_name: str, exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or cls_name
        parts.append(f"{where}: {err['msg']}")
    return f"{cls_name}: " + "; ".join(parts)
