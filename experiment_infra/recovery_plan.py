"""Recovery, Prefect-free: which runs an experiment expects, what their files say, what to do.

``survey()`` is the whole dry run: it reads an experiment directory (agent evaluation)
or a standard-mode run directory, classifies every expected run with the rules in
``status``, applies the user's filters and decides one action per run. It only reads;
the flow (``flows/recover.py``) executes the actions and the renderers
(``recovery_render``) print them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Iterable, Sequence

from .layout import ExperimentPaths, SuiteRunPaths, UnsafeNameError, check_name
from .records import AgentEvalManifest, ExperimentConfig, SuiteManifest, read_record
from .status import (
    AGENT_RERUN_STATUSES,
    JUDGE_RERUN_STATUSES,
    CaseStatus,
    JudgeClassification,
    JudgeStatus,
    RunStatus,
    classify_case,
    classify_run,
)


class RecoveryInputError(ValueError):
    """Bad input to a recovery (one line naming the field or file and the fix)."""


class Mode(str, Enum):
    AGENT_EVAL = "agent_eval"
    STANDARD = "standard"


RUN_STATUS_NAMES = tuple(s.value for s in RunStatus)
JUDGE_STATUS_NAMES = tuple(s.value for s in JudgeStatus)
AGENT_EVAL_STATUS_NAMES = RUN_STATUS_NAMES + tuple(n for n in JUDGE_STATUS_NAMES if n not in RUN_STATUS_NAMES)
CASE_STATUS_NAMES = tuple(s.value for s in CaseStatus)


# ----------------------------------------------------------------------- selection


def parse_runs(value: str | Iterable[int] | None) -> frozenset[int] | None:
    """``"1,3,5"`` (or a list of ints) -> run numbers; None means every run."""
    if value is None:
        return None
    items: list[object] = value.split(",") if isinstance(value, str) else list(value)
    runs = set()
    for item in items:
        text = str(item).strip()
        if isinstance(item, bool) or not text.isdigit() or int(text) < 1:
            raise RecoveryInputError(f"--runs: {text!r} is not a run number (use positive integers, e.g. --runs 1,3,5)")
        runs.add(int(text))
    if not runs:
        raise RecoveryInputError("--runs is empty (use e.g. --runs 1,3,5)")
    return frozenset(runs)


@dataclass(frozen=True)
class Selection:
    """The user's filters (AND-combined; None = no filter) and action switches."""

    statuses: frozenset[str] | None = None
    tiers: frozenset[str] | None = None
    subtests: frozenset[str] | None = None
    runs: frozenset[int] | None = None
    agents_only: bool = False
    judges_only: bool = False
    judge_model: str | None = None

    @classmethod
    def build(
        cls,
        *,
        statuses: Sequence[str] | None = None,
        tiers: Sequence[str] | None = None,
        subtests: Sequence[str] | None = None,
        runs: str | Iterable[int] | None = None,
        agents_only: bool = False,
        judges_only: bool = False,
        judge_model: str | None = None,
    ) -> Selection:
        if agents_only and judges_only:
            raise RecoveryInputError("--agents-only and --judges-only exclude each other: pass at most one")
        if judge_model is not None and not str(judge_model).strip():
            raise RecoveryInputError("--judge-model is empty: name the model the judge reruns should use")
        return cls(
            statuses=frozenset(statuses) if statuses else None,
            tiers=frozenset(tiers) if tiers else None,
            subtests=frozenset(subtests) if subtests else None,
            runs=parse_runs(runs),
            agents_only=agents_only,
            judges_only=judges_only,
            judge_model=judge_model,
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "statuses": sorted(self.statuses) if self.statuses else None,
            "tiers": sorted(self.tiers) if self.tiers else None,
            "subtests": sorted(self.subtests) if self.subtests else None,
            "runs": sorted(self.runs) if self.runs else None,
            "agents_only": self.agents_only,
            "judges_only": self.judges_only,
            "judge_model": self.judge_model,
        }


