"""Disk trouble on real filesystems: a results directory on a read-only mount, and a disk
that fills up mid-run (small tmpfs mounts; tests run as root, which ignores permission
bits, so read-only is a mount option here). Each gives a clear one-line error, and every
result written earlier is intact.

Where this machine cannot mount a tmpfs: skipped with the reason, or failed under CI=true
(CI runs as root, where it must work).
"""

from __future__ import annotations

import errno
import subprocess
from pathlib import Path
from typing import Callable, Iterator

import pytest
from agent_eval_helpers import make_suite
from conftest import PYTHON, REPO_ROOT
from faults_helpers import compare_kept, fault_case, file_hashes, read_json, tally, write_fault_suite
from prerequisites import missing

from experiment_infra.agent_eval import Condition, finish_run, plan_experiment, run_agent, run_judge, start_experiment
from experiment_infra.files.atomic import atomic_write_json
from experiment_infra.layout import SuiteRunPaths
from experiment_infra.records import RunRecord, load_record
from experiment_infra.status.rules import CaseStatus, classify_case

Mount = Callable[[str, str], Path]


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Mount]:
    """``mount(name, size)``: a fresh tmpfs under tmp_path; all unmounted at teardown."""
    mounted: list[Path] = []

    def mount(name: str, size: str) -> Path:
        where = tmp_path / name
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, text=True)
        if done.returncode != 0:
            missing(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}); needs root with CAP_SYS_ADMIN")
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def remount(where: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(where)], check=True, capture_output=True)


def cli(*args: str | Path, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300)


def one_error_line(done: subprocess.CompletedProcess[str], *fragments: str) -> str:
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, done.stderr[-3000:]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def _run_dir(results: Path) -> SuiteRunPaths:
    (run_dir,) = (results / "faults").iterdir()
    return SuiteRunPaths(run_dir)


@pytest.mark.slow
def test_read_only_results_refuse_new_runs_resumes_and_recoveries_in_one_line(
    tmp_path: Path, tmpfs: Mount, git_repo: Path, prefect_harness
) -> None:
    from flows.run_suite import run_suite

    results = tmpfs("results", "32m")
    suite = write_fault_suite(tmp_path / "suite", [fault_case("ok"), fault_case("flaky", fail_first=True)])
    state = run_suite(suite_path=str(suite), results_root=str(results), return_state=True)
    assert state.is_failed()  # flaky failed: there is work for a resume and a recovery
    run = _run_dir(results)

    # An agent-evaluation experiment on the same disk, with a judge slot to rerun.
    agent_suite = make_suite(tmp_path, git_repo, conditions=[Condition("T0", "00", "fake-sonnet")], judge_models=["fake-opus"])
    plan = plan_experiment(agent_suite, results_root=results)
    start_experiment(plan, 1)
    run_agent(plan.exp, plan.spec, "T0", "00", 1)
    run_judge(plan.exp, plan.spec, "T0", "00", 1, 1, "fake-opus")
    finish_run(plan.exp, plan.spec, "T0", "00", 1)
    plan.exp.run("T0", "00", 1).judge_slot(1).judgment.unlink()

    before = file_hashes(results)
    remount(results, "ro")
    tally("disk", faults=1)

    refused = [
        (cli(REPO_ROOT / "flows" / "run_suite.py", suite, "--resume", run.dir), str(run.dir)),
        (cli(REPO_ROOT / "flows" / "run_suite.py", suite, "--results-root", results), str(results)),
        (cli(REPO_ROOT / "flows" / "recover.py", run.dir), str(run.dir)),
        (cli(REPO_ROOT / "flows" / "recover.py", plan.exp.dir), str(plan.exp.dir)),
    ]
    for done, where in refused:
        assert done.returncode == 2, done.stderr[-3000:]
        one_error_line(done, where, "read-only")
    dry = cli(REPO_ROOT / "flows" / "recover.py", plan.exp.dir, "--dry-run")  # reading still works
    assert dry.returncode == 0 and "judge rerun" in dry.stdout, dry.stderr
    assert compare_kept(before, file_hashes(results)) == []
    assert file_hashes(results) == before
    tally(runs=3)


@pytest.mark.slow
def test_disk_full_mid_run_is_one_clear_error_and_earlier_results_survive(
    tmp_path: Path, tmpfs: Mount, prefect_harness
) -> None:
    from flows.run_suite import run_suite

    results = tmpfs("results", "6m")
    earlier = write_fault_suite(tmp_path / "earlier", [fault_case("first"), fault_case("second")], name="earlier")
    assert run_suite(suite_path=str(earlier), results_root=str(results), return_state=True).is_completed()
    earlier_files = file_hashes(results / "earlier")

    suite = write_fault_suite(tmp_path / "suite", [fault_case("small"), fault_case("filler", payload_mb=12)])
    state = run_suite(suite_path=str(suite), results_root=str(results), parallelism=1, return_state=True)
    tally("disk", faults=1)
    assert state.is_failed()
    rows = {r.variant: r for r in state.result(raise_on_failure=False).rows}
    assert rows["small"].status == "completed"
    assert rows["filler"].status != "completed" and "No space left on device" in rows["filler"].reason, rows["filler"]
    assert "\n" not in rows["filler"].reason
    run = _run_dir(results)
    small = file_hashes(run.case("small").dir)
    assert read_json(run.case("small").metrics)["tries"] == 1
    assert compare_kept(earlier_files, file_hashes(results / "earlier")) == []

    # Room again (the user frees space), then --resume finishes it; nothing else changes.
    (run.case("filler").dir / "payload.bin").unlink()
    remount(results, "size=64m")
    done = cli(REPO_ROOT / "flows" / "run_suite.py", suite, "--resume", run.dir)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert classify_case(run.case("filler")).status is CaseStatus.COMPLETED
    assert load_record(run.case("filler").run_record, RunRecord).attempt == 2
    assert compare_kept(small, file_hashes(run.case("small").dir)) == []
    assert compare_kept(earlier_files, file_hashes(results / "earlier")) == []
    tally(runs=4)


def test_atomic_write_on_a_full_disk_keeps_the_old_file_and_no_temp(tmpfs: Mount) -> None:
    disk = tmpfs("full", "1m")
    target = disk / "result.json"
    atomic_write_json(target, {"version": "old"})
    filler = disk / "filler.bin"
    with pytest.raises(OSError) as err:
        with open(filler, "wb") as fh:
            while True:
                fh.write(b"\0" * 65536)
    assert err.value.errno == errno.ENOSPC
    for size in (10, 100_000, 2_000_000):
        with pytest.raises(OSError) as err:
            atomic_write_json(target, {"version": "new", "pad": "x" * size})
        assert err.value.errno == errno.ENOSPC
        assert read_json(target) == {"version": "old"}
        assert sorted(p.name for p in disk.iterdir()) == ["filler.bin", "result.json"]  # no temp file left
        tally("disk", faults=1, files=1)
