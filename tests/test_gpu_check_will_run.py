"""The "asks for more GPUs than exist" check counts only the cases that will run: a resumed
run's completed cases and the cases ``--reuse`` takes from an earlier run ask for nothing.

A first run on four named devices completes the four-GPU case and fails the small one;
later runs on two devices must only run the small one, on every route.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import PYTHON, git
from suite_factory import make_suite

from experiment_cli.run_suite import main
from experiment_infra import CasePaths, load_record
from experiment_infra.records import RunRecord

BIG_ERROR = "error: case 'big' asks for 4 GPU(s) but this run has 2 (0, 1)"


def first_run(git_repo: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    flag = tmp_path / "failing"
    flag.touch()
    cases = [
        '    ExperimentCase("big", DemoConfig(label="big"), gpus=4),',
        f'    ExperimentCase("small", DemoConfig(label="small", flag_file={str(flag)!r}), gpus=1),',
    ]
    suite = make_suite(git_repo / "exp", cases, name="gpucheck")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "suite")
    results = tmp_path / "results"
    assert main([str(suite), "--results-root", str(results), "--gpus", "0,1,2,3"]) == 1
    (run_dir,) = (results / "gpucheck").iterdir()
    flag.unlink()  # the small case completes from now on
    return suite, results, run_dir


def test_a_resume_checks_only_the_cases_it_runs(prefect_harness, git_repo: Path, tmp_path: Path, capsys) -> None:
    suite, results, run_dir = first_run(git_repo, tmp_path)
    capsys.readouterr()

    # A new run needs the big case's four devices: still refused.
    assert main([str(suite), "--results-root", str(results), "--gpus", "0,1", "--dry-run"]) == 2
    assert capsys.readouterr().err.startswith(BIG_ERROR)
    # A resume runs only the small case: two devices are enough, dry or not, on either command line.
    assert main([str(suite), "--resume", str(run_dir), "--gpus", "0,1", "--dry-run"]) == 0
    assert "error" not in capsys.readouterr().err
    dry = subprocess.run(  # python suite.py, as a user types it
        [PYTHON, str(suite), "--resume", str(run_dir), "--gpus", "0,1", "--dry-run"],
        cwd=git_repo, capture_output=True, text=True, timeout=300,
    )
    assert dry.returncode == 0, dry.stderr
    assert main([str(suite), "--resume", str(run_dir), "--gpus", "0,1"]) == 0
    small = load_record(CasePaths(run_dir / "small").run_record, RunRecord)
    assert small.exit_code == 0 and small.gpus is not None and set(small.gpus) <= {"0", "1"}
    assert load_record(CasePaths(run_dir / "big").run_record, RunRecord).gpus == ["0", "1", "2", "3"]  # not rerun


def test_reuse_checks_only_the_cases_it_runs(prefect_harness, git_repo: Path, tmp_path: Path, capsys) -> None:
    suite, results, first = first_run(git_repo, tmp_path)
    capsys.readouterr()

    assert main([str(suite), "--results-root", str(results), "--reuse", "--gpus", "0,1", "--dry-run"]) == 0
    assert "error" not in capsys.readouterr().err
    assert main([str(suite), "--results-root", str(results), "--reuse", "--gpus", "0,1"]) == 0
    (second,) = [d for d in (results / "gpucheck").iterdir() if d != first]
    assert load_record(CasePaths(second / "big").run_record, RunRecord).reused_from  # taken, not run
    assert load_record(CasePaths(second / "small").run_record, RunRecord).exit_code == 0
