"""Experiment reports: aggregates, best tier and cost-of-pass, markdown and plots.

Prefect-free. ``rebuild_reports(directory, dry_run=False)`` rebuilds every report of
an agent-evaluation experiment (or a standard-mode suite run) from its run files.

Beside them, ``stats`` (small-sample statistics, shared with ``compare``), ``grading``
(ProjectScylla's letter grades) and ``ui_limits`` (how much a Prefect UI artifact may hold).

May import: files, layout, processes, provenance, records, running, status
"""

from __future__ import annotations

# Not imported from typing, which a dry run would pay for; static checkers treat it the same.
TYPE_CHECKING = False

from ..lazy import lazy_exports

# Public name -> the module of this package that defines it, imported on first use: a
# process that needs one module of the package (a dry run: ``grading``) does not pay for all.
_WHERE = {
    "TIE_THRESHOLD": "aggregate",
    "Aggregates": "aggregate",
    "ReportError": "aggregate",
    "aggregate_experiment": "aggregate",
    "cost_of_pass": "aggregate",
    "experiment_result": "aggregate",
    "frontier": "aggregate",
    "select_best": "aggregate",
    "subtest_result": "aggregate",
    "tier_result": "aggregate",
    "ReportBundle": "bundle",
    "build_reports": "rebuild",
    "check_directory": "rebuild",
    "rebuild_reports": "rebuild",
    "report_kind": "rebuild",
}

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

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())


if TYPE_CHECKING:  # static checkers and IDEs see the real imports
    from .aggregate import (TIE_THRESHOLD, Aggregates, ReportError, aggregate_experiment, cost_of_pass, experiment_result, frontier, select_best, subtest_result, tier_result)
    from .bundle import ReportBundle
    from .rebuild import build_reports, check_directory, rebuild_reports, report_kind
