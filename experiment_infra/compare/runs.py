"""The runs a comparison reads: run directories named on the command line, or every run
directory of an experiment folder (``results/<experiment>/``), each with its manifest,
the status of each case and the metrics of each completed one."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ExperimentError
from ..layout import DIRTY_SUFFIX, SuiteRunPaths
from ..records import CaseMetrics, GitProvenance, SuiteManifest, read_record
from ..status import CaseStatus, classify_case

__all__ = ["CaseResult", "CompareError", "LoadedRun", "find_runs", "load_run", "load_runs"]


class CompareError(ExperimentError, ValueError):
    """Input ``compare`` cannot work with (one ``error:`` line, exit 2)."""


@dataclass(frozen=True)
class CaseResult:
    variant: str
    config: dict[str, Any]
    status: CaseStatus
    metrics: dict[str, float] | None  # a completed case's finite numbers; None otherwise


@dataclass(frozen=True)
class LoadedRun:
    path: Path
    manifest: SuiteManifest
    cases: tuple[CaseResult, ...]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def git(self) -> GitProvenance:
        return self.manifest.git

    @property
    def commit(self) -> str:
        return self.git.short + (DIRTY_SUFFIX if self.git.dirty else "")

    def metric_names(self) -> set[str]:
        return {m for c in self.cases if c.metrics for m in c.metrics}


def _is_run(directory: Path) -> bool:
    return SuiteRunPaths(directory).is_run_dir()


def find_runs(paths: Sequence[Path]) -> list[Path]:
    """Run directories from the command line: two or more run directories, or one
    experiment folder whose subdirectories are runs (others in it, hidden ones
    included, are not runs and are passed over)."""
    if not paths:
        raise CompareError("compare needs two or more run directories, or an experiment folder (results/<experiment>/)")
    for p in paths:
        if not p.is_dir():
            raise CompareError(f"{p}: no such directory (give run directories or an experiment folder)")
    if len(paths) == 1 and not _is_run(paths[0]):
        folder = paths[0]
        runs = sorted(d for d in folder.iterdir() if not d.name.startswith(".") and d.is_dir()
                      and not d.is_symlink() and _is_run(d))
        if len(runs) < 2:
            raise CompareError(
                f"{folder}: an experiment folder needs two or more run directories (with manifest.json); found {len(runs)}"
            )
        return runs
    for p in paths:
        if not _is_run(p):
            raise CompareError(f"{p}: not a run directory (no {SuiteRunPaths(p).manifest.name}); give a suite's run directory")
    unique: list[Path] = []
    seen: set[str] = set()
    for p in paths:  # the same run named twice (a link, a relative path) is one run
        real = os.path.realpath(p)
        if real not in seen:
            seen.add(real)
            unique.append(Path(p))
    if len(unique) < 2:
        raise CompareError(
            f"{paths[0]}: compare needs two or more runs; add another run directory or give the experiment folder "
            f"{paths[0].resolve().parent}"
        )
    return unique


def load_run(directory: Path) -> LoadedRun:
    paths = SuiteRunPaths(directory)
    read = read_record(paths.manifest, SuiteManifest)
    if read.record is None:
        raise CompareError(f"{paths.manifest}: {read.problem}")
    manifest = read.record
    if manifest.mode != "standard":
        raise CompareError(f"{paths.manifest}: mode is {manifest.mode!r}; compare reads standard-mode run directories")
    cases = []
    for case in manifest.cases:
        try:
            case_paths = paths.case(case.variant_name)
        except ExperimentError as exc:
            raise CompareError(f"{paths.manifest}: {exc}") from None
        status = classify_case(case_paths).status
        metrics = None
        if status is CaseStatus.COMPLETED:
            found = read_record(case_paths.metrics, CaseMetrics).record
            metrics = found.numbers() if found is not None else {}
        cases.append(CaseResult(case.variant_name, case.config, status, metrics))
    return LoadedRun(Path(directory), manifest, tuple(cases))


def load_runs(paths: Sequence[Path]) -> list[LoadedRun]:
    """The runs, oldest first (by the manifest's ``created_at``, then name); runs of
    different experiments are refused."""
    runs = sorted((load_run(p) for p in find_runs(paths)), key=lambda r: (r.manifest.created_at, r.name))
    names = {r.manifest.experiment_name for r in runs}
    if len(names) > 1:
        first = runs[0]
        other = next(r for r in runs if r.manifest.experiment_name != first.manifest.experiment_name)
        raise CompareError(
            f"{other.path}: a run of experiment {other.manifest.experiment_name!r}, not {first.manifest.experiment_name!r} "
            f"({first.path}); compare runs of one experiment"
        )
    return runs
