"""Rebuild every report of a directory: an agent-evaluation experiment
(``config/experiment.json``) or a standard-mode suite run (``manifest.json``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..layout import ExperimentPaths, SuiteRunPaths
from .aggregate import ReportError, load_config
from .bundle import ReportBundle
from .experiment import build_experiment_reports
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
        load_config(Path(directory))
    else:
        load_manifest(Path(directory))
    return kind


def build_reports(directory: Path) -> ReportBundle:
    if report_kind(directory) == "agent_eval":
        return build_experiment_reports(Path(directory))
    return build_suite_reports(Path(directory))


@dataclass(frozen=True)
class Rebuilt:
    """What a rebuild did, in plain values (a helper process hands it back)."""

    written: list[Path]  # or, in a dry run, would write
    total: int  # report files of the directory, written or already current
    title: str
    artifact_markdown: str  # the summary table with the plots inlined, for the Prefect UI


def rebuild(experiment_dir: Path | str, dry_run: bool = False) -> Rebuilt:
    """``rebuild_reports`` with what its artifact shows."""
    bundle = build_reports(Path(experiment_dir))
    written = bundle.changed() if dry_run else bundle.write()
    return Rebuilt(written, len(bundle.paths), bundle.title, bundle.artifact_markdown())


def rebuild_reports(experiment_dir: Path, dry_run: bool = False) -> list[Path]:
    """Rebuild every report (JSON, markdown, PNG plots); returns the files written.

    Only files whose content changed are written (``ReportBundle.write``). With
    ``dry_run`` nothing is written and the returned list is what would be.
    """
    bundle = build_reports(Path(experiment_dir))
    return bundle.changed() if dry_run else bundle.write()
