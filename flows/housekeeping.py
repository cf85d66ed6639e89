"""What a flow does to a directory it opens again for writing, before it writes: sweep the
temp files killed writers left there (``experiment_infra.files.sweep``), and say so in its log."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger

from collections.abc import Iterable

from experiment_infra.layout import AgentRunPaths, ExperimentPaths
from experiment_infra.files.sweep import sweep_experiment, sweep_stale_temps


def report_swept(directory: Path, runs: Iterable[AgentRunPaths] | None = None) -> list[Path]:
    """Sweep ``directory`` (its lock held): whole, or for an experiment only where ``runs``
    are written (``sweep_experiment``); one log line names what was removed."""
    removed = sweep_stale_temps(directory) if runs is None else sweep_experiment(ExperimentPaths(directory), runs)
    if removed:
        shown = ", ".join(str(p.relative_to(directory)) for p in removed[:5])
        more = f" and {len(removed) - 5} more" if len(removed) > 5 else ""
        get_run_logger().info(
            "removed %d temp file(s) left by writers killed mid-write: %s%s", len(removed), shown, more
        )
    return removed
