"""What a recovery does to the disk around a rerun, and how it tells the rerun worked.

Earlier attempts are moved aside, never deleted (``set_aside_run`` / ``set_aside_slot``
of the agent-evaluation core, for the recovery tasks: imported when a rerun needs them,
since the agent-evaluation core brings git along, which a regeneration never needs).
"""

from __future__ import annotations

from pathlib import Path

from ..atomic import move_aside
from ..layout import ExperimentPaths, next_aside
from .survey import RunWork
from ..status import JudgeStatus, RunStatus, agent_finished

__all__ = ["move_slot_aside", "set_aside_run", "work_done"]


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
            move_aside(paths.judge_dir, next_aside(paths.dir, paths.judge_dir.name))
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
