"""Hostile names and config values: unsafe names are refused with one clear line wherever
they enter (suite, case, agent-eval condition, recovery filter, files on disk); config
values full of shell syntax reach the entry point byte for byte (no shell anywhere)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import PYTHON, REPO_ROOT
from faults_helpers import fault_case, load_fault_suite, read_json, tally, write_fault_suite
from recover_helpers import edit_json, recover_cli

from experiment_infra import ExperimentCase
from experiment_infra.agent_eval import AgentEvalError, Condition
from experiment_infra.suites.config import ConfigError
from experiment_infra.layout import ExperimentPaths, SuiteRunPaths, UnsafeNameError
from experiment_infra.records import GitProvenance, ManifestCase, SuiteManifest, write_record
from experiment_infra.recovery.survey import RecoveryInputError, Selection, survey
from experiment_infra.running.runner import run_case
from experiment_infra.status.rules import CaseStatus
from experiment_infra.suites.suite import SuiteError, plan_suite

HOSTILE_NAMES = {
    "dotdot": "..",
    "dot": ".",
    "slash": "a/b",
    "escape": "../../etc",
    "absolute": "/etc",
    "nul": "a\x00b",
    "long": "x" * 200,
    "accent": "é",
    "cjk": "名前",
    "rtl override": "a\u202eb",
    "leading dash": "-rf",
    "hidden": ".hidden",
    "empty": "",
    "space": "a b",
    "trailing newline": "a\n",
    "newline": "a\nb",
    "tab": "a\tb",
    "backslash": "a\\b",
    "shell": "$(id)",
    "backtick": "`id`",
    "quote": "a'b",
    "glob": "*",
    "fullwidth digit": "１",
}
IDS = list(HOSTILE_NAMES)
NAMES = list(HOSTILE_NAMES.values())


def one_line(message: str) -> None:
    assert message and "\n" not in message and "\r" not in message and "\x00" not in message, repr(message)


@pytest.mark.parametrize("name", NAMES, ids=IDS)
def test_hostile_variant_names_are_refused_in_one_line(name: str) -> None:
    from faults_helpers import FAULT_CONFIG

    namespace: dict = {}
    exec(FAULT_CONFIG, namespace)  # noqa: S102 - our own source
    with pytest.raises(UnsafeNameError) as err:
        ExperimentCase(name, namespace["FaultConfig"]())
    one_line(str(err.value))
    assert str(err.value).startswith("variant name")
    with pytest.raises(UnsafeNameError):
        SuiteRunPaths(Path("/nowhere")).case(name)
    tally("name", faults=1)


@pytest.mark.parametrize("name", NAMES, ids=IDS)
def test_hostile_tier_and_subtest_names_are_refused_in_one_line(name: str) -> None:
    for tier, subtest in ((name, "00"), ("T0", name)):
        with pytest.raises(AgentEvalError) as err:
            Condition(tier, subtest, "model")
        one_line(str(err.value))
        assert ("tier name" if tier == name else "subtest name") in str(err.value)
    with pytest.raises(UnsafeNameError):
        ExperimentPaths(Path("/nowhere")).run(name, "00", 1)
    with pytest.raises(UnsafeNameError):
        ExperimentPaths(Path("/nowhere")).run("T0", name, 1)
    tally("name", faults=2)


@pytest.mark.parametrize("name", NAMES, ids=IDS)
def test_hostile_recovery_filters_are_refused_in_one_line(scylla_copy: Path, name: str) -> None:
    for filters in (dict(tiers=[name]), dict(subtests=[name]), dict(statuses=[name])):
        with pytest.raises(RecoveryInputError) as err:
            survey(scylla_copy, Selection.build(**filters))  # type: ignore[arg-type]
        one_line(str(err.value))
    tally("name", faults=3)


def test_hostile_filter_on_the_command_line_is_one_error_line(scylla_copy: Path) -> None:
    for flag in ("--tier", "--subtest", "--status"):
        done = recover_cli(str(scylla_copy), "--dry-run", flag, "../T1\nT2")
        assert done.returncode == 2, done
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {flag}"), done.stderr
        assert done.stdout == ""
        tally("name", faults=1)


def test_hostile_names_inside_an_experiment_are_refused(scylla_copy: Path, tmp_path: Path) -> None:
    config = scylla_copy / "config" / "experiment.json"
    for bad in ("../T1", "a\nb", "/etc"):
        edit_json(config, tiers_to_run=["T0", bad])
        with pytest.raises(RecoveryInputError, match="tiers_to_run") as err:
            survey(scylla_copy, Selection())
        one_line(str(err.value))
        tally("name", faults=1)

    # A standard-mode run directory whose manifest names a case "../x".
    run = SuiteRunPaths(tmp_path / "results" / "demo" / "20260101_000000_abcdef0")
    run.dir.mkdir(parents=True)
    manifest = SuiteManifest(
        experiment_name="demo", mode="standard", suite_file="s.py", entry_point="e.py", config_class="C",
        created_at="t", git=GitProvenance(sha="0" * 40, short="abcdef0"),
        cases=[ManifestCase(variant_name="ok", config={}), ManifestCase(variant_name="../x", config={})],
    )
    write_record(run.manifest, manifest)
    with pytest.raises(RecoveryInputError, match="variant name") as err:
        survey(run.dir, Selection())
    one_line(str(err.value))
    tally("name", faults=1)


def test_hostile_variant_in_a_suite_file_is_one_error_line_and_writes_nothing(tmp_path: Path) -> None:
    suite = write_fault_suite(tmp_path / "suite", [fault_case("ok"), "    ExperimentCase('../escape', FaultConfig()),"])
    with pytest.raises(SuiteError, match="variant name") as err:
        load_fault_suite(suite)
    one_line(str(err.value))
    done = subprocess.run(
        [PYTHON, str(REPO_ROOT / "flows" / "run_suite.py"), str(suite), "--results-root", str(tmp_path / "results")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2, done
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("error: ") and "../escape" in done.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "escape").exists()
    tally("name", faults=1)


# ------------------------------------------------------------------ config values

NASTY_VALUES = [
    "; rm -rf ~/x && echo pwned > pwned.txt",
    "$(touch pwned_subst.txt)",
    "`touch pwned_backtick.txt`",
    "'single' \"double\" \\backslash\\",
    "line one\nline two\r\nline three\n",
    "--output_dir=/tmp/evil",
    "-x",
    "--",
    "",
    " leading and trailing ",
    "tab\tand glob * ? [a-z] ~ {a,b}",
    "| cat /etc/passwd > out.txt",
    "<in >out 2>&1 &",
    "unicode é ✓ 名前 \u202e",
    "%s %n {0} ${HOME} $HOME",
    "null",
    "[1, 2]",
    "__none__x",
    "__none__",  # a string field carries it exactly (only an optional one refuses it)
]


def test_shell_metacharacters_reach_the_entry_point_verbatim(tmp_path: Path) -> None:
    cases = [fault_case(f"v{i}", text=value) for i, value in enumerate(NASTY_VALUES)]
    # In a list a NUL travels JSON-escaped, so it too must arrive unchanged.
    listed = [*NASTY_VALUES, "nul\x00inside"]
    cases.append(fault_case("lists", items=listed, mapping={v: v[::-1] for v in listed}))
    suite = load_fault_suite(write_fault_suite(tmp_path / "suite", cases))
    plan = plan_suite(suite, tmp_path / "results")
    work = tmp_path / "cwd"
    work.mkdir()
    for p in plan.cases:
        outcome = run_case(p.case, p.paths, suite.entry_point, cwd=work, timeout_seconds=60)
        assert outcome.status is CaseStatus.COMPLETED, (p.variant_name, outcome.reason)
        received = read_json(p.paths.dir / "received.json")
        expected = p.case.config.with_output_dir(str(p.paths.dir.resolve())).model_dump(mode="json")
        assert received["config"] == expected  # field for field, byte for byte
        assert received["argv"] == list(p.command[2:])  # exactly the planned argv, no shell in between
        assert read_json(p.paths.config) == expected
        tally(runs=1, files=2)
    assert sorted(p.name for p in work.iterdir()) == []  # nothing was interpreted by a shell
    assert not list(tmp_path.rglob("pwned*")) and not Path("/tmp/evil").exists()


REFUSED = {
    "nul in a string": ("text", "nul\x00byte"),
    "surrogate in a string": ("text", "lone \ud800 surrogate"),
    "undecodable byte in a string": ("text", "\udcff"),
    "surrogate in a list": ("items", "lone \ud800 surrogate"),
}


@pytest.mark.parametrize("field,value", REFUSED.values(), ids=list(REFUSED))
def test_values_no_command_line_can_carry_are_refused_before_anything_is_written(
    tmp_path: Path, field: str, value: str
) -> None:
    literal = json.dumps(value) if field == "text" else f"[{json.dumps(value)}]"
    bad = f"    ExperimentCase('bad', FaultConfig({field}={literal})),"
    suite = load_fault_suite(write_fault_suite(tmp_path / "suite", [fault_case("ok"), bad]))
    with pytest.raises(ConfigError) as err:
        plan_suite(suite, tmp_path / "results")
    one_line(str(err.value))
    assert "'bad'" in str(err.value) and field in str(err.value)
    assert not (tmp_path / "results").exists()
    tally("name", faults=1)