def _check_statuses(selection: Selection, valid: Sequence[str], kind: str) -> None:
    unknown = sorted(set(selection.statuses or ()) - set(valid))
    if unknown:
        raise RecoveryInputError(
            f"--status {', '.join(unknown)}: no such {kind} status; valid statuses are {', '.join(valid)}"
        )


# ------------------------------------------------------------------- agent evaluation


@dataclass(frozen=True)
class RunWork:
    """One expected run: its classification and what recovery does about it."""

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

    @property
    def label(self) -> str:
        return f"{self.tier}/{self.subtest}/run_{self.run:02d}"

    @property
    def planned(self) -> bool:
        return self.regenerate or self.rerun_agent or bool(self.judge_slots)

    @property
    def needs_work(self) -> bool:
        """Anything at all is wrong with this run (whether or not this recovery fixes it)."""
        return (
            self.status is not RunStatus.COMPLETED
            or any(j.status in JUDGE_RERUN_STATUSES for j in self.judges)
        )

    @property
    def problem(self) -> str:
        """The reason in words: the run's, then each judge slot that needs work."""
        parts = [] if self.status is RunStatus.COMPLETED else [self.reason]
        parts += [
            f"judge_{j.slot:02d} {j.status.value}: {j.reason}" for j in self.judges if j.status in JUDGE_RERUN_STATUSES
        ]
        return "; ".join(parts) or self.reason

    @property
    def action(self) -> str:
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


@dataclass(frozen=True)
class ExperimentSurvey:
    """Every selected expected run of an agent-evaluation experiment, with its plan."""

    exp: ExperimentPaths
    config: ExperimentConfig
    selection: Selection
    expected: int
    runs: tuple[RunWork, ...]
    notes: tuple[str, ...] = ()
    mode: Mode = Mode.AGENT_EVAL

    @property
    def planned(self) -> tuple[RunWork, ...]:
        return tuple(r for r in self.runs if r.planned)

    @property
    def needing_work(self) -> tuple[RunWork, ...]:
        return tuple(r for r in self.runs if r.needs_work)

    def run_counts(self) -> dict[str, int]:
        counts = {name: 0 for name in RUN_STATUS_NAMES}
        for r in self.runs:
            counts[r.status.value] += 1
        return counts

    def judge_counts(self) -> dict[str, int]:
        counts = {name: 0 for name in JUDGE_STATUS_NAMES}
        for r in self.runs:
            for j in r.judges:
                counts[j.status.value] += 1
        return counts

    def action_counts(self) -> dict[str, int]:
        return {
            "regenerate": sum(1 for r in self.runs if r.regenerate),
            "agent_reruns": sum(1 for r in self.runs if r.rerun_agent),
            "judge_reruns": sum(len(r.judge_slots) for r in self.runs if not r.rerun_agent),
            "excluded": sum(1 for r in self.runs if r.excluded and not r.planned),
        }


def load_config(exp: ExperimentPaths) -> ExperimentConfig:
    read = read_record(exp.config, ExperimentConfig)
    if read.record is None:
        if read.problem == "missing":
            raise RecoveryInputError(f"{exp.config}: missing; is {exp.dir} an experiment directory?")
        raise RecoveryInputError(f"{exp.config}: {read.problem}; fix or restore it")
    for tier in read.record.tiers_to_run:
        try:
            check_name("tier", tier)
        except UnsafeNameError as exc:
            raise RecoveryInputError(f"{exp.config}: tiers_to_run: {exc}") from None
    return read.record


