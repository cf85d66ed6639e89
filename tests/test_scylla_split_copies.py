"""A run with a copy in both in_progress/ and completed/ (ProjectScylla since 7c644312,
2026-04-21, promotes a rerun by deleting the completed/ copy and moving the in_progress/
one in): the in_progress/ copy is the fresh one, and a recovery keeps the other (issue 29)."""

from __future__ import annotations

import shutil
from pathlib import Path

from recover_helpers import recover_cli, tree_hash
from test_recover_flow import run_recover
from test_recover_rerun import build, statuses
from test_recover_vintages import split

from experiment_infra.layout import ExperimentPaths
from experiment_infra.recovery.survey import Selection, survey


def rerun_waiting(exp_dir: Path, tier: str, subtest: str, number: int) -> tuple[Path, Path]:
    """A promoted run whose rerun's agent finished in in_progress/, not yet promoted."""
    old = exp_dir / "completed" / tier / subtest / f"run_{number:02d}"
    fresh = exp_dir / "in_progress" / tier / subtest / old.name
    shutil.copytree(old, fresh, symlinks=True)
    shutil.rmtree(fresh / "judge")
    (fresh / "run_result.json").unlink()
    (fresh / "agent" / "output.txt").write_text("the rerun's own answer\n")
    return old, fresh


def test_the_in_progress_copy_is_read_and_the_completed_one_kept(prefect_harness, tmp_path: Path, git_repo: Path) -> None:
    exp = build(tmp_path, git_repo)
    split(exp.dir, ("T0", "T1"))
    old, fresh = rerun_waiting(exp.dir, "T1", "01", 1)
    old_tree = tree_hash(old)

    s = survey(exp.dir, Selection())
    (work,) = s.planned
    assert work.label == "T1/01/run_01" and work.status.value == "results"  # the unjudged fresh copy
    assert work.action.startswith("move it from in_progress/T1/01/run_01/ to completed/")
    assert any("in_progress/, then completed/" in n and ".failed/run_NN_attempt_K" in n for n in s.notes)
    before = tree_hash(exp.dir)
    assert recover_cli(str(exp.dir), "--dry-run").returncode == 0
    assert tree_hash(exp.dir) == before  # a dry run moves nothing

    state, summary = run_recover(exp.dir, parallelism=2)
    assert state.is_completed(), state.message
    assert summary.exit_code == 0 and not summary.remaining
    assert not fresh.exists()
    home = ExperimentPaths(exp.dir).run("T1", "01", 1)
    assert home.output.read_text() == "the rerun's own answer\n"  # the fresh copy, judged at home
    kept = ExperimentPaths(exp.dir).subtest("T1", "01").failed_attempt(1, 1)
    assert tree_hash(kept) == old_tree  # never lost
    assert statuses(ExperimentPaths(exp.dir))["T1/01/run_01"] == ("completed", ["complete", "complete"])
