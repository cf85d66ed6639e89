"""Configs survive the trip to a subprocess and back exactly; bad changes are refused."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from conftest import REPO_ROOT
from experiment_infra import BaseExperimentConfig, ConfigError, ExperimentCase
from experiment_infra.suites.config import NONE_SENTINEL

# The config classes live in a source string so the child process can import the
# very same definitions (tests/ is not a package).
CONFIG_SOURCE = '''
from __future__ import annotations

from enum import Enum, IntEnum
from typing import Literal, Optional, Union

from pydantic import BaseModel

from experiment_infra import BaseExperimentConfig


class Color(str, Enum):
    RED = "red"
    DASH = "-blue"


class Level(IntEnum):
    LOW = 1
    HIGH = 10


class Shape(Enum):
    ROUND = 3
    SQUARE = 4


class Optimizer(BaseModel):
    name: str = "adam"
    lr: float = 1e-3
    betas: list[float] = [0.9, 0.999]
    schedule: Optional[str] = None


class Everything(BaseExperimentConfig):
    color: Color = Color.RED
    level: Level = Level.LOW
    shape: Shape = Shape.ROUND
    flag: bool = False
    other_flag: bool = True
    count: int = 0
    big: int = 2**70
    ratio: float = 0.5
    text: str = "plain"
    maybe_text: Optional[str] = None
    maybe_int: Optional[int] = None
    names: list[str] = []
    holes: list[Optional[int]] = []
    table: dict[str, float] = {}
    nested_table: dict[str, list[int]] = {}
    optimizer: Optimizer = Optimizer()
    optimizers: list[Optimizer] = []
    choice: Literal["a", "b-c"] = "a"
    number_choice: Literal[1, 2] = 1
    either: Union[int, str] = 0
    float_or_none: float | None = 1.0
    ints_or_none: list[int] | None = None
    maybe_table: dict[str, int] | None = {}
'''

_module = types.ModuleType("everything_config")
sys.modules[_module.__name__] = _module  # pydantic resolves the annotations through it
exec(compile(CONFIG_SOURCE, "everything_config.py", "exec"), _module.__dict__)  # noqa: S102 - our own source
Everything = _module.Everything
Color, Level, Shape, Optimizer = _module.Color, _module.Level, _module.Shape, _module.Optimizer

NASTY_STRINGS = [
    "",
    "line one\nline two\n",
    'double " and single \' quotes',
    "-starts-with-dash",
    "--looks=like-a-flag",
    "; rm -rf / && echo $(whoami) | cat > /tmp/x `id` * ? ~ & <",
    "tab\there and a backslash \\ and unicode é ✓",
    "  padded  ",
    "null",
    "true",
    "42",
    "[1, 2]",
]

CASES = {
    "defaults": {},
    "enums": dict(color=Color.DASH, level=Level.HIGH, shape=Shape.SQUARE),
    "bools": dict(flag=True, other_flag=False),
    "ints": dict(count=-7, big=-(2**70), number_choice=2),
    "floats_exact": dict(ratio=0.1 + 0.2, float_or_none=1e-300),
    "inf": dict(ratio=float("inf"), float_or_none=float("-inf")),
    "negative_zero": dict(ratio=-0.0),
    "none_everywhere": dict(maybe_text=None, maybe_int=None, float_or_none=None, ints_or_none=None),
    "none_sentinel_in_lists": dict(holes=[None, 1, None], names=[]),
    "empty_collections": dict(names=[], holes=[], table={}, nested_table={}, ints_or_none=[], maybe_table={}),
    "dash_strings_in_lists": dict(names=["-x", "--y=1", "", "a b"]),
    "dicts": dict(table={"a": 0.1, "b-c": -2.5, "": 1.0}, nested_table={"k": [1, 2], "empty": []}),
    "nested_models": dict(
        optimizer=Optimizer(name="sgd", lr=0.1 + 0.2, betas=[], schedule=None),
        optimizers=[Optimizer(), Optimizer(name="-odd\nname", schedule="cosine")],
    ),
    "literal_and_union": dict(choice="b-c", either="a string"),
    "union_int": dict(either=-3),
    "union_numeric_string": dict(either="12"),
    **{f"string_{i}": dict(text=s, maybe_text=s) for i, s in enumerate(NASTY_STRINGS)},
}


def _round_trip(config: BaseExperimentConfig) -> BaseExperimentConfig:
    return type(config).from_cli(config.to_argv())


@pytest.mark.parametrize("changes", CASES.values(), ids=list(CASES))
def test_every_field_type_round_trips_exactly(changes: dict) -> None:
    config = Everything().copy_with(**changes)
    back = _round_trip(config)
    assert back == config
    # repr tells 1 from 1.0, -0.0 from 0.0 and an enum member from its value.
    assert repr(back) == repr(config)


def test_union_keeps_numeric_looking_string_a_string() -> None:
    back = _round_trip(Everything(either="12"))
    assert back.either == "12" and isinstance(back.either, str)


def test_nan_round_trips() -> None:
    back = _round_trip(Everything(ratio=float("nan")))
    assert math.isnan(back.ratio)


@settings(max_examples=150, deadline=None)
@given(
    text=st.one_of(st.just(NONE_SENTINEL), st.text()),
    names=st.lists(st.one_of(st.just(NONE_SENTINEL), st.text())),
    table=st.dictionaries(st.one_of(st.just(NONE_SENTINEL), st.text()), st.floats(allow_nan=False)),
)
def test_any_string_round_trips(text: str, names: list[str], table: dict[str, float]) -> None:
    """Any string, "__none__" included, in a string field, a list or a dict key."""
    config = Everything(text=text, names=names, table=table)
    assert (config.text, config.names, config.table) == (text, names, table)
    assert _round_trip(config) == config


def test_child_process_rebuilds_the_same_config(tmp_path: Path) -> None:
    """The real trip: argv to a fresh ``python`` process, which prints what it parsed."""
    (tmp_path / "everything_config.py").write_text(CONFIG_SOURCE)
    (tmp_path / "child.py").write_text(
        textwrap.dedent(
            """
            import json, sys
            from everything_config import Everything
            config = Everything.from_cli()
            print(json.dumps({"repr": repr(config), "seed": config.seed}))
            """
        )
    )
    configs = [Everything().copy_with(**changes) for changes in CASES.values()]
    for config in configs:
        argv = config.with_output_dir(str(tmp_path / "out")).to_argv(case="c")
        done = subprocess.run(
            [sys.executable, str(tmp_path / "child.py"), *argv],
            capture_output=True, text=True, cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT), "SEED": "7"},
        )
        assert done.returncode == 0, done.stderr
        child = json.loads(done.stdout)
        assert child["repr"] == repr(config.with_output_dir(str(tmp_path / "out")))
        assert child["seed"] == 42  # SEED in the child's environment changes nothing


@pytest.mark.parametrize("route", ["started by the runner", "run by hand"])
def test_the_specs_entry_point_shape_rebuilds_the_same_config(tmp_path: Path, route: str) -> None:
    """``config = Everything()`` in an entry point rebuilds exactly what ``from_cli()`` does,
    for every field type, whether the runner started it or a person typed the flags."""
    from experiment_infra.suites.config import ENTRY_POINT_ENV

    (tmp_path / "everything_config.py").write_text(CONFIG_SOURCE)
    child = tmp_path / "child.py"
    child.write_text(
        textwrap.dedent(
            """
            import json
            from everything_config import Everything
            config = Everything()
            print(json.dumps({"repr": repr(config), "cli": repr(Everything.from_cli())}))
            """
        )
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)}
    if route == "started by the runner":
        env[ENTRY_POINT_ENV] = str(child)
    for changes in CASES.values():
        config = Everything().copy_with(**changes).with_output_dir(str(tmp_path / "out"))
        done = subprocess.run(
            [sys.executable, str(child), *config.to_argv(case="c")], capture_output=True, text=True, cwd=tmp_path, env=env,
        )
        assert done.returncode == 0, done.stderr
        got = json.loads(done.stdout)
        assert got["repr"] == got["cli"] == repr(config)


def test_seed_env_var_does_not_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEED", "7")
    monkeypatch.setenv("OUTPUT_DIR", "/somewhere")
    config = Everything()
    assert config.seed == 42 and config.output_dir == ""
    assert Everything.from_cli([]).seed == 42


def test_seed_and_output_dir_fields_exist() -> None:
    config = Everything(seed=3)
    assert config.seed == 3
    assert config.with_output_dir("/r/case").output_dir == "/r/case"


# ------------------------------------------------------------------ refusing bad input


def test_copy_with_unknown_field_names_it() -> None:
    with pytest.raises(ConfigError, match=r"unknown field\(s\) colour") as info:
        Everything().copy_with(colour="red")
    assert "\n" not in str(info.value)


def test_copy_with_output_dir_is_refused() -> None:
    with pytest.raises(ConfigError, match="output_dir is set by the runner"):
        Everything().copy_with(output_dir="/tmp/x")


def test_copy_with_validates_values() -> None:
    with pytest.raises(ConfigError, match="count") as info:
        Everything().copy_with(count="many")
    assert "\n" not in str(info.value)


def test_copy_with_returns_new_config_and_leaves_original() -> None:
    base = Everything()
    changed = base.copy_with(count=5)
    assert (base.count, changed.count) == (0, 5)


def test_model_copy_is_refused() -> None:
    with pytest.raises(TypeError, match="copy_with"):
        Everything().model_copy(update={"colr": "red"})


def test_configs_are_frozen() -> None:
    config = Everything()
    with pytest.raises(ValidationError):
        config.count = 3  # type: ignore[misc]


def test_suite_may_not_set_output_dir_in_a_case() -> None:
    with pytest.raises(ConfigError, match="output_dir is set by the runner"):
        ExperimentCase("a", Everything(output_dir="/tmp/x"))


def test_dict_set_to_none_is_refused_naming_field_and_case() -> None:
    config = Everything(maybe_table=None)
    with pytest.raises(ConfigError) as info:
        config.to_argv(case="variant-7")
    message = str(info.value)
    assert "maybe_table" in message and "variant-7" in message and "\n" not in message


def test_from_cli_rejects_unknown_flag() -> None:
    with pytest.raises(ConfigError, match="unknown flag --colr; did you mean --color?"):
        Everything.from_cli(["--colr=red"])


def test_enum_and_bool_travel_by_value() -> None:
    argv = Everything(color=Color.DASH, flag=True, level=Level.HIGH).to_argv()
    assert "--color=-blue" in argv and "--flag=true" in argv and "--level=10" in argv


# ------------------------------------------------------------------ "__none__" is never a silent None


def test_the_none_sentinel_string_is_carried_exactly_where_it_is_unambiguous() -> None:
    optimizer = Optimizer(name=NONE_SENTINEL, schedule=NONE_SENTINEL)
    config = Everything(
        text=NONE_SENTINEL, names=[NONE_SENTINEL], either=NONE_SENTINEL, optimizer=optimizer,
        optimizers=[optimizer], holes=[None, 1],
    )
    changed = Everything().copy_with(text=NONE_SENTINEL, names=["a", NONE_SENTINEL])
    assert (config.text, config.names, config.either) == (NONE_SENTINEL, [NONE_SENTINEL], NONE_SENTINEL)
    assert config.optimizer.schedule == NONE_SENTINEL and config.optimizers[0].name == NONE_SENTINEL
    assert (changed.text, changed.names) == (NONE_SENTINEL, ["a", NONE_SENTINEL])
    for each in (config, changed):
        back = _round_trip(each)
        assert back == each and repr(back) == repr(each)


@pytest.mark.parametrize("how", ["constructor", "copy_with"])
def test_the_none_sentinel_in_an_optional_string_field_is_refused_naming_it(how: str) -> None:
    """An optional string holding "__none__" could not be told from None on the command line."""
    with pytest.raises(ConfigError) as info:
        if how == "constructor":
            Everything(maybe_text=NONE_SENTINEL)
        else:
            Everything().copy_with(maybe_text=NONE_SENTINEL)
    message = str(info.value)
    assert message.startswith("Everything: maybe_text: ") and "'__none__' means None" in message
    assert "\n" not in message


# ------------------------------------------------------------------ an entry point run by hand

PROBE_CONFIG = """
from enum import Enum
from typing import Optional