def expected_subtests(exp: ExperimentPaths, config: ExperimentConfig) -> tuple[dict[str, list[str]], list[str]]:
    """Subtests per tier: those on disk, plus any this project's manifest records."""
    notes: list[str] = []
    recorded: dict[str, set[str]] = {}
    manifest = read_record(exp.manifest, AgentEvalManifest)
    if manifest.record is not None:
        for c in manifest.record.conditions:
            recorded.setdefault(c.tier, set()).add(c.subtest)
    elif manifest.exists:
        notes.append(f"{exp.manifest} is unusable ({manifest.problem}); expected subtests come from disk only")
    subtests: dict[str, list[str]] = {}
    for tier in config.tiers_to_run:
        names = set(exp.subtests_on_disk(tier))
        for name in recorded.get(tier, ()):
            try:
                names.add(check_name("subtest", name))
            except UnsafeNameError:
                notes.append(f"{exp.manifest}: subtest {name!r} of tier {tier} is not a safe name; ignored")
        subtests[tier] = sorted(names)
        if not names:
            notes.append(f"tier {tier}: no subtest directories and none recorded in a manifest, so no runs are expected")
    return subtests, notes


def plan_run(
    tier: str, subtest: str, run: int, status: RunStatus, reason: str,
    judges: tuple[JudgeClassification, ...], selection: Selection,
) -> RunWork:
    """Decide one run's action from its classification, the status filter and the switches."""
    wanted = selection.statuses
    base = RunWork(tier, subtest, run, status, reason, judges)
    if status in AGENT_RERUN_STATUSES:
        # agent_failed names the same runs from the judges' side: their agent must run first.
        if wanted is not None and status.value not in wanted and JudgeStatus.AGENT_FAILED.value not in wanted:
            return base
        if selection.judges_only:
            return _with(base, excluded="the agent must be rerun before it can be judged; --judges-only")
        slots = () if selection.agents_only else tuple(j.slot for j in judges)
        return _with(base, rerun_agent=True, judge_slots=slots)
    bad = [j for j in judges if j.status in JUDGE_RERUN_STATUSES]
    chosen = tuple(j.slot for j in bad if wanted is None or j.status.value in wanted)
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
    return replace(work, **changes)  # type: ignore[arg-type]


def _matches(work: RunWork, selection: Selection) -> bool:
    if selection.statuses is None:
        return True
    names = {work.status.value, *(j.status.value for j in work.judges)}
    return bool(names & selection.statuses)


def _check_names(selection: Selection, config: ExperimentConfig, subtests: dict[str, list[str]]) -> None:
    if selection.tiers:
        unknown = sorted(selection.tiers - set(config.tiers_to_run))
        if unknown:
            raise RecoveryInputError(
                f"--tier {', '.join(unknown)}: not in tiers_to_run of config/experiment.json "
                f"({', '.join(config.tiers_to_run)})"
            )
    if selection.subtests:
        known = {s for t, names in subtests.items() if not selection.tiers or t in selection.tiers for s in names}
        unknown = sorted(selection.subtests - known)
        if unknown:
            raise RecoveryInputError(
                f"--subtest {', '.join(unknown)}: no such subtest in the selected tiers (known: {', '.join(sorted(known)) or 'none'})"
            )
    if selection.runs:
        too_big = sorted(r for r in selection.runs if r > config.runs_per_subtest)
        if too_big:
            raise RecoveryInputError(
                f"--runs {','.join(map(str, too_big))}: runs_per_subtest is {config.runs_per_subtest} "
                f"(use run numbers 1..{config.runs_per_subtest})"
            )


def survey_experiment(exp: ExperimentPaths, selection: Selection) -> ExperimentSurvey:
    """Classify every selected expected run and plan its action (reads only)."""
    _check_statuses(selection, AGENT_EVAL_STATUS_NAMES, "run or judge")
    config = load_config(exp)
    subtests, notes = expected_subtests(exp, config)
    _check_names(selection, config, subtests)
    models = list(config.judge_models)
    expected = 0
    runs: list[RunWork] = []
    for tier in config.tiers_to_run:
        tier_selected = selection.tiers is None or tier in selection.tiers
        for subtest in subtests[tier]:
            sub = exp.subtest(tier, subtest)
            selected = tier_selected and (selection.subtests is None or subtest in selection.subtests)
            for number in range(1, config.runs_per_subtest + 1):
                expected += 1
                if not selected or (selection.runs is not None and number not in selection.runs):
                    continue
                c = classify_run(sub.run(number), models)
                work = plan_run(tier, subtest, number, c.status, c.reason, c.judges, selection)
                if _matches(work, selection):
                    runs.append(work)
    return ExperimentSurvey(exp, config, selection, expected, tuple(runs), tuple(notes))


