"""The waiter beside every standard-mode case stays light and writes only RunRecord's fields."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import PYTHON

from experiment_infra.running.case_waiter import waiter_argv
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


ENTRY_NAMING_ITS_WAITER = """
import json, os, sys
out = next(a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--output_dir="))
with open(f"/proc/{os.getppid()}/stat") as fh:
    server = int(fh.read().rsplit(")", 1)[1].split()[1])
with open(os.path.join(out, "waiter.json"), "w") as fh:
    json.dump({"waiter": os.getppid(), "server": server, "session": os.getsid(os.getppid())}, fh)
print("hello from", os.path.basename(out))
"""

SUITE_OF_THREE = """
from experiment_infra import BaseExperimentConfig, ExperimentCase

class Config(BaseExperimentConfig):
    index: int = 0

experiment_name = "waiters"
entry_point = "entry.py"
cases = [ExperimentCase(f"c{i}", Config(index=i)) for i in range(3)]
"""


def test_each_case_has_a_waiter_of_its_own_forked_by_one_server_per_runner(tmp_path: Path) -> None:
    """No interpreter start per case: the waiters are forks of one server, each still in a
    session of its own (the entry point's parent, which records its end), logs written."""
    import json
    import os
    import sys

    from experiment_infra.running.runner import run_case
    from experiment_infra.status.rules import CaseStatus
    from experiment_infra.suites.suite import load_suite, plan_suite, start_run

    if not sys.platform.startswith("linux"):
        return
    (tmp_path / "entry.py").write_text(ENTRY_NAMING_ITS_WAITER)
    (tmp_path / "suite_waiters.py").write_text(SUITE_OF_THREE)
    suite = load_suite(tmp_path / "suite_waiters.py")
    plan = plan_suite(suite, tmp_path / "results")
    start_run(plan)
    lines: list[str] = []
    seen = []
    for p in plan.cases:
        outcome = run_case(p.case, p.paths, suite.entry_point, on_output=lambda stream, line: lines.append(line))
        assert outcome.status is CaseStatus.COMPLETED, outcome.reason
        assert p.paths.stdout.read_text() == f"hello from {p.variant_name}\n"
        seen.append(json.loads((p.paths.dir / "waiter.json").read_text()))
    assert sorted(lines) == [f"hello from c{i}" for i in range(3)]  # the live log still gets every line
    assert len({s["waiter"] for s in seen}) == 3 and all(s["session"] == s["waiter"] for s in seen)
    (server,) = {s["server"] for s in seen}
    assert server != os.getpid()
    with open(f"/proc/{server}/cmdline", "rb") as fh:
        assert b"waiter_server.py" in fh.read()