from experiment_infra import BaseExperimentConfig


class Model(str, Enum):
    FOREST = "forest"
    KNN = "knn"


class ProbeConfig(BaseExperimentConfig):
    n_estimators: int = 50
    model: Model = Model.FOREST
    verbose: bool = False
    classes: list[int] = [0, 1]
    labels: list[str] = []
    weights: dict[str, float] = {}
    note: Optional[str] = "x"
    depth: Optional[int] = 3
"""

PROBE = """
import json
from pathlib import Path

from probe_config import ProbeConfig

config = ProbeConfig()
Path(config.output_dir, "config.json").write_text(json.dumps(config.model_dump(mode="json")))
"""


def _probe(tmp_path: Path) -> Path:
    (tmp_path / "probe_config.py").write_text(PROBE_CONFIG)
    (tmp_path / "probe.py").write_text(PROBE)
    (tmp_path / "out").mkdir()
    return tmp_path / "probe.py"


def _run_probe(tmp_path: Path, *flags: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(tmp_path / "probe.py"), *flags], capture_output=True, text=True, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT), **(env or {})}, timeout=120,
    )


BY_HAND = {
    "the issue's command": (
        ["--output_dir", "out", "--n_estimators", "5", "--model", "knn", "--verbose"],
        dict(n_estimators=5, model="knn", verbose=True),
    ),
    "equals signs and explicit bools": (
        ["--output_dir=out", "--verbose=true", "--n_estimators=7", "--depth=__none__"],
        dict(verbose=True, n_estimators=7, depth=None),
    ),
    "a bool's value after it": (["--output_dir", "out", "--verbose", "false"], dict(verbose=False)),
    "repeated list flags (the reference runner)": (
        ["--output_dir", "out", "--classes", "1", "--classes", "2", "--labels", "a", "--labels", "b c"],
        dict(classes=[1, 2], labels=["a", "b c"]),
    ),
    "comma-separated lists": (["--output_dir", "out", "--classes", "3,4,5", "--labels=x,y"], dict(classes=[3, 4, 5], labels=["x", "y"])),
    "JSON lists and dicts": (
        ["--output_dir", "out", "--classes", "[]", "--labels", '["a,b"]', "--weights", '{"a": 0.5}'],
        dict(classes=[], labels=["a,b"], weights={"a": 0.5}),
    ),
    "dicts as key=value": (["--output_dir", "out", "--weights", "a=1", "--weights", "b=2.5,c=-1"], dict(weights={"a": 1.0, "b": 2.5, "c": -1.0})),
    "None as __none__": (["--output_dir", "out", "--note", "__none__", "--depth", "__none__"], dict(note=None, depth=None)),
    "dashes for underscores": (["--output-dir", "out", "--n-estimators", "9"], dict(n_estimators=9)),
}


@pytest.mark.parametrize("flags,expected", BY_HAND.values(), ids=list(BY_HAND))
def test_an_entry_point_run_by_hand_reads_every_flag(tmp_path: Path, flags: list[str], expected: dict) -> None:
    """``config = ProbeConfig()`` takes every flag of the forms pydantic-settings' CLI and the
    spec's reference runner use; none is skipped."""
    _probe(tmp_path)
    done = _run_probe(tmp_path, *flags)
    assert done.returncode == 0, done.stderr
    got = json.loads((tmp_path / "out" / "config.json").read_text())
    defaults = {"n_estimators": 50, "model": "forest", "verbose": False, "classes": [0, 1], "labels": [], "weights": {},
                "note": "x", "depth": 3, "seed": 42, "output_dir": "out"}
    assert got == {**defaults, **expected}