# ----------------------------------------------------------------------- standard mode


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

    @property
    def action(self) -> str:
        return "rerun case (run_suite --resume)" if self.needs_work else "none"


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

    @property
    def runs(self) -> tuple[CaseWork, ...]:
        return self.cases

    @property
    def planned(self) -> tuple[CaseWork, ...]:
        return tuple(c for c in self.cases if c.planned)

    @property
    def needing_work(self) -> tuple[CaseWork, ...]:
        return self.planned

    def case_counts(self) -> dict[str, int]:
        counts = {name: 0 for name in CASE_STATUS_NAMES}
        for c in self.cases:
            counts[c.status.value] += 1
        return counts


_AGENT_EVAL_ONLY = (
    ("tiers", "--tier"), ("subtests", "--subtest"), ("runs", "--runs"),
    ("judges_only", "--judges-only"), ("judge_model", "--judge-model"),
)


def survey_suite_run(run: SuiteRunPaths, selection: Selection) -> SuiteRunSurvey:
    for attr, flag in _AGENT_EVAL_ONLY:
        if getattr(selection, attr):
            raise RecoveryInputError(
                f"{flag} applies to agent-evaluation experiments; {run.dir} is a standard-mode run directory "
                "(filter it with --status)"
            )
    _check_statuses(selection, CASE_STATUS_NAMES, "case")
    read = read_record(run.manifest, SuiteManifest)
    if read.record is None:
        raise RecoveryInputError(f"{run.manifest}: {read.problem}; fix or restore it")
    manifest = read.record
    cases: list[CaseWork] = []
    left_out: list[str] = []
    for mc in manifest.cases:
        try:
            paths = run.case(mc.variant_name)
        except UnsafeNameError as exc:
            raise RecoveryInputError(f"{run.manifest}: {exc}") from None
        c = classify_case(paths)
        work = CaseWork(mc.variant_name, c.status, c.reason)
        if selection.statuses is None or c.status.value in selection.statuses:
            cases.append(work)
        elif work.needs_work:
            left_out.append(mc.variant_name)
    notes = []
    if left_out:
        notes.append(
            f"{len(left_out)} unfinished case(s) not selected by --status ({', '.join(left_out)}): run_suite "
            "--resume reruns every unfinished case, so a real recovery needs a --status that selects them too"
        )
    return SuiteRunSurvey(
        run, manifest, selection, len(manifest.cases), tuple(cases), tuple(left_out), tuple(notes)
    )


# --------------------------------------------------------------------------- entry


Survey = ExperimentSurvey | SuiteRunSurvey


def target_of(directory: str | Path) -> ExperimentPaths | SuiteRunPaths:
    """The experiment (agent evaluation) or standard-mode run directory at ``directory``."""
    path = Path(directory).expanduser()
    if not path.exists():
        raise RecoveryInputError(f"{path}: no such directory")
    if not path.is_dir():
        raise RecoveryInputError(f"{path}: not a directory")
    path = path.resolve()
    exp = ExperimentPaths(path)
    if exp.config.is_file():
        return exp
    run = SuiteRunPaths(path)
    if run.is_run_dir():
        return run
    raise RecoveryInputError(
        f"{path}: no config/experiment.json (agent-evaluation experiment) and no manifest.json "
        "(standard-mode run directory); pass the directory that holds one"
    )


def survey(directory: str | Path, selection: Selection) -> Survey:
    target = target_of(directory)
    if isinstance(target, ExperimentPaths):
        return survey_experiment(target, selection)
    return survey_suite_run(target, selection)
