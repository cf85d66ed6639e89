"""What a recovery does to the disk around a rerun, and how it tells the rerun worked.

Earlier attempts are moved aside, never deleted (``set_aside_run`` / ``set_aside_slot``
of the agent-evaluation core, for the recovery tasks: imported when a rerun needs them,
since the agent-evaluation core brings git along, which a regeneration never needs).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..files.atomic import move_aside
from ..errors import LinkedPathError
from ..layout import AgentRunPaths, ExperimentPaths, next_aside
from .survey import RunWork
from ..status.rules import JudgeStatus, RunStatus, agent_finished

__all__ = ["bring_home", "move_slot_aside", "set_aside_run", "work_done"]


def bring_home(exp: ExperimentPaths, tier: str, subtest: str, run_number: int) -> AgentRunPaths:
    """The run at its home, where a recovery writes; moved there first when it is elsewhere.

    In ProjectScylla's split layout a run found in ``in_progress/`` (or at the experiment's
    top, written before the split) is moved to ``completed/`` as ProjectScylla promotes
    it before judging: what a recovery writes lands where ProjectScylla reads. A rename on
    one filesystem, nothing copied or lost; safe when several tasks of one run call it at
    once (one moves it, the others find it home).
    """
    home = exp.run(tier, subtest, run_number)
    found = exp.run_found(tier, subtest, run_number)
    if found.dir != home.dir:
        for directory in (exp.tier_top, home.dir.parent.parent, home.dir.parent):  # completed/ and the homes in it
            if directory.is_symlink():  # the move (or the lock's directory) would take the run out of the experiment
                raise LinkedPathError(
                    f"{directory} is a symlink; nothing is written or moved through one: replace it with a real directory"
                )
        home.dir.parent.mkdir(parents=True, exist_ok=True)
        with _subtest_lock(home.dir.parent):
            found = exp.run_found(tier, subtest, run_number)  # another task may have moved it meanwhile
            if found.dir != home.dir:
                _set_aside_stale(exp, tier, subtest, run_number, home)
                # Through no symlink (where it was found, or completed/) and onto nothing that exists.
                move_aside(found.dir, home.dir, root=exp.dir)
                _repair_worktree(home.workspace)
    return home


def _set_aside_stale(exp: ExperimentPaths, tier: str, subtest: str, run_number: int, home: AgentRunPaths) -> None:
    """A copy already at home while the run is read elsewhere (``in_progress/``) is what an
    earlier attempt left there: ProjectScylla deletes it when it promotes the fresh copy;
    a recovery keeps it, as ``completed/{T}/{S}/.failed/run_NN_attempt_K``."""
    if home.dir.exists() or home.dir.is_symlink():
        move_aside(home.dir, exp.subtest(tier, subtest).next_failed_attempt(run_number), root=exp.dir)


@contextmanager
def _subtest_lock(directory: Path) -> Iterator[None]:
    """Several tasks of one run (its judge slots) bring it home at once: one at a time,
    so none of them takes the copy another just moved home for a stale one."""
    import fcntl

    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _repair_worktree(workspace: Path) -> None:
    """A run's workspace is a git worktree of the experiment's repo/: after a move, its
    repository is told where it is now (else a later ``git worktree prune`` drops it).
    Best effort: the workspace's files are all there either way."""
    import shutil
    import subprocess

    if workspace.joinpath(".git").is_file() and shutil.which("git"):
        subprocess.run(["git", "-C", str(workspace), "worktree", "repair"], capture_output=True, timeout=60, check=False)


def set_aside_run(exp: ExperimentPaths, tier: str, subtest: str, run_number: int) -> Path | None:
    """``agent_eval.set_aside_run``: the earlier attempt to ``{subtest}/.failed/run_NN_attempt_K``, its leftovers stopped."""
    from ..agent_eval.agent import set_aside_run as set_aside

    return set_aside(exp, tier, subtest, run_number)


def move_slot_aside(exp: ExperimentPaths, tier: str, subtest: str, run_number: int, slot: int) -> Path | None:
    """Move ``judge/judge_{NN}`` to ``judge/.failed/judge_{NN}_attempt_{K}``; None if absent.

    A ``judge/`` that is a symlink is first moved aside whole (to ``run_NN/.failed/``),
    so the rerun writes inside the experiment, not wherever the link points.
    """
    paths = exp.run(tier, subtest, run_number)
    if paths.judge_dir.is_symlink():
        try:
            move_aside(paths.judge_dir, next_aside(paths.dir, paths.judge_dir.name), root=exp.dir)
        except (FileNotFoundError, FileExistsError):
            pass  # another slot's rerun moved it a moment ago
        return None
    from ..agent_eval.judge import set_aside_slot

    return set_aside_slot(exp, tier, subtest, run_number, slot)


def work_done(before: RunWork, after: RunWork) -> bool:
    """Did the recovery do what ``before`` planned for this run (judged from the files)?"""
    if before.rerun_agent and not agent_finished(after.status):
        return False
    slots = {j.slot: j.status for j in after.judges}
    if any(slots.get(s) is not JudgeStatus.COMPLETE for s in before.judge_slots):
        return False
    if before.judge_slots or before.regenerate:
        return after.status is RunStatus.COMPLETED
    return True