def test_no_flag_sets_a_bool_false_and_may_not_contradict_it(tmp_path: Path) -> None:
    _probe(tmp_path)
    done = _run_probe(tmp_path, "--output_dir", "out", "--verbose", "--no-verbose")
    assert done.returncode == 2 and "--verbose given 2 times" in done.stderr
    done = _run_probe(tmp_path, "--output_dir", "out", "--no-verbose")
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "out" / "config.json").read_text())["verbose"] is False


WRONG = {
    "misspelled flag": (
        ["--output_dir", "out", "--n_estimator", "5", "--model", "knn"],
        "error: ProbeConfig: unknown flag --n_estimator; did you mean --n_estimators? fields: output_dir, seed, "
        "n_estimators, model, verbose, classes, labels, weights, note, depth",
    ),
    "unknown flag": (["--output_dir", "out", "--lr", "0.1"], "error: ProbeConfig: unknown flag --lr; fields: output_dir, seed, "
                     "n_estimators, model, verbose, classes, labels, weights, note, depth"),
    "stray argument": (["--output_dir", "out", "5"], "error: ProbeConfig: unexpected argument '5'; flags are --field=value or --field value"),
    "scalar given twice": (["--output_dir", "out", "--n_estimators", "1", "--n_estimators", "2"],
                           "error: ProbeConfig: --n_estimators given 2 times ('1', then '2'); give it once"),
    "missing value": (["--output_dir", "out", "--model"], "error: ProbeConfig: --model needs a value (--model=VALUE or --model VALUE)"),
    "bad value": (["--output_dir", "out", "--n_estimators", "many"],
                  "error: ProbeConfig: n_estimators: Input should be a valid integer, unable to parse string as an integer"),
    "bad dict": (["--output_dir", "out", "--weights", "a"], "error: ProbeConfig: --weights: expected a JSON object or key=value pairs, got 'a'"),
}


