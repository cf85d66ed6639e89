"""Recovery of a standard-mode run directory (cases' statuses from their run records)
or of an inspect-mode log directory (variants' statuses from their newest .eval log).

A rerun goes through ``run_suite --resume``, which reruns every unfinished case and
skips completed ones, so the survey also says which unfinished cases a ``--status``
filter would leave out (a real recovery refuses that selection).
"""

from __future__ import annotations

from dataclasses import dataclass

from pathlib import Path

from ..layout import SuiteRunPaths, UnsafeNameError, check_name, inspect_lock
from ..records import RunRecord, SuiteManifest, read_record
from .select import CASE_STATUS_NAMES, Mode, RecoveryInputError, Selection, check_statuses
from ..status.rules import CaseClassification, CaseStatus, classify_case
from ..status.inspect import classify_inspect_case
from ..status.attempts import attempt_failures, failures_text


@dataclass(frozen=True)
class CaseWork:
    variant: str
    status: CaseStatus
    reason: str

    @property
    def label(self) -> str:
        return self.variant

    @property
    def needs_work(self) -> bool:
        return self.status is not CaseStatus.COMPLETED

    @property
    def planned(self) -> bool:
        return self.needs_work

    @property
    def problem(self) -> str:
        return self.reason

    inspect: bool = False
    # A standard-mode case's failure class per attempt, oldest first (``status.attempts``:
    # the rule the suite run's cases table shows too); empty when no attempt failed.
    failures: tuple[str | None, ...] = ()

    @property
    def failure(self) -> str | None:
        """The class of the last attempt's failure (None: it did not fail, or none is recorded)."""
        return self.failures[-1] if self.failures else None

    @property
    def failures_text(self) -> str:
        """``lost, exit``: each attempt's class, oldest first (``-``: none recorded)."""
        return failures_text(self.failures)

    @property
    def action(self) -> str:
        if not self.needs_work:
            return "none"
        return "rerun variant (run_suite, new .eval log)" if self.inspect else "rerun case (run_suite --resume)"


@dataclass(frozen=True)
class SuiteRunSurvey:
    """Every case of a standard-mode run directory, with its status."""

    run: SuiteRunPaths
    manifest: SuiteManifest
    selection: Selection
    expected: int
    cases: tuple[CaseWork, ...]
    unselected_needing_work: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    mode: Mode = Mode.STANDARD
    code_change: str | None = None  # why a rerun on the working tree's code is refused (None: same code)

    @property
    def runs(self) -> tuple[CaseWork, ...]:
        return self.cases

    @property
    def planned(self) -> tuple[CaseWork, ...]:
        return tuple(c for c in self.cases if c.planned)

    @property
    def needing_work(self) -> tuple[CaseWork, ...]:
        return self.planned

    @property
    def lock(self) -> Path:
        """The lock its runner holds (an inspect experiment's is beside its logs, not among them)."""
        return inspect_lock(self.run.dir) if self.mode is Mode.INSPECT else self.run.lock

    def case_counts(self) -> dict[str, int]:
        counts = {name: 0 for name in CASE_STATUS_NAMES}
        for c in self.cases:
            counts[c.status.value] += 1
        return counts


_AGENT_EVAL_ONLY = (
    ("tiers", "--tier"), ("subtests", "--subtest"), ("runs", "--runs"),
    ("judges_only", "--judges-only"), ("judge_model", "--judge-model"),
)


def survey_suite_run(run: SuiteRunPaths, selection: Selection, *, load_suite: bool = False) -> SuiteRunSurvey:
    """``load_suite``: an inspect log directory's suite file is loaded (its code runs) for the
    expected variants; only a real recovery asks for it (``inspect_dirs``)."""
    for attr, flag in _AGENT_EVAL_ONLY:
        if getattr(selection, attr):
            raise RecoveryInputError(
                f"{flag} applies to agent-evaluation experiments; {run.dir} is a standard-mode run directory "
                "(filter it with --status)"
            )
    check_statuses(selection, CASE_STATUS_NAMES, "case")
    inspect = not run.is_run_dir()
    notes: list[str] = []
    if inspect:
        from .inspect_dirs import inspect_manifest

        manifest, notes = inspect_manifest(run.dir, load_suite=load_suite)
    else:
        read = read_record(run.manifest, SuiteManifest)
        if read.record is None:
            raise RecoveryInputError(f"{run.manifest}: {read.problem}; fix or restore it")
        manifest = read.record
    cases: list[CaseWork] = []
    left_out: list[str] = []
    for mc in manifest.cases:
        c = _classify(run, mc.variant_name, inspect)
        # A completed case too: one that completed on a retry shows the attempts that failed.
        record = c.record if isinstance(c.record, RunRecord) else None
        failures = () if inspect else attempt_failures(run.case(mc.variant_name), record)
        work = CaseWork(mc.variant_name, c.status, c.reason, inspect, failures)
        if selection.statuses is None or c.status.value in selection.statuses:
            cases.append(work)
        elif work.needs_work and not inspect:
            left_out.append(mc.variant_name)
    if left_out:
        notes.append(
            f"{len(left_out)} unfinished case(s) not selected by --status ({', '.join(left_out)}): run_suite "
            "--resume reruns every unfinished case, so a real recovery needs a --status that selects them too"
        )
    changed = None
    if not inspect and any(c.planned for c in cases):
        from ..provenance.code_versions import code_change_in  # GitPython: only for runs with work to do

        changed = code_change_in(run, manifest)
        if changed is not None:
            notes.append(changed)
    return SuiteRunSurvey(
        run, manifest, selection, len(manifest.cases), tuple(cases), tuple(left_out), tuple(notes),
        Mode.INSPECT if inspect else Mode.STANDARD, changed,
    )


def _classify(run: SuiteRunPaths, variant: str, inspect: bool) -> CaseClassification:
    try:
        if inspect:
            return classify_inspect_case(run.dir, check_name("variant", variant))
        return classify_case(run.case(variant))
    except UnsafeNameError as exc:
        raise RecoveryInputError(f"{run.dir}: {exc}") from None
