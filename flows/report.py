"""Prefect flow: rebuild every report of an experiment (or suite run) and publish a summary.

    python flows/report.py EXPERIMENT_DIR [--dry-run]

EXPERIMENT_DIR is an agent-evaluation experiment (``config/experiment.json``) or a
standard-mode suite run directory (``manifest.json``). The flow writes the JSON,
markdown and PNG reports whose content changed (``--dry-run``: lists them, writes
nothing; a file already current keeps its bytes and its ``generated_at``) and
publishes a markdown artifact with the summary table and the plots inlined as data URIs.
"""

from __future__ import annotations

if __name__ == "__main__":
    # As a script, sys.path[0] is flows/ (its modules would shadow top-level names).
    import sys
    from pathlib import Path

    sys.path[0] = str(Path(__file__).resolve().parents[1])
    from experiment_cli.common import run_main
    from experiment_cli.report import main

    run_main(lambda: main(sys.argv[1:]))

import re
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.states import State

from experiment_infra.processes import helpers
from flows.artifacts import experiment_tag, label_flow_run, ui_only

if TYPE_CHECKING:
    from experiment_infra.reports.rebuild import TierRebuilt


def artifact_key(directory: Path) -> str:
    """Prefect keys allow lowercase letters, digits and dashes only."""
    slug = re.sub(r"[^a-z0-9]+", "-", directory.resolve().name.lower()).strip("-")
    return f"report-{slug or 'experiment'}"[:100]


def _files(n: int) -> str:
    return f"{n} file" + ("" if n == 1 else "s")


def rebuild_and_publish(
    experiment_dir: str, dry_run: bool = False, *, in_helper: bool = False, tiers_done: Sequence[TierRebuilt] = ()
) -> list[str]:
    """Rebuild the reports of ``experiment_dir`` and publish the artifact; the files written
    (or that would be). Runs inside a flow or task run: the ``report`` flow, or the
    ``reports`` task a suite run or a recovery ends with. ``in_helper``: build them in a
    helper process (``experiment_infra.processes.helpers``), off the flow's GIL: worth its start-up
    for an experiment of many runs. ``tiers_done``: tiers whose reports a ``reports T0``
    task run rebuilt already (their files are counted, not built again)."""
    from experiment_infra.reports.rebuild import rebuild  # in a helper, imported there alone

    logger = get_run_logger()
    directory = Path(experiment_dir)
    tiers_done = list(tiers_done)
    # In the helper whose plot processes are warm (helpers.prewarm(first=...)), if one is.
    done = helpers.call(rebuild, directory, dry_run, tiers_done, first=True) if in_helper else rebuild(directory, dry_run, tiers_done)
    verb = "would write" if dry_run else "wrote"
    current = done.total - len(done.written)
    logger.info("%s %d report files under %s (%d already up to date)", verb, len(done.written), directory, current)
    note = "\n\n*Dry run: nothing written.*" if dry_run else ""
    ui_only(
        "the report artifact", create_markdown_artifact,
        key=artifact_key(directory),
        markdown=done.artifact_markdown + note,
        description=f"{done.title} ({_files(len(done.written))} {'would be written' if dry_run else 'written'}, {current} up to date)",
    )
    return [str(p) for p in done.written]


def _flow_run_name() -> str:
    directory = Path(str(flow_run.parameters.get("experiment_dir", "")))
    return f"report {directory.parent.name}/{directory.name}" + (" (dry run)" if flow_run.parameters.get("dry_run") else "")


@flow(name="report", flow_run_name=_flow_run_name, log_prints=False)
def report(experiment_dir: str, dry_run: bool = False) -> list[str]:
    """Rebuild the reports of ``experiment_dir``; returns the files written (or that would be).

    Incremental: a report file whose content is already current is left alone, its
    ``generated_at`` too; a rebuild with nothing changed writes nothing. The flow run is
    named after the directory and tagged with the experiment, like run_suite and recover.
    """
    ui_only("the flow run's tags", label_flow_run, tags=[experiment_tag(Path(experiment_dir)), "report"])
    return rebuild_and_publish(experiment_dir, dry_run)


@task(name="reports", task_run_name="reports", cache_policy=NO_CACHE, persist_result=False)
def reports_task(experiment_dir: str, in_helper: bool = False, tiers_done: Sequence[TierRebuilt] = ()) -> list[str]:
    """The reports as one task run of the calling flow: every report of the experiment
    in one batch (a subflow costs several blocking server calls; a task run none), but
    for the tiers in ``tiers_done``, rebuilt by their own ``reports T0`` task runs."""
    return rebuild_and_publish(experiment_dir, in_helper=in_helper, tiers_done=tiers_done)


@task(name="tier_reports", task_run_name="reports {tier}", cache_policy=NO_CACHE, persist_result=False)
def tier_reports_task(experiment_dir: str, tier: str) -> TierRebuilt:
    """One tier's report files (its runs', subtests' and its own), in a helper process:
    a recovery rebuilds each tier it touched as soon as its work is done, beside the
    others, and the ``reports`` task run then adds the experiment's files."""
    from experiment_infra.reports.rebuild import rebuild_tier

    done = helpers.call(rebuild_tier, Path(experiment_dir), tier)
    get_run_logger().info(
        "%s: wrote %d report files (%d already up to date)", tier, len(done.written), done.total - len(done.written)
    )
    return done


def report_failures(state: State) -> list[str]:
    """The error line of a ``reports`` task run that failed (a failure loses no run)."""
    return [] if state.is_completed() else [f"reports: {state.message or state.name}"]


def rebuild_reports_step(experiment_dir: Path | str) -> list[str]:
    """The last step of a suite run or an agent evaluation: every report rebuilt in one
    task run (only files whose content changed are written) and its artifact, with the
    metrics table and plots, published; a failure is an error line."""
    return report_failures(reports_task(str(experiment_dir), return_state=True))
