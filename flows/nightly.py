"""Prefect flow ``nightly_recovery``: recover every experiment under a results root.

    python flows/nightly.py RESULTS_ROOT [--dry-run] [--status S]... [--tier T]...
           [--judges-only | --agents-only] [-p N] [--dask-address ADDR | --dask-workers N | --slurm-workers N ...]

Scans the root for agent-evaluation experiments (``config/experiment.json``) and
standard-mode run directories (``manifest.json``), classifies each from its files and
runs the ``recover`` flow (as a subflow: its own flow run, task runs and artifacts)
for each one with work to do. A directory locked by another recovery, or one the
filters do not apply to, is skipped and listed; one that fails to recover fails the
night but not the others. The ``nightly-recovery`` deployment (``deployments/``)
runs this on a cron schedule.
"""

from __future__ import annotations

if __name__ == "__main__":
    # As a script, sys.path[0] is flows/ (its modules would shadow top-level names).
    import sys
    from pathlib import Path

    sys.path[0] = str(Path(__file__).resolve().parents[1])
    from experiment_cli.common import run_main
    from experiment_cli.nightly import main

    run_main(lambda: main(sys.argv[1:]))

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run

from experiment_infra.processes.interrupt import stop_requested
from experiment_infra.files.lock import LockHeld
from experiment_infra.recovery.outcome import RecoverySummary
from experiment_infra.recovery.nightly import NightlyRow, NightlySummary, directories, row_without_recovery
from experiment_infra.recovery.walk import RootItem, survey_root
from experiment_infra.recovery.select import RecoveryInputError
from experiment_infra.running.services import chosen_cluster
from experiment_infra.running.slurm import SlurmWorkers
from experiment_infra.reports.ui_limits import capped_lines, capped_rows
from flows.artifacts import artifact_key, label_flow_run, publish_run_markdown, show, tag_flow_run, ui_only
from flows.final_state import final_state
from flows.progress import Progress
from flows.recover import recover
from flows.stopping import cancelled_if_stopped, stoppable

NIGHTLY_TAG = "nightly"


def _flow_run_name() -> str:
    params = flow_run.parameters
    root = Path(str(params.get("results_root", "")))
    return f"nightly {root.name or root}" + (" (dry run)" if params.get("dry_run") else "")


def _recover_one(
    item: RootItem, parallelism: int | None, cluster: dict[str, Any], allow_code_change: bool = False
) -> tuple[str, str]:
    """Run the recover flow on one directory; (outcome, detail) for the summary."""
    sel = item.selection
    assert sel is not None
    state = recover(
        experiment_dir=str(item.found.directory),
        statuses=sorted(sel.statuses) if sel.statuses else None,
        tiers=sorted(sel.tiers) if sel.tiers else None,
        agents_only=sel.agents_only,
        judges_only=sel.judges_only,
        parallelism=parallelism,
        allow_code_change=allow_code_change,
        **cluster,
        return_state=True,
    )
    ui_only("the recovery's nightly tag", tag_flow_run, state.state_details.flow_run_id, [NIGHTLY_TAG])
    result = state.result(raise_on_failure=False)
    if isinstance(result, LockHeld):
        return "locked", str(result)  # taken between the survey and the recovery
    if isinstance(result, RecoverySummary):
        done = f"{result.planned - len(result.not_done)} of {result.planned} planned run(s) done"
        if not result.not_done and not result.errors:
            # Work its filters leave out does not fail the night (as for a directory with no
            # planned work), but is named: the recovery itself exits 1 for it.
            left = f"; still needing work: {result.problems()}" if result.remaining else ""
            return "recovered", done + left
        return "failed", done + "; " + result.problems()
    if isinstance(result, BaseException):
        return "failed", f"{type(result).__name__}: {result}"
    return ("recovered" if state.is_completed() else "failed"), state.message or ""


def _publish(summary: NightlySummary) -> None:
    key = artifact_key("nightly", Path(summary.results_root).name)
    rows = [
        {"directory": r.directory, "mode": r.mode, "needing_work": r.needing_work, "planned": r.planned,
         "outcome": r.outcome, "detail": r.detail}
        for r in summary.rows
    ]
    rows = capped_rows(rows, "each experiment's recovery artifacts")
    ui_only("the nightly table artifact", create_table_artifact, rows, key=f"{key}-experiments", description=summary.headline())
    lines = [f"- {summary.headline()}"] + capped_lines(
        [f"  - **{r.directory}** {r.outcome}: {r.detail}" for r in summary.rows if r.outcome != "nothing to do"], "the table artifact"
    )
    if summary.dry_run:
        lines.append("\n*Dry run: nothing written.*")
    ui_only("the nightly markdown artifact", publish_run_markdown, f"{key}-run", "Nightly recovery", summary.results_root, lines)


@flow(name="nightly_recovery", flow_run_name=_flow_run_name, validate_parameters=True)
def nightly_recovery(
    results_root: str,
    dry_run: bool = False,
    statuses: list[str] | None = None,
    tiers: list[str] | None = None,
    judges_only: bool = False,
    agents_only: bool = False,
    parallelism: int | None = None,
    dask_address: str | None = None,
    dask_workers: int | None = None,
    slurm: SlurmWorkers | None = None,
    allow_code_change: bool = False,
) -> Any:
    """Classify every experiment directory under ``results_root`` and recover those with work to do.

    A standard-mode run whose cases would rerun on code other than it last ran on is
    listed as skipped, with the reason, unless ``allow_code_change``.

    ``dry_run``: classify and list what would be recovered; write nothing. ``statuses`` and
    ``tiers`` apply to the directories they make sense for (``tiers`` skips standard-mode runs).
    """
    logger = get_run_logger()
    if parallelism is not None and parallelism < 1:
        raise RecoveryInputError(f"parallelism must be a positive integer, got {parallelism}")
    items = survey_root(
        results_root, statuses=statuses, tiers=tiers, agents_only=agents_only, judges_only=judges_only,
        allow_code_change=allow_code_change,
    )
    ui_only("the nightly run's tags", label_flow_run, tags=[NIGHTLY_TAG, "recover"])
    root = str(Path(results_root).expanduser().resolve())
    rows: list[NightlyRow] = []
    key = artifact_key("nightly", Path(root).name)
    with stoppable(), Progress(len(items), f"{key}-progress", "directories") as progress:
        for item in items:
            if stop_requested():  # Ctrl-C, SIGTERM or a cancellation: no further directory
                break
            row = row_without_recovery(item, dry_run)
            if row is None:
                where = str(item.found.directory)
                logger.info("recovering %s: %s", where, item.work)
                outcome, detail = _recover_one(
                    item, parallelism, chosen_cluster(dask_address, dask_workers, slurm), allow_code_change
                )
                row = NightlyRow(where, item.found.mode.value, item.needing_work, item.planned, outcome, detail)
            rows.append(row)
            progress.advance(failed=row.outcome == "failed")
    summary = NightlySummary(root, dry_run, tuple(rows))
    text = summary.format()
    show(text)
    _publish(summary)
    return cancelled_if_stopped(final_state(
        summary, done=summary.headline(), headline=f"{directories(len(summary.failed))} not fully recovered",
        reasons=[f"{r.directory}: {r.detail}" for r in summary.failed],
    ))
