"""Prefect flow: rebuild every report of an experiment (or suite run) and publish a summary.

    python flows/report.py EXPERIMENT_DIR [--dry-run]

EXPERIMENT_DIR is an agent-evaluation experiment (``config/experiment.json``) or a
standard-mode suite run directory (``manifest.json``). The flow writes the JSON,
markdown and PNG reports (``--dry-run``: lists them, writes nothing) and publishes a
markdown artifact with the summary table and the plots inlined as data URIs.
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

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from experiment_infra.reports import build_reports


def artifact_key(directory: Path) -> str:
    """Prefect keys allow lowercase letters, digits and dashes only."""
    slug = re.sub(r"[^a-z0-9]+", "-", directory.resolve().name.lower()).strip("-")
    return f"report-{slug or 'experiment'}"[:100]


@flow(name="report", log_prints=False)
def report(experiment_dir: str, dry_run: bool = False) -> list[str]:
    """Rebuild all reports of ``experiment_dir``; returns the files written (or that would be)."""
    logger = get_run_logger()
    directory = Path(experiment_dir)
    bundle = build_reports(directory)
    written = bundle.paths if dry_run else bundle.write()
    verb = "would write" if dry_run else "wrote"
    logger.info("%s %d report files under %s", verb, len(written), directory)
    note = "\n\n*Dry run: nothing written.*" if dry_run else ""
    create_markdown_artifact(
        key=artifact_key(directory),
        markdown=bundle.artifact_markdown() + note,
        description=f"{bundle.title} ({len(written)} files {verb})",
    )
    return [str(p) for p in written]
