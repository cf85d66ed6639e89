"""Compare runs of one experiment: per metric, each condition in each run (over seeds),
the difference against a baseline run and a paired t-test where the seeds match.
Prefect-free; ``python flows/compare.py`` is its command line.

May import: layout, records, reports, status
"""

from collections.abc import Sequence
from pathlib import Path

from .build import Comparison, Diff, MetricTable, Row, RunColumn, build_comparison, choose_baseline
from .render import to_csv, to_json, to_markdown
from .runs import CaseResult, CompareError, LoadedRun, find_runs, load_run, load_runs

__all__ = [
    "CaseResult", "CompareError", "Comparison", "Diff", "LoadedRun", "MetricTable", "Row", "RunColumn",
    "build_comparison", "choose_baseline", "compare_runs", "find_runs", "load_run", "load_runs", "to_csv", "to_json",
    "to_markdown",
]


def compare_runs(paths: Sequence[Path | str], baseline: str | None = None, metrics: Sequence[str] = ()) -> Comparison:
    """Read the runs ``paths`` name (run directories or one experiment folder) and compare them."""
    return build_comparison(load_runs([Path(p) for p in paths]), baseline, metrics)