@pytest.mark.parametrize("route", ["by hand", "started by the runner"])
@pytest.mark.parametrize("flags,line", WRONG.values(), ids=list(WRONG))
def test_a_wrong_flag_is_one_error_line_and_exit_2(tmp_path: Path, flags: list[str], line: str, route: str) -> None:
    from experiment_infra.suites.config import ENTRY_POINT_ENV

    probe = _probe(tmp_path)
    env = {ENTRY_POINT_ENV: str(probe)} if route == "started by the runner" else None
    done = _run_probe(tmp_path, *flags, env=env)
    assert (done.returncode, done.stderr.splitlines(), done.stdout) == (2, [line], "")
    assert list((tmp_path / "out").iterdir()) == []


def test_help_lists_every_field_with_its_type_and_default(tmp_path: Path) -> None:
    _probe(tmp_path)
    done = _run_probe(tmp_path, "--help")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "usage: probe.py [--field=value ...]   (ProbeConfig)"
    table = {line.split()[0]: line for line in lines if line.startswith("  --")}
    assert list(table) == [f"--{f}" for f in ("output_dir", "seed", "n_estimators", "model", "verbose", "classes",
                                              "labels", "weights", "note", "depth")]
    assert table["--model"].split()[1:] == ["{forest,knn}", "(default", "forest)"]
    assert table["--classes"].split()[1:] == ["list[int]", "(default", "[0,", "1])"]
    assert table["--note"].split()[1:4] == ["str", "or", "__none__"]
    assert list((tmp_path / "out").iterdir()) == []


