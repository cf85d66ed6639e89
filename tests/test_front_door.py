"""The front door: files written exactly as the experiment-infrastructure spec shows them
run unchanged, dry runs answer without Prefect, and a first run survives a slow server start.

The suite file and entry point below are the spec's shapes, not this project's: module
level ``cases``, ``run_experiments_cli(cases, entry_point=..., experiment_name=...)``
under ``__main__`` and nothing else; ``config = MyExperimentConfig()`` in the entry point.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import PYTHON, REPO_ROOT, shared_server_env
from prerequisites import require_module


CONFIG = '''
from experiment_infra import BaseExperimentConfig


class MyExperimentConfig(BaseExperimentConfig):
    learning_rate: float = 0.01
    model: str = "small"
    layers: list[int] = [64]
'''

ENTRY = '''
import json
from pathlib import Path

from my_config import MyExperimentConfig

config = MyExperimentConfig()

out = Path(config.output_dir)
(out / "result.json").write_text(json.dumps({"learning_rate": config.learning_rate, "model": config.model,
                                             "layers": config.layers, "output_dir": config.output_dir}))
'''

SUITE = '''
from my_config import MyExperimentConfig

from experiment_infra import ExperimentCase, run_experiments_cli

cases = [
    ExperimentCase(variant_name="lr_0.01", config=MyExperimentConfig(learning_rate=0.01)),
    ExperimentCase(variant_name="lr_0.1_big", config=MyExperimentConfig(learning_rate=0.1, model="big", layers=[])),
]

if __name__ == "__main__":
    run_experiments_cli(cases, entry_point="run_my_experiment.py", experiment_name="my-experiment"{mode})
'''


def spec_files(where: Path, mode: str = "") -> Path:
    where.mkdir(parents=True)
    (where / "my_config.py").write_text(CONFIG)
    (where / "run_my_experiment.py").write_text(ENTRY)
    suite = where / "suite_my_experiment.py"
    suite.write_text(SUITE.format(mode=mode))
    return suite


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env=env if env is not None else shared_server_env(),
    )


def case_results(results: Path) -> dict[str, dict]:
    (run_dir,) = (results / "my-experiment").iterdir()
    return {
        case.name: json.loads((case / "result.json").read_text())
        for case in run_dir.iterdir() if case.is_dir() and (case / "result.json").exists()
    }


EXPECTED = {
    "lr_0.01": {"learning_rate": 0.01, "model": "small", "layers": [64]},
    "lr_0.1_big": {"learning_rate": 0.1, "model": "big", "layers": []},
}


@pytest.mark.parametrize("route", ["suite_file", "run_suite"])
def test_spec_shaped_suite_and_entry_point_run_unchanged(tmp_path: Path, route: str) -> None:
    suite = spec_files(tmp_path / "exp")
    work = tmp_path / "cwd"
    work.mkdir()
    results = work / "results"
    command = [suite] if route == "suite_file" else [REPO_ROOT / "flows" / "run_suite.py", suite]

    done = run(*command, "-p", "2", cwd=work)

    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    got = case_results(results)
    assert set(got) == set(EXPECTED)
    for variant, result in got.items():
        # Each case read its own config and wrote into its own directory, nowhere else.
        assert {k: result[k] for k in EXPECTED[variant]} == EXPECTED[variant]
        assert Path(result["output_dir"]).name == variant
    assert sorted(p.name for p in work.iterdir()) == ["results"]
    assert "2 completed" in done.stdout


def test_spec_shaped_dry_run_needs_no_prefect_and_writes_nothing(tmp_path: Path) -> None:
    suite = spec_files(tmp_path / "exp")
    home = tmp_path / "prefect-home-never-created"
    env = {**os.environ, "PREFECT_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)

    for command in ([suite], [REPO_ROOT / "flows" / "run_suite.py", suite]):
        done = run("-X", "importtime", *command, "--dry-run", "-p", "2", cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "lr_0.1_big ->" in done.stdout and "nothing written, nothing started" in done.stdout
        # The suite process's own flags never reached the configs: the class's and the suite's values.
        assert "--learning_rate=0.1 --model=big '--layers=[]'" in done.stdout
        imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
        assert "prefect" not in imported
    assert not home.exists() and not (tmp_path / "results").exists()


def test_inspect_mode_passed_to_the_call_is_honoured(tmp_path: Path) -> None:
    require_module("inspect_ai", "needs Inspect AI, an optional extra: pip install -e '.[inspect]' (`make setup` installs it)")
    suite = spec_files(tmp_path / "exp", mode=', mode="inspect"')
    done = run(suite, "--dry-run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "dry run: inspect logs would go flat into" in done.stdout and "(inspect)" in done.stdout


def test_agent_eval_suite_object_through_the_call(tmp_path: Path) -> None:
    demo = REPO_ROOT / "experiments" / "agent_eval_demo" / "suite_agent_eval_demo.py"
    done = run(demo, "--dry-run", "--results-root", tmp_path / "results", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "(agent_eval, id demo-001)" in done.stdout and not (tmp_path / "results").exists()


def test_entry_point_run_by_hand_reads_its_flags(tmp_path: Path) -> None:
    suite = spec_files(tmp_path / "exp")
    out = tmp_path / "by-hand"
    out.mkdir()
    done = run(suite.parent / "run_my_experiment.py", f"--output_dir={out}", "--learning_rate=0.5", "--layers=[1, 2]",
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "result.json").read_text()) == {
        "learning_rate": 0.5, "model": "small", "layers": [1, 2], "output_dir": str(out),
    }


@pytest.mark.parametrize("flags", [[], ["--learning_rate=0.5"]], ids=["no flags", "no output_dir"])
def test_entry_point_without_an_output_dir_stops_with_the_fix(tmp_path: Path, flags: list[str]) -> None:
    suite = spec_files(tmp_path / "exp")
    work = tmp_path / "cwd"
    work.mkdir()
    done = run(suite.parent / "run_my_experiment.py", *flags, cwd=work)
    assert done.returncode != 0
    assert "MyExperimentConfig.output_dir is not set" in done.stderr and "--output_dir=DIR" in done.stderr
    assert list(work.iterdir()) == []  # nothing written into the current directory


def test_a_config_built_while_loading_a_suite_ignores_the_processes_flags(tmp_path: Path, monkeypatch) -> None:
    from experiment_infra.suites.suite import load_suite

    suite = spec_files(tmp_path / "exp")
    (suite.parent / "suite_my_experiment.py").write_text(
        SUITE.format(mode="").replace("cases = [", "base = MyExperimentConfig()\ncases = [\n    ExperimentCase('base', base),")
    )
    monkeypatch.setattr(sys, "argv", ["x", "--learning_rate=9", "--model=leaked"])  # field flags, even
    loaded = load_suite(suite)
    base = next(c.config for c in loaded.cases if c.variant_name == "base")
    assert (base.learning_rate, base.model) == (0.01, "small")
    assert [c.variant_name for c in loaded.cases] == ["base", "lr_0.01", "lr_0.1_big"]
    assert loaded.experiment_name == "my-experiment" and loaded.entry_point.name == "run_my_experiment.py"


def test_module_level_names_still_fill_options_the_call_leaves_out(tmp_path: Path) -> None:
    from experiment_infra.suites.suite import load_suite

    suite = spec_files(tmp_path / "exp")
    suite.write_text("retries = 3\ntimeout_seconds = 9.0\n" + suite.read_text())
    loaded = load_suite(suite)
    assert (loaded.retries, loaded.timeout_seconds, loaded.mode) == (3, 9.0, "standard")


# ------------------------------------------------------------------ the other dry runs


def _no_prefect(done: subprocess.CompletedProcess[str]) -> bool:
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return "prefect" not in imported


def test_nightly_and_report_dry_runs_need_no_prefect(scylla_copy: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "never")}
    env.pop("PREFECT_API_URL", None)
    before = sorted(p.relative_to(scylla_copy) for p in scylla_copy.rglob("*"))

    night = run("-X", "importtime", REPO_ROOT / "flows" / "nightly.py", scylla_copy.parent, "--dry-run", cwd=tmp_path, env=env)
    assert night.returncode == 0, night.stderr[-2000:]
    assert "dry run: nothing written" in night.stdout and _no_prefect(night)

    rep = run("-X", "importtime", REPO_ROOT / "flows" / "report.py", scylla_copy, "--dry-run", cwd=tmp_path, env=env)
    assert rep.returncode == 0, rep.stderr[-2000:]
    assert "would write" in rep.stderr and str(scylla_copy / "report.json") in rep.stdout and _no_prefect(rep)

    assert sorted(p.relative_to(scylla_copy) for p in scylla_copy.rglob("*")) == before
    assert not (tmp_path / "never").exists()


# --------------------------------------------------------------- Prefect's first start


def test_a_temporary_server_that_never_starts_is_one_error_line(tmp_path: Path) -> None:
    suite = spec_files(tmp_path / "exp")
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "home"), "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "1"}
    env.pop("PREFECT_API_URL", None)
    done = run(REPO_ROOT / "flows" / "run_suite.py", suite, cwd=tmp_path, env=env)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: Prefect's temporary server did not start within 1 s; raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS "
        "(e.g. =600), or start a server (prefect server start) and set PREFECT_API_URL"
    ]


def test_profile_setting_of_the_start_up_limit_wins(tmp_path: Path, monkeypatch) -> None:
    from experiment_cli.common import GENEROUS_STARTUP_SECONDS, STARTUP_SETTING, prepare_prefect

    monkeypatch.delenv(STARTUP_SETTING, raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    monkeypatch.delenv("PREFECT_PROFILES_PATH", raising=False)
    monkeypatch.delenv("PREFECT_PROFILE", raising=False)
    prepare_prefect()
    assert os.environ[STARTUP_SETTING] == str(GENEROUS_STARTUP_SECONDS)

    monkeypatch.delenv(STARTUP_SETTING)
    (tmp_path / "profiles.toml").write_text(
        textwrap.dedent(f"""
        active = "mine"
        [profiles.mine]
        {STARTUP_SETTING} = "45"
        """)
    )
    prepare_prefect()
    assert STARTUP_SETTING not in os.environ  # the profile's 45 s stays in force

    monkeypatch.setenv(STARTUP_SETTING, "7")
    prepare_prefect()
    assert os.environ[STARTUP_SETTING] == "7"


def test_spec_shaped_suite_through_the_flow_as_a_deployment_runs_it(tmp_path: Path, monkeypatch) -> None:
    """A deployment or a run started from the UI calls the flow with nothing but the path."""
    from flows.run_suite import run_suite

    suite = spec_files(tmp_path / "exp")
    results = tmp_path / "results"
    monkeypatch.chdir(tmp_path)

    dry = run_suite(suite_path=str(suite), results_root=str(results), dry_run=True, return_state=True)
    assert dry.is_completed() and not results.exists()

    state = run_suite(suite_path=str(suite), results_root=str(results), return_state=True)
    assert state.is_completed(), state.message
    got = case_results(results)
    assert {v: {k: r[k] for k in EXPECTED[v]} for v, r in got.items()} == EXPECTED


# ------------------------------------------------------------ one error line on every route

BAD_SUITE_HEAD = '''
from my_config import MyExperimentConfig

from experiment_infra import ExperimentCase, run_experiments_cli
'''
BAD_SUITE_TAIL = '''
if __name__ == "__main__":
    run_experiments_cli(cases, entry_point="run_my_experiment.py", experiment_name="my-experiment")
'''

BAD_SUITES = {
    "misspelled copy_with field": (
        'cases = [ExperimentCase("a", MyExperimentConfig().copy_with(learning_rat=0.1))]',
        "error: suite_bad.py: MyExperimentConfig.copy_with: unknown field(s) learning_rat (did you mean learning_rate?); "
        "valid fields: output_dir, seed, learning_rate, model, layers",
    ),
    "output_dir in copy_with": (
        'cases = [ExperimentCase("a", MyExperimentConfig().copy_with(output_dir="/tmp/x"))]',
        "error: suite_bad.py: MyExperimentConfig.copy_with: output_dir is set by the runner for each case; remove it from the suite",
    ),
    "model_copy": (
        'cases = [ExperimentCase("a", MyExperimentConfig().model_copy(update={"model": "big"}))]',
        "error: suite_bad.py: MyExperimentConfig.model_copy() skips validation and ignores misspelt field names; use copy_with(**changes)",
    ),
    "a value of the wrong type": (
        'cases = [ExperimentCase("a", MyExperimentConfig(learning_rate="fast"))]',
        "error: suite_bad.py: MyExperimentConfig: learning_rate: Input should be a valid number, unable to parse string as a number",
    ),
    "unsafe variant name": (
        'cases = [ExperimentCase("../a", MyExperimentConfig())]',
        "error: suite_bad.py: variant name '../a' is not a safe directory name: use letters, digits and ._+=@,- "
        "(no path separators, no leading dot or dash, ASCII only)",
    ),
    "duplicate variant names": (
        'cases = [ExperimentCase("a", MyExperimentConfig()), ExperimentCase("a", MyExperimentConfig())]',
        "error: suite_bad.py: duplicate variant name(s) a; each case needs its own",
    ),
    "an exception at the top level": (
        'cases = [ExperimentCase("a", MyExperimentConfig())]\nrates = {}["learning_rate"]',
        "error: {suite}:6: KeyError: 'learning_rate'",
    ),
    "a syntax error in a module it imports": (
        'import broken_helper\ncases = []',
        "error: {dir}/broken_helper.py:2: SyntaxError: '(' was never closed",
    ),
}


@pytest.mark.parametrize("body,line", BAD_SUITES.values(), ids=list(BAD_SUITES))
def test_a_bad_suite_is_the_same_error_line_on_both_routes(tmp_path: Path, body: str, line: str) -> None:
    exp = spec_files(tmp_path / "exp")
    (exp.parent / "broken_helper.py").write_text("x = 1\ny = print(\n")
    suite = exp.parent / "suite_bad.py"
    suite.write_text(BAD_SUITE_HEAD + body + "\n" + BAD_SUITE_TAIL)
    expected = line.format(suite=suite.resolve(), dir=exp.parent.resolve())
    results = tmp_path / "results"

    for command in ([suite], [REPO_ROOT / "flows" / "run_suite.py", suite]):
        done = run(*command, "--results-root", results, cwd=tmp_path, timeout=120)
        assert (done.returncode, done.stderr.splitlines(), done.stdout) == (2, [expected], ""), command
        assert not results.exists()


def test_a_suite_with_a_syntax_error_is_one_line_through_run_suite(tmp_path: Path) -> None:
    """(Through ``python SUITE.py`` Python itself reports it: none of our code has run yet.)"""
    exp = spec_files(tmp_path / "exp")
    suite = exp.parent / "suite_bad.py"
    suite.write_text(BAD_SUITE_HEAD + 'cases = [ExperimentCase("a", MyExperimentConfig())\n' + BAD_SUITE_TAIL)
    done = run(REPO_ROOT / "flows" / "run_suite.py", suite, "--results-root", tmp_path / "results", cwd=tmp_path, timeout=120)
    assert (done.returncode, done.stderr.splitlines()) == (2, [f"error: {suite.resolve()}:5: SyntaxError: '[' was never closed"])
    assert not (tmp_path / "results").exists()


# ------------------------------------------------------------ the spec's layout

SPEC_LAYOUT_ENTRY = '''
import json
from pathlib import Path

from my_config import MyExperimentConfig
from experiments.demo import suite_demo  # an entry point may import its own suite

config = MyExperimentConfig()
assert [c.config.learning_rate for c in suite_demo.cases] == [0.01, 0.1]  # the suite's, not this case's
Path(config.output_dir, "result.json").write_text(json.dumps({"learning_rate": config.learning_rate}))
'''

SPEC_LAYOUT_SUITE = '''
from my_config import MyExperimentConfig

from experiment_infra import ExperimentCase, run_experiments_cli

base = MyExperimentConfig()
cases = [ExperimentCase("slow", base.copy_with(learning_rate=0.01)), ExperimentCase("fast", base.copy_with(learning_rate=0.1))]

if __name__ == "__main__":
    run_experiments_cli(cases, entry_point="run_demo.py", experiment_name="demo")
'''


def test_the_specs_layout_config_and_entry_point_at_the_root_runs(tmp_path: Path) -> None:
    """Config module and entry point at the project root, the suite in experiments/demo/."""
    import git

    root = tmp_path / "project"
    (root / "experiments" / "demo").mkdir(parents=True)
    git.Repo.init(root)
    (root / "my_config.py").write_text(CONFIG)
    (root / "run_demo.py").write_text(SPEC_LAYOUT_ENTRY)
    (root / "experiments" / "demo" / "suite_demo.py").write_text(SPEC_LAYOUT_SUITE)

    done = run(REPO_ROOT / "flows" / "run_suite.py", "experiments/demo/suite_demo.py", cwd=root)

    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    (run_dir,) = (root / "results" / "demo").iterdir()
    got = {v: json.loads((run_dir / v / "result.json").read_text()) for v in ("slow", "fast")}
    assert got == {"slow": {"learning_rate": 0.01}, "fast": {"learning_rate": 0.1}}
