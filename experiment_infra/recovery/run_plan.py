"""What an agent-evaluation run needs, decided once: for a recovery (``survey``) and for a
resumed suite run (``agent_eval.plan``) alike.

``plan_run`` takes a run's classification (``status``), the user's filters and switches
(``select.Selection``; a resume has none) and returns the one action the run needs:
regenerate its derived files (only those missing or invalid), rerun its agent and then
its whole panel, or rerun the judge slots that need it and then rebuild its consensus.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

from ..layout import COMPLETED, judge_slot_name, run_label
from ..status.rules import JUDGE_RERUN_STATUSES, JudgeClassification, JudgeStatus, RunStatus, agent_finished
from .select import Selection, status_wanted

__all__ = ["RunWork", "plan_run"]


class RunWork(NamedTuple):
    """One expected run: its classification and what recovery does about it.

    A named tuple, not a dataclass: a survey makes one per expected run (ten thousand and
    more), and a tuple is built in a fifth of a frozen dataclass's time."""

    tier: str
    subtest: str
    run: int
    status: RunStatus
    reason: str
    judges: tuple[JudgeClassification, ...]
    regenerate: bool = False
    rerun_agent: bool = False
    judge_slots: tuple[int, ...] = ()  # slots to (re)run; after an agent rerun, the whole panel
    excluded: str | None = None  # work is needed but the switches leave it out
    away: str | None = None  # where the run is, relative to the experiment, when not at its home (split layout)

    @property
    def label(self) -> str:
        return run_label(self.tier, self.subtest, self.run)

    @property
    def planned(self) -> bool:
        return self.regenerate or self.rerun_agent or bool(self.judge_slots)

    @property
    def needs_work(self) -> bool:
        """Anything at all is wrong with this run (whether or not this recovery fixes it)."""
        if self.status is not RunStatus.COMPLETED:
            return True
        for j in self.judges:  # a loop, not any(): asked of every run of a survey, twice
            if j.status in JUDGE_RERUN_STATUSES:
                return True
        return False

    @property
    def problem(self) -> str:
        """The reason in words: the run's, then each judge slot that needs work."""
        parts = [] if self.status is RunStatus.COMPLETED else [self.reason]
        parts += [
            f"{judge_slot_name(j.slot)} {j.status.value}: {j.reason}" for j in self.judges if j.status in JUDGE_RERUN_STATUSES
        ]
        return "; ".join(parts) or self.reason

    @property
    def action(self) -> str:
        text = self._action
        if self.planned and self.away:  # a recovery writes runs at their home only (where ProjectScylla reads them)
            return f"move it from {self.away} to {COMPLETED}/, then {text}"
        return text

    @property
    def _action(self) -> str:
        if self.rerun_agent:
            text = "rerun agent"
            if self.judge_slots:
                text += f", then judge{_slot_list(self.judge_slots)} and rebuild run_result.json"
            return text
        if self.judge_slots:
            return f"rerun judge{_slot_list(self.judge_slots)}, then rebuild consensus and run_result.json"
        if self.regenerate:
            return "regenerate result files"
        if self.excluded:
            return f"none ({self.excluded})"
        return "none"


def _slot_list(slots: Sequence[int]) -> str:
    names = ", ".join(f"{s:02d}" for s in slots)
    return f"s {names}" if len(slots) > 1 else f" {names}"


def plan_run(
    tier: str, subtest: str, run: int, status: RunStatus, reason: str,
    judges: tuple[JudgeClassification, ...], selection: Selection,
) -> RunWork:
    """Decide one run's action from its classification, the status filter and the switches."""
    wanted = selection.statuses
    base = RunWork(tier, subtest, run, status, reason, judges)
    if not agent_finished(status):
        # agent_failed names the same runs from the judges' side: their agent must run first.
        if not status_wanted(status.value, reason, wanted) and JudgeStatus.AGENT_FAILED.value not in (wanted or ()):
            return base
        if selection.judges_only:
            return _with(base, excluded="the agent must be rerun before it can be judged; --judges-only")
        slots = () if selection.agents_only else tuple(j.slot for j in judges)
        return _with(base, rerun_agent=True, judge_slots=slots)
    bad = [j for j in judges if j.status in JUDGE_RERUN_STATUSES]
    chosen = tuple(j.slot for j in bad if status_wanted(j.status.value, j.reason, wanted))
    if chosen and not selection.agents_only:
        # Rebuilding after the judges also rewrites whatever result file was missing.
        return _with(base, judge_slots=chosen)
    if status is RunStatus.RESULTS and (wanted is None or status.value in wanted):
        if selection.judges_only:
            return _with(base, excluded="result files need regenerating; --judges-only")
        if not any(j.status is JudgeStatus.COMPLETE for j in judges):
            return _with(base, excluded="no valid judgment to rebuild from; rerun its judges")
        return _with(base, regenerate=True)
    if chosen:
        return _with(base, excluded="judge slots need rerunning; --agents-only")
    return base


def _with(work: RunWork, **changes: object) -> RunWork:
    return work._replace(**changes)  # type: ignore[arg-type]
