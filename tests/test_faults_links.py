"""A symlink planted where the tools write, move or delete (``.failed/``, ``.attempts/``,
``completed/``, ``in_progress/``, a judge slot, report files) never takes a write or a
move out of the experiment: a recovery refuses it up front (one ``error:`` line naming
it, exit 2, nothing changed on either side), a move refuses a link met on its way, and
a judge slot that is a link is moved aside as the link it is. No move ever replaces
what is at its destination, even if it appears meanwhile."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from conftest import PYTHON
from recover_helpers import recover_cli, run_paths, tree_hash

from experiment_cli.recover import main
from experiment_infra.files import atomic
from experiment_infra.files.atomic import move_aside, write_new_text
from experiment_infra.errors import LinkedPathError
from experiment_infra.layout import CasePaths, ExperimentPaths
from experiment_infra.processes.process import proc_start
from experiment_infra.records import JudgeCommand, utc_now_iso, write_record
from experiment_infra.recovery.act import move_slot_aside
from experiment_infra.running.runner import set_aside_previous_attempt


def _outside(tmp_path: Path) -> Path:
    """A directory outside the experiment, holding what a link may lead to."""
    out = tmp_path / "outside"
    (out / "T1" / "01" / "run_01").mkdir(parents=True)
    (out / "T1" / "01" / "run_01" / "keep.txt").write_text("not the experiment's\n")
    (out / "report.md").write_text("someone else's report\n")
    return out


def _plant(exp: Path, outside: Path, where: str) -> Path:
    """A symlink at ``where`` (relative to the experiment) to its namesake outside, which
    holds what was there (a file for a report, else a directory)."""
    link, target = exp / where, outside / where
    target.parent.mkdir(parents=True, exist_ok=True)
    if link.exists():
        shutil.move(link, target)
    elif where.endswith((".md", ".json")):
        target.write_text("someone else's file\n")
    else:
        target.mkdir(exist_ok=True)
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target, target_is_directory=target.is_dir())
    return link


PLACES = {
    "subtest .failed": "T1/01/.failed",
    "run .failed": "T1/01/run_01/.failed",
    "judge .failed": "T1/01/run_01/judge/.failed",
    "agent .failed": "T1/01/run_01/agent/.failed",
    "completed": "completed",
    "in_progress": "in_progress",
    "plots": "plots",
    "tier report": "T1/report.md",
    "subtest report": "T1/01/report.json",
    "experiment report": "report.md",
}


@pytest.mark.parametrize("where", list(PLACES), ids=list(PLACES))
def test_a_recovery_refuses_a_symlink_where_it_writes_and_changes_nothing(
    prefect_harness, scylla_copy: Path, tmp_path: Path, capsys, where: str
) -> None:
    outside = _outside(tmp_path)
    run_paths(scylla_copy).agent_result.unlink()  # work for the recovery in T1/01/run_01 (regenerate)
    link = _plant(scylla_copy, outside, PLACES[where])
    before_exp, before_out = tree_hash(scylla_copy), tree_hash(outside)

    assert main([str(scylla_copy)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == [f"error: {link} is a symlink; a recovery never writes or moves anything through one, nor replaces it: "
                   f"replace it with a real {'file' if where.endswith('report') else 'directory'}"]
    assert tree_hash(scylla_copy) == before_exp and tree_hash(outside) == before_out


def test_the_command_line_names_the_link_in_one_line(prefect_harness, scylla_copy: Path, tmp_path: Path) -> None:
    """``python flows/recover.py DIR`` as a user runs it."""
    outside = _outside(tmp_path)
    run_paths(scylla_copy).agent_result.unlink()
    link = _plant(scylla_copy, outside, "T1/01/.failed")
    before_out = tree_hash(outside)
    done = recover_cli(str(scylla_copy))
    assert done.returncode == 2
    assert [line for line in done.stderr.splitlines() if line.startswith("error:")] == [
        f"error: {link} is a symlink; a recovery never writes or moves anything through one, nor replaces it: "
        "replace it with a real directory"
    ]
    assert tree_hash(outside) == before_out


def test_a_move_through_a_planted_failed_link_is_refused(scylla_copy: Path, tmp_path: Path) -> None:
    """The moves themselves refuse a link met on the way (one planted after the check)."""
    from experiment_infra.agent_eval import set_aside_run

    outside = _outside(tmp_path)
    exp = ExperimentPaths(scylla_copy)
    failed = _plant(scylla_copy, outside, "T1/01/.failed")
    judge_failed = _plant(scylla_copy, outside, "T1/01/run_01/judge/.failed")
    before_out, before_exp = tree_hash(outside), tree_hash(scylla_copy)
    with pytest.raises(LinkedPathError, match=f"^{failed} is a symlink"):
        set_aside_run(exp, "T1", "01", 1)
    with pytest.raises(LinkedPathError, match=f"^{judge_failed} is a symlink"):
        move_slot_aside(exp, "T1", "01", 1, 2)
    assert tree_hash(outside) == before_out and tree_hash(scylla_copy) == before_exp


def test_a_judge_slot_that_is_a_link_is_moved_aside_as_the_link(scylla_copy: Path, tmp_path: Path) -> None:
    """Moved as the link it is; the process its command_log.json (outside) names, though
    that matches in every way, is not stopped: a record read through a link is not ours."""
    outside = _outside(tmp_path)
    exp = ExperimentPaths(scylla_copy)
    link = _plant(scylla_copy, outside, "T1/01/run_01/judge/judge_02")
    target = os.readlink(link)
    sleeper = subprocess.Popen([PYTHON, "-c", "import time; time.sleep(600)"], start_new_session=True)
    try:
        record = JudgeCommand(model="m", command=sleeper.args, cwd=str(tmp_path), started_at=utc_now_iso(),
                              host=socket.gethostname(), pid=sleeper.pid, pid_start=proc_start(sleeper.pid))
        write_record(Path(target) / "command_log.json", record)
        before_out = tree_hash(outside)
        moved = move_slot_aside(exp, "T1", "01", 1, 2)
        assert moved == exp.run("T1", "01", 1).judge_dir / ".failed" / "judge_02_attempt_1"
        assert moved.is_symlink() and os.readlink(moved) == target and not link.exists()
        assert tree_hash(outside) == before_out
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_standard_case_never_moves_its_attempt_through_a_linked_attempts_dir(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    case = CasePaths(tmp_path / "run" / "case")
    case.dir.mkdir(parents=True)
    (case.dir / "stdout.log").write_text("first attempt\n")
    case.attempts_dir.symlink_to(outside, target_is_directory=True)
    with pytest.raises(LinkedPathError, match=f"^{case.attempts_dir} is a symlink"):
        set_aside_previous_attempt(case)
    assert list(outside.iterdir()) == [] and (case.dir / "stdout.log").read_text() == "first attempt\n"


def test_a_standard_recovery_refuses_a_linked_attempts_dir(prefect_harness, git_repo: Path, tmp_path: Path, capsys) -> None:
    from conftest import git
    from suite_factory import case_src, make_suite

    from experiment_infra.layout import SuiteRunPaths
    from flows.run_suite import run_suite

    flag = tmp_path / "fail-while-here"
    flag.write_text("x")
    suite = make_suite(git_repo / "exp", [case_src("good"), case_src("bad", flag_file=str(flag))])
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "suite")
    assert run_suite(suite_path=str(suite), results_root=str(tmp_path / "results"), return_state=True).is_failed()
    run = SuiteRunPaths(next((tmp_path / "results" / "demo").iterdir()))
    outside = tmp_path / "outside"
    outside.mkdir()
    bad = run.case("bad")
    bad.attempts_dir.symlink_to(outside, target_is_directory=True)
    flag.unlink()
    before = tree_hash(run.dir)
    capsys.readouterr()
    assert main([str(run.dir)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == [f"error: {bad.attempts_dir} is a symlink; a recovery never writes or moves anything through one, "
                   "nor replaces it: replace it with a real directory"]
    assert list(outside.iterdir()) == [] and tree_hash(run.dir) == before


@pytest.mark.parametrize("renameat2", [True, False], ids=["renameat2", "link-or-claim"])
def test_a_move_whose_destination_appears_meanwhile_fails_instead_of_replacing(tmp_path: Path, renameat2: bool, monkeypatch) -> None:
    if not renameat2:
        monkeypatch.setattr(atomic, "_renameat2", False)  # as where renameat2 is missing (another OS, NFS)
    run = tmp_path / "run_01"
    run.mkdir()
    (run / "f.txt").write_text("second attempt\n")
    kept = tmp_path / ".failed" / "run_01_attempt_1"
    kept.mkdir(parents=True)  # empty: a plain rename would replace it
    with pytest.raises(FileExistsError, match="already exists; refusing to overwrite an earlier attempt"):
        move_aside(run, kept)
    assert (run / "f.txt").is_file() and list(kept.iterdir()) == []
    (tmp_path / "a.json").write_text("a\n")
    (tmp_path / "b.json").write_text("b\n")
    with pytest.raises(FileExistsError):
        move_aside(tmp_path / "a.json", tmp_path / "b.json")
    with pytest.raises(FileExistsError):
        write_new_text(tmp_path / "b.json", "c\n")
    assert (tmp_path / "a.json").read_text() == "a\n" and (tmp_path / "b.json").read_text() == "b\n"
    assert move_aside(run, tmp_path / ".failed" / "run_01_attempt_2") == tmp_path / ".failed" / "run_01_attempt_2"
    assert not run.exists() and (tmp_path / ".failed" / "run_01_attempt_2" / "f.txt").is_file()
