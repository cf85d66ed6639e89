"""Recovery over a whole results root (the nightly run), Prefect-free.

``scan_results_root`` finds every experiment directory below a root: agent-evaluation
experiments (``config/experiment.json``) and standard-mode run directories
(``manifest.json``); it does not look inside one it found. ``survey_root`` classifies
each with the recovery core and says, per directory, how much work there is or why
it is skipped: filters that do not apply to it (``--tier`` on a standard run), a
lock held by another recovery, or a directory it cannot read. One bad directory never
stops the night; a root that does not exist does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import ExperimentError
from ..layout import ExperimentPaths, SuiteRunPaths
from ..files.lock import LockHeld, check_lock
from .survey import ExperimentSurvey, Survey, load_config, survey_experiment
from .select import (
    AGENT_EVAL_STATUS_NAMES,
    CASE_STATUS_NAMES,
    Mode,
    RecoveryInputError,
    Selection,
    shown_names,
)
from .suite_runs import survey_suite_run

# results/{experiment}/{run dir} is depth 2; a copied experiment may sit a level or two deeper.
MAX_DEPTH = 4


class Skip(str):
    """Why a directory gets no recovery tonight (shown in the nightly summary)."""


@dataclass(frozen=True)
class Found:
    directory: Path
    mode: Mode

    @property
    def target(self) -> ExperimentPaths | SuiteRunPaths:
        return ExperimentPaths(self.directory) if self.mode is Mode.AGENT_EVAL else SuiteRunPaths(self.directory)


@dataclass(frozen=True)
class RootItem:
    """One experiment directory of the root: its classification, its work, or why it is skipped."""

    found: Found
    selection: Selection | None = None
    survey: Survey | None = None
    skipped: str | None = None  # filters, lock held, unreadable
    locked: bool = False

    @property
    def planned(self) -> int:
        return len(self.survey.planned) if self.survey is not None else 0

    @property
    def needing_work(self) -> int:
        return len(self.survey.needing_work) if self.survey is not None else 0

    @property
    def never_started(self) -> tuple[str, ...]:
        """Selected tiers with no run at all: work no recovery can do (it cannot name their runs)."""
        return tuple(m.tier for m in getattr(self.survey, "missing_tiers", ()))

    @property
    def has_work(self) -> bool:
        return self.skipped is None and self.planned > 0

    @property
    def work(self) -> str:
        """The planned actions in words."""
        s = self.survey
        if s is None:
            return ""
        if isinstance(s, ExperimentSurvey):
            acts = s.action_counts()
            return (
                f"{acts['regenerate']} regenerate, {acts['agent_reruns']} agent rerun(s), "
                f"{acts['judge_reruns']} judge rerun(s)"
            )
        return f"{len(s.planned)} case rerun(s) (run_suite --resume)"


def _kind(directory: Path) -> Mode | None:
    if ExperimentPaths(directory).config.is_file():
        return Mode.AGENT_EVAL
    if SuiteRunPaths(directory).is_run_dir():
        return Mode.STANDARD
    return None


def results_root_dir(root: str | Path) -> Path:
    """``root`` resolved, or RecoveryInputError when it is no directory."""
    path = Path(root).expanduser()
    if not path.exists():
        raise RecoveryInputError(f"results root {path}: no such directory; pass the directory holding your experiments")
    if not path.is_dir():
        raise RecoveryInputError(f"results root {path}: not a directory")
    return path.resolve()


def scan_results_root(root: str | Path, max_depth: int = MAX_DEPTH) -> list[Found]:
    """Every experiment directory under ``root`` (``root`` itself included), sorted by path."""
    path = results_root_dir(root)
    found: list[Found] = []
    for dirpath, dirnames, _files in os.walk(path):
        here = Path(dirpath)
        kind = _kind(here)
        if kind is not None:
            found.append(Found(here, kind))
            dirnames[:] = []  # its runs, attempts and worktrees are not experiments
            continue
        depth = len(here.relative_to(path).parts)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if depth < max_depth else []
    return sorted(found, key=lambda f: str(f.directory))


def check_root_filters(statuses: Sequence[str] | None) -> None:
    """A status that no kind of directory has is a typo, refused for the whole night."""
    valid = set(AGENT_EVAL_STATUS_NAMES) | set(CASE_STATUS_NAMES)
    unknown = sorted(set(statuses or ()) - valid)
    if unknown:
        raise RecoveryInputError(
            f"statuses {shown_names(unknown)}: no such status; valid: {', '.join(sorted(valid))}"
        )


def selection_for(
    found: Found,
    statuses: Sequence[str] | None,
    tiers: Sequence[str] | None,
    agents_only: bool,
    judges_only: bool,
) -> Selection | Skip:
    """The nightly filters as they apply to this directory's kind, or why none of it is selected."""
    wanted = set(statuses) if statuses else None
    if found.mode is Mode.STANDARD:
        if tiers:
            return Skip("tiers given; a standard-mode run has no tiers")
        if judges_only:
            return Skip("judges_only; a standard-mode run has no judges")
        mine = wanted & set(CASE_STATUS_NAMES) if wanted is not None else None
        if mine is not None and not mine:
            return Skip(f"none of the statuses ({', '.join(sorted(wanted or ()))}) is a case status")
        return Selection.build(statuses=sorted(mine) if mine else None, agents_only=agents_only)
    mine = wanted & set(AGENT_EVAL_STATUS_NAMES) if wanted is not None else None
    if mine is not None and not mine:
        return Skip(f"none of the statuses ({', '.join(sorted(wanted or ()))}) is a run or judge status")
    chosen_tiers = None
    if tiers:
        config = load_config(ExperimentPaths(found.directory))
        chosen_tiers = sorted(set(tiers) & set(config.tiers_to_run))
        if not chosen_tiers:
            return Skip(f"none of the tiers ({', '.join(sorted(tiers))}) is in its tiers_to_run")
    return Selection.build(
        statuses=sorted(mine) if mine else None, tiers=chosen_tiers, agents_only=agents_only, judges_only=judges_only
    )


