"""The runs a comparison reads: run directories named on the command line, or every run
directory of an experiment folder (``results/<experiment>/``), each with its manifest,
the status of each case and the metrics of each completed one.

An agent-evaluation experiment directory (``config/experiment.json``) is a run too: each
expected run of a subtest is a case whose condition is its tier and subtest and whose
"seed" is its run number (runs are matched by number), with metrics ``score`` (the
consensus), ``pass_rate`` (1 or 0 a run: its mean is the pass rate) and ``cost_usd``;
the comparison adds ``cost_of_pass`` (mean cost / pass rate, per condition).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ExperimentError
from ..layout import DIRTY_SUFFIX, ExperimentPaths, SuiteRunPaths
from ..records import AgentEvalManifest, CaseMetrics, GitProvenance, SuiteManifest, read_record
from ..status.rules import CaseStatus, classify_case

__all__ = ["CaseResult", "CompareError", "LoadedRun", "find_runs", "load_run", "load_runs"]


class CompareError(ExperimentError, ValueError):
    """Input ``compare`` cannot work with (one ``error:`` line, exit 2)."""


@dataclass(frozen=True)
class CaseResult:
    variant: str
    config: dict[str, Any]
    status: CaseStatus
    metrics: dict[str, float] | None  # a completed case's finite numbers; None otherwise


UNKNOWN_GIT = GitProvenance(sha="unknown", short="unknown")  # a foreign experiment records none


@dataclass(frozen=True)
class LoadedRun:
    path: Path
    experiment: str
    mode: str
    created_at: str
    git: GitProvenance
    cases: tuple[CaseResult, ...]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def commit(self) -> str:
        return self.git.short + (DIRTY_SUFFIX if self.git.dirty else "")

    def metric_names(self) -> set[str]:
        return {m for c in self.cases if c.metrics for m in c.metrics}


def _is_run(directory: Path) -> bool:
    return SuiteRunPaths(directory).is_run_dir() or ExperimentPaths(directory).config.is_file()


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
            raise CompareError(
                f"{p}: not a run directory (no {SuiteRunPaths(p).manifest.name}, no config/experiment.json); "
                "give a suite's run directory or an agent-evaluation experiment"
            )
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
    if ExperimentPaths(directory).config.is_file():
        return _load_agent_eval(directory)
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
    return LoadedRun(Path(directory), manifest.experiment_name, manifest.mode, manifest.created_at, manifest.git, tuple(cases))


def _load_agent_eval(directory: Path) -> LoadedRun:
    from ..reports.aggregate import aggregate_experiment  # an agent evaluation's own rules of what counts

    try:
        agg = aggregate_experiment(directory)
    except ExperimentError as exc:
        raise CompareError(str(exc)) from None
    ours = read_record(agg.paths.manifest, AgentEvalManifest).record
    cases = []
    for tier, t in agg.result.tier_results.items():
        for subtest, s in t.subtest_results.items():
            condition = {"tier": tier, "subtest": subtest}
            for run in s.runs:
                metrics = {"score": run.judge_score, "pass_rate": 1.0 if run.judge_passed else 0.0, "cost_usd": run.cost_usd}
                cases.append(CaseResult(f"{tier}/{subtest}/run_{run.run_number:02d}",
                                        {**condition, "seed": run.run_number}, CaseStatus.COMPLETED, metrics))
            for m in s.missing_runs:
                cases.append(CaseResult(f"{tier}/{subtest}/run_{m.run_number:02d}",
                                        {**condition, "seed": m.run_number}, CaseStatus.MISSING, None))
    created = ours.created_at if ours else (agg.result.started_at or "")
    return LoadedRun(Path(directory), agg.config.experiment_id, "agent_eval", str(created),
                     ours.git if ours else UNKNOWN_GIT, tuple(cases))


def load_runs(paths: Sequence[Path]) -> list[LoadedRun]:
    """The runs, oldest first (by the manifest's ``created_at``, then name); runs of
    different experiments are refused."""
    runs = sorted((load_run(p) for p in find_runs(paths)), key=lambda r: (r.created_at, r.name))
    first = runs[0]
    for other in runs[1:]:
        if (other.experiment, other.mode) != (first.experiment, first.mode):
            raise CompareError(
                f"{other.path}: a run of experiment {other.experiment!r} ({other.mode}), not {first.experiment!r} "
                f"({first.mode}, {first.path}); compare runs of one experiment"
            )
    return runs
