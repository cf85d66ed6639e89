"""The waiter beside every standard-mode case stays light and writes only RunRecord's fields."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import PYTHON

from experiment_infra.case_waiter import waiter_argv
from experiment_infra.layout import CasePaths
from experiment_infra.records import RunRecord
from experiment_infra.records.run_record_io import END_FIELDS, START_FIELDS


def test_the_waiter_writes_only_fields_of_the_run_record() -> None:
    assert set(START_FIELDS) | set(END_FIELDS) <= set(RunRecord.model_fields)


def test_the_waiter_starts_without_pydantic_and_names_a_missing_record(tmp_path: Path) -> None:
    # It runs once per case: loading the models would cost more CPU than a trivial case.
    argv = waiter_argv(CasePaths(tmp_path), None, python=PYTHON)  # exactly how the runner starts it
    proc = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]
    assert errors == [f"error: {tmp_path / 'run_record.json'}: missing; the runner writes it before starting the waiter"]
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    assert not [m for m in imported if m.split(".")[0] in ("pydantic", "pydantic_core", "prefect")]
    # Nor the standard library's heavier modules: together they were over half its start-up.
    assert not [m for m in imported if m in ("typing", "argparse", "dataclasses", "pathlib", "inspect", "socket")]


def test_a_bad_waiter_command_line_is_one_error_line(tmp_path: Path) -> None:
    argv = waiter_argv(CasePaths(tmp_path), None, python=PYTHON)
    for extra, why in [
        (["--timeout"], "--timeout needs a number of seconds"),
        (["--timeout", "soon"], "--timeout: 'soon' is not a number of seconds"),
        ([str(tmp_path)], f"expected one case directory, got {tmp_path} {tmp_path}"),
    ]:
        proc = subprocess.run([*argv, *extra], capture_output=True, text=True, cwd=tmp_path)
        assert (proc.returncode, proc.stderr) == (2, f"error: case_waiter.py: {why} (usage: case_waiter.py CASE_DIR [--timeout SECONDS])\n")
        assert not (tmp_path / "run_record.json").exists() and not (tmp_path / "stdout.log").exists()