def survey_one(found: Found, selection: Selection) -> Survey:
    if found.mode is Mode.AGENT_EVAL:
        # Read-only: a walk's surveys are never saved (each recovery surveys again).
        return survey_experiment(ExperimentPaths(found.directory), selection, read_only=True)
    return survey_suite_run(SuiteRunPaths(found.directory), selection)


def _code_change(s: Survey) -> str | None:
    """Why a standard-mode run's rerun would be refused for running on other code (None: it would not)."""
    return None if isinstance(s, ExperimentSurvey) else s.code_change


def survey_root(
    root: str | Path,
    *,
    statuses: Sequence[str] | None = None,
    tiers: Sequence[str] | None = None,
    agents_only: bool = False,
    judges_only: bool = False,
    allow_code_change: bool = False,
) -> list[RootItem]:
    """Classify every experiment directory under ``root`` (reads only). A standard-mode run
    whose cases would rerun on other code than it last ran on is skipped, with the reason,
    unless ``allow_code_change``."""
    if agents_only and judges_only:
        raise RecoveryInputError("agents_only and judges_only exclude each other: pass at most one")
    check_root_filters(statuses)
    items = []
    for found in scan_results_root(root):
        try:
            selection = selection_for(found, statuses, tiers, agents_only, judges_only)
            if isinstance(selection, Skip):
                items.append(RootItem(found, skipped=str(selection)))
                continue
            s = survey_one(found, selection)
        except (ExperimentError, OSError) as exc:  # a bad config, an older layout: listed, never recovered
            items.append(RootItem(found, skipped=f"cannot classify: {exc}"))
            continue
        item = RootItem(found, selection, s)
        left_out = getattr(s, "unselected_needing_work", ())
        if left_out and s.planned:
            # run_suite --resume would rerun these too, against the statuses asked for.
            item = RootItem(found, selection, s, skipped=f"statuses leave out unfinished case(s) {', '.join(left_out)}")
        elif s.planned:
            changed = _code_change(s) if not allow_code_change else None
            try:
                check_lock(found.target.lock, what=str(found.directory))
            except LockHeld as exc:
                item = RootItem(found, selection, s, skipped=f"locked: {exc}", locked=True)
            else:
                if changed is not None:
                    item = RootItem(found, selection, s, skipped=changed)
        items.append(item)
    return items