def test_pytests_own_flags_never_reach_a_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Construction in a test (or a notebook) is the class defaults, whatever argv holds."""
    monkeypatch.setattr(sys, "argv", ["pytest", "-x", "-q", "--tb=short", "tests/test_config.py"])
    assert Everything() == Everything.from_cli([])


SUITE_NEXT_TO_IT = """
from experiment_infra import ExperimentCase
from probe_config import ProbeConfig

base = ProbeConfig()
cases = [ExperimentCase("deep", base.copy_with(depth=9)), ExperimentCase("knn", base.copy_with(model="knn"))]
"""


def test_an_entry_point_may_import_its_own_suite(tmp_path: Path) -> None:
    """The suite module's ``ProbeConfig()`` is the class defaults even in a case's process:
    only the entry point's own config reads the command line."""
    from experiment_infra.suites.config import ENTRY_POINT_ENV

    probe = _probe(tmp_path)
    (tmp_path / "suite_probe.py").write_text(SUITE_NEXT_TO_IT)
    probe.write_text("import suite_probe\n" + PROBE + "\nassert [c.config.depth for c in suite_probe.cases] == [9, 3]\n")
    done = _run_probe(tmp_path, "--output_dir=out", "--depth=9", env={ENTRY_POINT_ENV: str(probe)})
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "out" / "config.json").read_text())["depth"] == 9
