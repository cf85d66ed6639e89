"""Experiment reports: aggregates, best tier and cost-of-pass, markdown and plots.

Prefect-free. ``rebuild_reports(directory, dry_run=False)`` rebuilds every report of
an agent-evaluation experiment (or a standard-mode suite run) from its run files.
"""

from .aggregate import (
    TIE_THRESHOLD,
    Aggregates,
    ReportError,
    aggregate_experiment,
    cost_of_pass,
    experiment_result,
    frontier,
    select_best,
    subtest_result,
    tier_result,
)
from .bundle import ReportBundle
from .rebuild import build_reports, check_directory, rebuild_reports, report_kind

__all__ = [
    "TIE_THRESHOLD",
    "Aggregates",
    "ReportBundle",
    "ReportError",
    "aggregate_experiment",
    "build_reports",
    "check_directory",
    "cost_of_pass",
    "experiment_result",
    "frontier",
    "rebuild_reports",
    "report_kind",
    "select_best",
    "subtest_result",
    "tier_result",
]
