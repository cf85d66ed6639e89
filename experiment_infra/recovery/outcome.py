"""What a real recovery checks before it starts, and what it reports when it is done.

Prefect-free: ``check_recovery`` refuses what the ``recover`` flow would trip over
(a lock held, a read-only directory, an experiment whose agents cannot be rerun, a
standard-mode rerun its suite file cannot make) and returns the survey it read;
``RecoverySummary`` is the flow's result, read back from the files afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from ..files.atomic import unwritable_reason
from ..errors import EXIT_FAILED, EXIT_OK
from ..files.lock import check_lock
from .links import refuse_linked_places
from .render import counts_of, still_needing_rows
from .select import Mode, RecoveryInputError, Selection
from .survey import ExperimentSurvey, SuiteRunSurvey, Survey, survey, survey_suite_run

__all__ = [
    "RecoverySummary", "build_selection", "check_recovery", "check_suite_rerun", "summarize",
]



@dataclass(frozen=True)
class RecoverySummary:
    """What a recovery did, read back from the files afterwards (the flow's result)."""

    directory: str
    mode: str
    dry_run: bool = False
    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)
    planned: int = 0
    not_done: tuple[tuple[str, str], ...] = ()  # (run, why) of planned work that did not succeed
    remaining: tuple[tuple[str, str, str], ...] = ()  # (run, status, reason) still needing work
    notes: tuple[str, ...] = ()
    missing: tuple[tuple[str, str], ...] = ()  # (tier, why) of selected tiers with no run at all
    errors: tuple[str, ...] = ()  # what failed besides the runs (the report rebuild)

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.ok else EXIT_FAILED

    @property
    def ok(self) -> bool:
        """Every planned action succeeded and, read from the files afterwards, every
        selected run is complete (nothing left out by a switch, a filter or a failure)."""
        return not self.not_done and not self.missing and not self.remaining and not self.errors

    def reasons(self) -> list[str]:
        """Every reason it is not ``ok``: planned work not done, errors, runs and tiers still needing work."""
        items = [f"{label}: {why}" for label, why in self.not_done] + list(self.errors)
        items += [f"{label} still {status}: {why}" for label, status, why in self.remaining if label not in dict(self.not_done)]
        return items + [f"tier {tier}: {why}" for tier, why in self.missing]

    def problems(self, limit: int = 5) -> str:
        """The first few reasons it is not ``ok``, for a one-line summary."""
        items = self.reasons()
        return "; ".join(items[:limit]) + (f"; and {len(items) - limit} more" if len(items) > limit else "")

    def format(self) -> str:
        def counts(c: dict[str, int]) -> str:
            return ", ".join(f"{k} {v}" for k, v in c.items())

        lines = [
            f"recovered {self.directory}: {self.planned - len(self.not_done)} of {self.planned} planned run(s) done",
            f"before: {counts(self.before)}",
            f"after:  {counts(self.after)}",
        ]
        lines += [f"not done: {label}: {why}" for label, why in self.not_done]
        lines += [f"error: {e}" for e in self.errors]
        if self.remaining:
            lines.append(
                f"still needing work: {len(self.remaining)} (the recovery exits {EXIT_FAILED}: "
                "not every selected run is complete afterwards)"
            )
            lines += [f"  {label}  {status}  {reason}" for label, status, reason in self.remaining]
        return "\n".join(lines)


def summarize(
    before: Survey, after: Survey, not_done: Sequence[tuple[str, str]] = (), errors: Sequence[str] = ()
) -> RecoverySummary:
    """The summary of a recovery that planned ``before`` and left the files as ``after``
    says (``after`` restricted to the runs ``before`` selected); ``not_done``: (run, why)
    of the planned work that did not succeed; ``errors``: what else failed (the reports)."""
    directory = before.exp.dir if isinstance(before, ExperimentSurvey) else before.run.dir
    return RecoverySummary(
        directory=str(directory),
        mode=before.mode.value,
        before=counts_of(before),
        after=counts_of(after),
        planned=len(before.planned),
        not_done=tuple(not_done),
        remaining=tuple((r["run"], r["status"], r["reason"]) for r in still_needing_rows(after)),
        notes=tuple(before.notes),
        missing=tuple((m.tier, m.reason) for m in getattr(after, "missing_tiers", ())),
        errors=tuple(errors),
    )


