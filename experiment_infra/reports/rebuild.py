"""Rebuild every report of a directory: an agent-evaluation experiment
(``config/experiment.json``) or a standard-mode suite run (``manifest.json``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..status.expected import expected_runs
from ..layout import ExperimentPaths, SuiteRunPaths
from .aggregate import ReportError, TierAggregate, load_config
from .bundle import ReportBundle
from .experiment import build_experiment_reports, build_tier_reports
from .standard import build_suite_reports, load_manifest


def report_kind(directory: Path) -> str:
    """``agent_eval`` or ``standard``; a one-line ReportError for anything else."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ReportError(f"{directory}: no such directory (expected an experiment or suite run directory)")
    if ExperimentPaths(directory).config.is_file():
        return "agent_eval"
    if SuiteRunPaths(directory).manifest.is_file():
        return "standard"
    raise ReportError(
        f"{directory}: neither an agent-evaluation experiment (no config/experiment.json) "
        "nor a standard-mode suite run (no manifest.json)"
    )


def check_directory(directory: Path) -> str:
    """``report_kind`` plus parsing its config or manifest: bad input fails here, before any work."""
    kind = report_kind(directory)
    if kind == "agent_eval":
        expected_runs(ExperimentPaths(Path(directory)), load_config(Path(directory)))  # an older layout is refused too
    else:
        load_manifest(Path(directory))
    return kind


def build_reports(directory: Path, done: Mapping[str, TierAggregate] | None = None) -> ReportBundle:
    """Every report file of ``directory`` (of an experiment's tiers in ``done``, built by
    their own batch, only the aggregates)."""
    if report_kind(directory) == "agent_eval":
        return build_experiment_reports(Path(directory), done)
    return build_suite_reports(Path(directory))


@dataclass(frozen=True)
class Rebuilt:
    """What a rebuild did, in plain values (a helper process hands it back)."""

    written: list[Path]  # or, in a dry run, would write
    total: int  # report files of the directory, written or already current
    title: str
    artifact_markdown: str  # the summary table with the plots inlined, for the Prefect UI


@dataclass(frozen=True)
class TierRebuilt:
    """What a rebuild of one tier's reports did, and the aggregates the experiment's need."""

    tier: str
    aggregate: TierAggregate
    written: list[Path]
    total: int


def rebuild_tier(experiment_dir: Path | str, tier: str) -> TierRebuilt:
    """Write the report files of one tier of an experiment whose content changed (a batch
    of a recovery: every tier's beside the others, then ``rebuild(done=...)``)."""
    aggregate, bundle = build_tier_reports(Path(experiment_dir), tier)
    return TierRebuilt(tier, aggregate, bundle.write(), len(bundle.paths))


def rebuild(experiment_dir: Path | str, dry_run: bool = False, done: Sequence[TierRebuilt] = ()) -> Rebuilt:
    """``rebuild_reports`` with what its artifact shows; the tiers in ``done`` were rebuilt
    by ``rebuild_tier`` already (their files are counted, not built again)."""
    bundle = build_reports(Path(experiment_dir), {t.tier: t.aggregate for t in done})
    written = bundle.changed() if dry_run else bundle.write()
    written = sorted([*written, *(p for t in done for p in t.written)])
    total = len(bundle.paths) + sum(t.total for t in done)
    return Rebuilt(written, total, bundle.title, bundle.artifact_markdown())


def rebuild_reports(experiment_dir: Path, dry_run: bool = False) -> list[Path]:
    """Rebuild every report (JSON, markdown, PNG plots); returns the files written.

    Only files whose content changed are written (``ReportBundle.write``). With
    ``dry_run`` nothing is written and the returned list is what would be.
    """
    bundle = build_reports(Path(experiment_dir))
    return bundle.changed() if dry_run else bundle.write()
