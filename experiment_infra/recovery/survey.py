"""Recovery, Prefect-free: which runs an experiment expects, what their files say, what to do.

``survey()`` is the whole dry run: it reads an experiment directory (agent evaluation)
or a standard-mode run directory (``recovery.suite_runs``), classifies every expected run
with the rules in ``status``, applies the user's filters (``recovery.select``) and
decides one action per run. It only reads; the flow (``flows/recover.py``) executes
the actions and the renderers (``recovery.render``) print them.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TypeVar

from . import DEFAULT_PARALLELISM
from ..status.expected import ExpectedRuns, expected_runs
from ..layout import COMPLETED, IN_PROGRESS, ExperimentPaths, SuiteRunPaths, run_label
from ..records import ExperimentConfig, read_record
from .select import (
    AGENT_EVAL_STATUS_NAMES,
    CASE_STATUS_NAMES,
    JUDGE_STATUS_NAMES,
    RUN_STATUS_NAMES,
    Mode,
    RecoveryInputError,
    Selection,
    check_statuses,
    status_wanted,
    parse_runs,
    shown_names,
)
from .run_plan import RunWork, plan_run
from .suite_runs import CaseWork, SuiteRunSurvey, survey_suite_run
from ..status.rules import JudgeStatus, RunStatus
from ..status.batch import classify_runs
from ..status.cache import StatusCache
from ..status.prefetch import Prefetch

T = TypeVar("T")

__all__ = [
    "AGENT_EVAL_STATUS_NAMES", "CASE_STATUS_NAMES", "JUDGE_STATUS_NAMES", "RUN_STATUS_NAMES",
    "CaseWork", "ExperimentSurvey", "MissingTier", "Mode", "RecoveryInputError", "RunWork", "Selection", "SuiteRunSurvey",
    "Survey", "parse_runs", "plan_run", "survey", "survey_ahead", "survey_experiment", "survey_suite_run", "target_of",
]


# ------------------------------------------------------------------- agent evaluation


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
    cache: StatusCache | None = field(default=None, compare=False, repr=False)
    missing_tiers: tuple[MissingTier, ...] = ()  # selected tiers with no subtest at all

    @property
    def planned(self) -> tuple[RunWork, ...]:
        return tuple(r for r in self.runs if r.planned)

    @property
    def needing_work(self) -> tuple[RunWork, ...]:
        return tuple(r for r in self.runs if r.needs_work)

    @property
    def default_parallelism(self) -> int:
        """Task runs at once without ``-p``: the experiment's own ``parallel_subtests`` (its
        agents ran that many at once against one API), else DEFAULT_PARALLELISM."""
        own = self.config.parallel_subtests
        return own if own is not None and own > 0 else DEFAULT_PARALLELISM

    def run_counts(self) -> dict[str, int]:
        counts = {name: 0 for name in RUN_STATUS_NAMES}
        for r in self.runs:
            # A member is its name (text enums hash and compare as str): it finds the name's
            # key without reading ``.value``, a property that was most of this loop's time.
            counts[r.status] += 1
        return counts

    def judge_counts(self) -> dict[str, int]:
        counts = {name: 0 for name in JUDGE_STATUS_NAMES}
        # Runs classified alike share one tuple of judge classifications (status_batch):
        # count each distinct tuple once, times the runs that hold it.
        times: dict[int, list] = {}
        for r in self.runs:
            seen = times.get(id(r.judges))
            if seen is None:
                times[id(r.judges)] = [r.judges, 1]
            else:
                seen[1] += 1
        for judges, n in times.values():
            for j in judges:
                counts[j.status] += n  # the name's key, as in run_counts
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
    return read.record


@dataclass(frozen=True)
class MissingTier:
    """A tier of ``tiers_to_run`` with no subtest at all: work that never started, and that
    recovery cannot plan (it does not know the tier's subtests, so not its runs either)."""

    tier: str

    @property
    def reason(self) -> str:
        return (
            f"tier {self.tier} is in tiers_to_run but has no subtest directory and none is recorded in "
            "config/manifest.json or checkpoint.json, so none of its runs ever started; recovery cannot rerun runs it cannot name: "
            "run the experiment again for this tier"
        )


def _matches(work: RunWork, selection: Selection) -> bool:
    if selection.statuses is None:
        return True
    wanted = selection.statuses
    return status_wanted(work.status.value, work.reason, wanted) or any(
        status_wanted(j.status.value, j.reason, wanted) for j in work.judges
    )


def _check_names(selection: Selection, config: ExperimentConfig, subtests: dict[str, tuple[str, ...]]) -> None:
    if selection.tiers:
        unknown = sorted(selection.tiers - set(config.tiers_to_run))
        if unknown:
            raise RecoveryInputError(
                f"--tier {shown_names(unknown)}: not in tiers_to_run of config/experiment.json "
                f"({', '.join(config.tiers_to_run)})"
            )
    if selection.subtests:
        known = {s for t, names in subtests.items() if not selection.tiers or t in selection.tiers for s in names}
        unknown = sorted(selection.subtests - known)
        if unknown:
            raise RecoveryInputError(
                f"--subtest {shown_names(unknown)}: no such subtest in the selected tiers (known: {', '.join(sorted(known)) or 'none'})"
            )
    if selection.runs:
        too_big = sorted(r for r in selection.runs if r > config.runs_per_subtest)
        if too_big:
            raise RecoveryInputError(
                f"--runs {','.join(map(str, too_big))}: runs_per_subtest is {config.runs_per_subtest} "
                f"(use run numbers 1..{config.runs_per_subtest})"
            )


def survey_experiment(
    exp: ExperimentPaths, selection: Selection, *, cache: StatusCache | bool | None = True,
    workers: int | None = None, read_only: bool = False, prefetch: Prefetch | None = None,
) -> ExperimentSurvey:
    """Classify every selected expected run and plan its action (reads only).

    ``cache``: True loads ``.recover-cache.json`` (read here, written only by
    ``StatusCache.save``), a ``StatusCache`` is used as is, None/False reads every file.
    ``workers``: processes that classify (default: ``status_batch.classify_runs``'s choice).
    ``read_only``: the survey's cache will not be saved (a dry run), so it stores nothing.
    ``prefetch``: the cached runs' checks a dry run started early (``status_prefetch``).
    """
    check_statuses(selection, AGENT_EVAL_STATUS_NAMES, "run or judge")
    config = load_config(exp)
    expected = expected_runs(exp, config)
    subtests = expected.subtests
    _check_names(selection, config, subtests)
    models = list(config.judge_models)
    if cache is True:
        cache = StatusCache.load(exp.status_cache, models, read_only=read_only, prefetch=prefetch)
    wanted: list[tuple[str, str, int, str | None]] = []  # tier, subtest, run, where it is when not at its home
    items: list[tuple[str, str]] = []  # (label, run directory) of each selected run
    copies: list[str] = []  # runs with a directory in more than one place (split layout)
    for tier in expected.tiers:
        if selection.tiers is not None and tier not in selection.tiers:
            continue
        for subtest in subtests[tier]:
            if selection.subtests is not None and subtest not in selection.subtests:
                continue
            home = exp.subtest(tier, subtest)
            # Split layout: each run is read where it is (one listing per place, no stat per run).
            found = exp.runs_found(tier, subtest) if exp.split else {}
            for number in expected.run_numbers:
                if selection.runs is not None and number not in selection.runs:
                    continue
                places = found.get(number, (home,))
                wanted.append((tier, subtest, number, None if places[0] == home else exp.elsewhere(places[0].run(number))))
                items.append((run_label(tier, subtest, number), places[0].run_dir_str(number)))
                if len(places) > 1:
                    copies.append(run_label(tier, subtest, number))
    classified = classify_runs(items, models, cache if isinstance(cache, StatusCache) else None, workers=workers)
    runs: list[RunWork] = []
    for (tier, subtest, number, away), c in zip(wanted, classified, strict=True):
        work = plan_run(tier, subtest, number, c.status, c.reason, c.judges, selection)
        if away is not None:
            work = work._replace(away=away)
        if _matches(work, selection):
            runs.append(work)
    notes = [*expected.notes, *filter(None, [expected.unexpected_note, _copies_note(copies)])]
    return ExperimentSurvey(
        exp, config, selection, expected.total, tuple(runs), tuple(notes),
        cache=cache if isinstance(cache, StatusCache) else None,
        missing_tiers=_missing_tiers(expected, selection),
    )


def _copies_note(labels: list[str]) -> str | None:
    if not labels:
        return None
    shown = ", ".join(labels[:5]) + (f" and {len(labels) - 5} more" if len(labels) > 5 else "")
    return (
        f"{len(labels)} run(s) have a directory in more than one of {COMPLETED}/, {IN_PROGRESS}/ and the experiment's "
        f"top ({shown}): the first of those (in_progress/, then {COMPLETED}/, then the top) is read, the fresh copy "
        f"ProjectScylla keeps; a recovery that works on such a run first moves the {COMPLETED}/ copy to "
        f"{COMPLETED}/T/S/.failed/run_NN_attempt_K (ProjectScylla deletes it), and otherwise leaves them alone"
    )


def _missing_tiers(expected: ExpectedRuns, selection: Selection) -> tuple[MissingTier, ...]:
    """The selected tiers without a subtest: their runs are ``missing`` (agent side) work."""
    if selection.subtests is not None:
        return ()  # a subtest filter names subtests; such a tier has none to match
    if selection.statuses is not None and not selection.statuses & {RunStatus.MISSING.value, JudgeStatus.AGENT_FAILED.value}:
        return ()
    return tuple(MissingTier(t) for t in expected.empty_tiers if selection.tiers is None or t in selection.tiers)


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
    from .inspect_dirs import inspect_target, is_inspect_log_dir

    if is_inspect_log_dir(path):
        return inspect_target(path)
    raise RecoveryInputError(
        f"{path}: no config/experiment.json (agent-evaluation experiment), no manifest.json "
        "(standard-mode run directory) and no .eval logs (inspect mode); pass the directory that holds one"
    )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside. A survey makes no reference cycles (a test
    holds it to that) and keeps what it makes alive to its end, so the collector's passes
    over tens of thousands of classifications freed nothing and cost a dry run of ten
    thousand runs a twentieth of its time. Reference counting frees everything else as
    before; the collector is enabled again after, if it was before."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def survey_ahead(directory: str | Path, selection: Selection, early: Prefetch | None,
                 render: Callable[[Survey], T]) -> T:
    """A dry run's ``render(survey(...))``, made ahead of its early checks: planned and
    rendered as if no cached run changed while the checks go on (so that this work overlaps
    their last part), kept once they confirm it, else made again from their verdicts. The
    answer is always the one the checks back."""
    with _collector_paused():
        if early is None or early.stale:  # nothing to go ahead of
            return render(survey(directory, selection, read_only=True, prefetch=early))
        answer = render(survey(directory, selection, read_only=True, prefetch=early.assuming_unchanged()))
        if not early.confirmed():
            answer = render(survey(directory, selection, read_only=True, prefetch=early))
    return answer


def survey(directory: str | Path, selection: Selection, *, read_only: bool = False,
           prefetch: Prefetch | None = None, load_suite: bool = False) -> Survey:
    """``read_only``: a survey whose cache is never saved (a dry run's; see survey_experiment).
    ``load_suite``: an inspect log directory's suite file may be loaded, which runs its code
    (a real recovery only, after its checks; see ``inspect_dirs``)."""
    target = target_of(directory)
    with _collector_paused():
        if isinstance(target, ExperimentPaths):
            return survey_experiment(target, selection, read_only=read_only, prefetch=prefetch)
        return survey_suite_run(target, selection, load_suite=load_suite)