def build_selection(
    statuses: Sequence[str] | None = None, tiers: Sequence[str] | None = None, subtests: Sequence[str] | None = None,
    runs: str | Sequence[int] | None = None, agents_only: bool = False, judges_only: bool = False,
    judge_model: str | None = None,
) -> Selection:
    return Selection.build(
        statuses=statuses, tiers=tiers, subtests=subtests, runs=runs,
        agents_only=agents_only, judges_only=judges_only, judge_model=judge_model,
    )


def check_suite_rerun(s: SuiteRunSurvey) -> None:
    """A standard-mode rerun goes through ``run_suite --resume``, which reruns every unfinished case."""
    if s.unselected_needing_work:
        raise RecoveryInputError(
            f"--status leaves out unfinished case(s) {', '.join(s.unselected_needing_work)}, but run_suite "
            "--resume reruns every unfinished case: drop --status or include their statuses"
        )
    if s.planned and not s.manifest.suite_file:
        where = s.run.dir if s.mode is Mode.INSPECT else s.run.manifest
        raise RecoveryInputError(f"{where}: no loadable suite file is recorded, so run_suite cannot rerun its cases")


def check_recovery(
    directory: str, selection: Selection, parallelism: int | None, allow_code_change: bool = False
) -> ExperimentSurvey | SuiteRunSurvey:
    """Everything a real recovery would refuse, checked before Prefect starts; returns the
    survey it read. Of an experiment that passes, the status cache is saved: the flow's
    own survey, seconds later, then reads only the files that changed meanwhile."""
    s = survey(directory, selection)
    target = s.exp if isinstance(s, ExperimentSurvey) else s.run
    check_lock(s.exp.lock if isinstance(s, ExperimentSurvey) else s.lock, what=str(target.dir))
    problem = unwritable_reason(target.dir)
    if problem is not None:  # a read-only mount: refused here, not at the lock inside the flow
        raise RecoveryInputError(f"{target.dir}: a recovery writes here and cannot ({problem}); --dry-run and --json only read")
    refuse_linked_places(s)
    if isinstance(s, ExperimentSurvey):
        if any(r.rerun_agent or r.judge_slots for r in s.planned):
            # Imported here: the agent-eval spec (GitPython, settings) is what a rerun needs,
            # and a recovery that only regenerates files should start without it.
            from ..agent_eval import load_spec

            load_spec(s.exp)  # an experiment it cannot rerun, or a bad command template
        if any(r.rerun_agent for r in s.planned) and not s.exp.prompt.is_file():
            raise RecoveryInputError(
                f"{s.exp.prompt}: missing, so agents of this experiment cannot be rerun; restore it, "
                "or recover without agent reruns (--judges-only, or --status results)"
            )
        if s.cache is not None:
            s.cache.save()
        return s
    if s.mode is Mode.INSPECT:
        # Checked, so now its suite file may run: the variants it expects that have no log yet.
        s = survey_suite_run(s.run, selection, load_suite=True)
    check_suite_rerun(s)
    if s.planned:
        from ..suites.preflight import check_run  # loads the suite machinery: only for a real rerun

        inspect = s.mode is Mode.INSPECT
        check_run(
            s.manifest.suite_file, dry_run=False, parallelism=parallelism,
            resume=None if inspect else str(s.run.dir),
            results_root=str(s.run.dir.parent) if inspect else "results",
            allow_code_change=allow_code_change,  # a rerun on other code is refused without it
        )
    return s
