"""A Slurm worker job ended under a running case, on the real one-node cluster of
``.ci/slurm-setup``: ``scancel`` (as a preemption or an administrator would) and the job's
walltime. The attempt is classed ``lost`` in its run record, a fresh worker job is
submitted in its place, and the case runs again there as far as the suite's ``retries``
allow."""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from conftest import PYTHON, REPO_ROOT
from server_helpers import PrefectServer, attempt_record, finish, show
from test_slurm import our_jobs, slurm_server  # noqa: F401  (slurm_server: a fixture)

from experiment_infra.layout import SuiteRunPaths
from experiment_infra.records import RunRecord, load_record

pytestmark = [pytest.mark.server, pytest.mark.slurm]

START_BOUND_SECONDS = 300.0  # a bound on a Slurm job starting, not a timing assertion

CONFIG = '''
from experiment_infra import BaseExperimentConfig


class HoldConfig(BaseExperimentConfig):
    gate: str = ""
    hold_always: bool = False
'''

# Its first start holds (until its job is ended under it); a later one finishes at once.
# Each start leaves a file named after the Slurm job it runs in.
ENTRY = '''
import os, time
from pathlib import Path

from {cfg} import HoldConfig

from experiment_infra.files.atomic import atomic_write_json
from experiment_infra.layout import CasePaths

cfg = HoldConfig.from_cli()
gate = Path(cfg.gate)
first = not any(gate.iterdir())
job = os.environ.get("SLURM_JOB_ID", "none")
(gate / f"started-{{job}}").touch()
if first or cfg.hold_always:
    time.sleep(900)
atomic_write_json(CasePaths(Path(cfg.output_dir)).metrics, {{"slurm_job": int(job)}})
'''

SUITE = '''
from {cfg} import HoldConfig

from experiment_infra import ExperimentCase

experiment_name = {name!r}
entry_point = "entry.py"
retries = {retries}
retry_delay_seconds = 0
cases = [ExperimentCase("held", HoldConfig(gate={gate!r}, hold_always={hold_always!r}))]
'''


def hold_suite(where: Path, name: str, retries: int, hold_always: bool = False) -> tuple[Path, Path]:
    """A one-case suite (its config module next to it) and the directory its starts are left in."""
    where.mkdir(parents=True)
    gate = where / "gate"
    gate.mkdir()
    cfg = f"hold_cfg_{uuid.uuid4().hex[:8]}"
    (where / f"{cfg}.py").write_text(CONFIG)
    (where / "entry.py").write_text(textwrap.dedent(ENTRY.format(cfg=cfg)))
    suite = where / "suite_hold.py"
    suite.write_text(SUITE.format(cfg=cfg, name=name, retries=retries, gate=str(gate), hold_always=hold_always))
    return suite, gate


def start_suite(server: PrefectServer, *args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PYTHON, str(REPO_ROOT / "flows" / "run_suite.py"), *map(str, args)], cwd=REPO_ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=server.env(),
    )


def first_start(gate: Path, proc: subprocess.Popen[str]) -> str:
    """The Slurm job the case first started in, once it has."""
    deadline = time.monotonic() + START_BOUND_SECONDS
    while not any(gate.iterdir()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the case never started in a Slurm job"
        time.sleep(0.5)
    (started,) = gate.iterdir()
    return started.name.removeprefix("started-")


def test_a_case_whose_slurm_job_is_cancelled_is_lost_and_runs_again_on_a_fresh_job(
    slurm_server: PrefectServer, tmp_path: Path  # noqa: F811
) -> None:
    suite, gate = hold_suite(tmp_path / "exp", "cancelled", retries=1)
    results = tmp_path / "results"
    proc = start_suite(slurm_server, suite, "--results-root", results, "--slurm-workers", "1", "--slurm-walltime", "00:10:00")
    try:
        job = first_start(gate, proc)
        assert job in our_jobs(), (job, our_jobs())
        subprocess.run(["scancel", job], check=True)  # as a preemption or an administrator would
        done = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert done.returncode == 0, show(done)
    (run_dir,) = (results / "cancelled").iterdir()
    case = SuiteRunPaths(run_dir).case("held")
    lost, again = attempt_record(case, 1), attempt_record(case, 2)
    assert (lost.failure, lost.interrupted, lost.code.slurm_job_id) == ("lost", None, job), lost
    assert lost.reason is not None and f"Slurm ended its job {job}" in lost.reason
    # The retry ran in a fresh worker job (the cancelled one's replacement) and completed.
    assert again.exit_code == 0 and again.failure is None and again.code.slurm_job_id not in (None, job), again
    assert json.loads(case.metrics.read_text()) == {"slurm_job": int(again.code.slurm_job_id)}
    assert {p.name for p in gate.iterdir()} == {f"started-{job}", f"started-{again.code.slurm_job_id}"}
    (row,) = [line for line in done.stdout.splitlines() if line.lstrip().startswith("held ")]
    assert row.split()[1] == "completed", show(done)
    assert our_jobs() == []  # the replacement was cancelled with the run


def test_a_case_past_its_jobs_walltime_is_lost_and_not_retried_without_retries(
    slurm_server: PrefectServer, tmp_path: Path  # noqa: F811
) -> None:
    suite, gate = hold_suite(tmp_path / "exp", "walltime", retries=0, hold_always=True)
    results = tmp_path / "results"
    proc = start_suite(slurm_server, suite, "--results-root", results, "--slurm-workers", "1", "--slurm-walltime", "00:01:00")
    try:
        job = first_start(gate, proc)
        done = finish(proc)  # Slurm ends the job at its walltime
    finally:
        if proc.poll() is None:
            proc.kill()
    assert done.returncode == 1, show(done)
    (run_dir,) = (results / "walltime").iterdir()
    record = load_record(SuiteRunPaths(run_dir).case("held").run_record, RunRecord)
    assert (record.attempt, record.failure, record.code.slurm_job_id) == (1, "lost", job), record
    assert "TIMEOUT" in (record.reason or "") or "COMPLETING" in (record.reason or ""), record.reason
    assert [p.name for p in gate.iterdir()] == [f"started-{job}"]  # retries = 0: never started again
    (row,) = [line for line in done.stdout.splitlines() if line.lstrip().startswith("held ")]
    assert row.split()[1] == "failed" and row.split()[4] == "lost", show(done)  # the failures column
    assert our_jobs() == []
