"""What a recovery does to the disk before a rerun: move the old attempt aside, never delete.

Kept apart from the Prefect tasks so the same moves are testable without a flow, and
so the rule "an earlier attempt is never overwritten or deleted" lives in one place.
"""

from __future__ import annotations

from pathlib import Path

from .atomic import move_aside
from .layout import AgentRunPaths, ExperimentPaths, judge_slot_name, next_aside
from .recovery_plan import RunWork
from .status import JudgeStatus, RunStatus


def move_run_aside(exp: ExperimentPaths, tier: str, subtest: str, run_number: int) -> Path | None:
    """Move ``run_{NN}`` to ``{subtest}/.failed/run_{NN}_attempt_{K}``; None if there is nothing."""
    sub = exp.subtest(tier, subtest)
    run_dir = sub.run(run_number).dir
    if not run_dir.exists() and not run_dir.is_symlink():
        return None
    return move_aside(run_dir, sub.next_failed_attempt(run_number))


def move_slot_aside(paths: AgentRunPaths, slot: int) -> Path | None:
    """Move ``judge/judge_{NN}`` to ``judge/.failed/judge_{NN}_attempt_{K}``; None if absent.

    A ``judge/`` that is a symlink is moved aside whole first (to ``run_NN/.failed/``),
    so the rerun writes inside the experiment, not wherever the link points.
    """
    if paths.judge_dir.is_symlink():
        move_aside(paths.judge_dir, next_aside(paths.dir, paths.judge_dir.name))
        return None
    slot_dir = paths.judge_slot(slot).dir
    if not slot_dir.exists() and not slot_dir.is_symlink():
        return None
    return move_aside(slot_dir, next_aside(paths.judge_dir, judge_slot_name(slot)))


def work_done(before: RunWork, after: RunWork) -> bool:
    """Did the recovery do what ``before`` planned for this run (judged from the files)?"""
    if before.rerun_agent and after.status not in (RunStatus.COMPLETED, RunStatus.RESULTS):
        return False
    slots = {j.slot: j.status for j in after.judges}
    if any(slots.get(s) is not JudgeStatus.COMPLETE for s in before.judge_slots):
        return False
    if before.judge_slots or before.regenerate:
        return after.status is RunStatus.COMPLETED
    return True
