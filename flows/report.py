"""Prefect flow: rebuild every report of an experiment (or suite run) and publish a summary.

    python flows/report.py EXPERIMENT_DIR [--dry-run]

EXPERIMENT_DIR is an agent-evaluation experiment (``config/experiment.json``) or a
standard-mode suite run directory (``manifest.json``). The flow writes the JSON,
markdown and PNG reports whose content changed (``--dry-run``: lists them, writes
nothing; a file already current keeps its bytes and its ``generated_at``) and
publishes a markdown artifact with the summary table and the plots inlined as data URIs.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

if __name__ == "__main__":
    from flows.client_retries import use_generous_client_retries

    use_generous_client_retries()  # before Prefect is imported

from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.artifacts import create_markdown_artifact  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from experiment_infra.layout import UnsafeNameError  # noqa: E402
from experiment_infra.records import RecordError  # noqa: E402
from experiment_infra.reports import ReportError, build_reports, check_directory  # noqa: E402
from experiment_infra.services import ServiceError  # noqa: E402
from flows.artifacts import ui_only  # noqa: E402

BAD_INPUT = (ReportError, RecordError, UnsafeNameError, ServiceError)


def artifact_key(directory: Path) -> str:
    """Prefect keys allow lowercase letters, digits and dashes only."""
    slug = re.sub(r"[^a-z0-9]+", "-", directory.resolve().name.lower()).strip("-")
    return f"report-{slug or 'experiment'}"[:100]


def rebuild_and_publish(experiment_dir: str, dry_run: bool = False) -> list[str]:
    """Rebuild the reports of ``experiment_dir`` and publish the artifact; the files written
    (or that would be). Runs inside a flow or task run: the ``report`` flow, or the
    ``reports`` task a recovery ends with."""
    logger = get_run_logger()
    directory = Path(experiment_dir)
    bundle = build_reports(directory)
    written = bundle.changed() if dry_run else bundle.write()
    verb = "would write" if dry_run else "wrote"
    current = len(bundle.paths) - len(written)
    logger.info("%s %d report files under %s (%d already up to date)", verb, len(written), directory, current)
    note = "\n\n*Dry run: nothing written.*" if dry_run else ""
    ui_only(
        "the report artifact", create_markdown_artifact,
        key=artifact_key(directory),
        markdown=bundle.artifact_markdown() + note,
        description=f"{bundle.title} ({len(written)} files {verb}, {current} up to date)",
    )
    return [str(p) for p in written]


@flow(name="report", log_prints=False)
def report(experiment_dir: str, dry_run: bool = False) -> list[str]:
    """Rebuild the reports of ``experiment_dir``; returns the files written (or that would be).

    Incremental: a report file whose content is already current is left alone, its
    ``generated_at`` too; a rebuild with nothing changed writes nothing.
    """
    return rebuild_and_publish(experiment_dir, dry_run)


@task(name="reports", task_run_name="reports", cache_policy=NO_CACHE, persist_result=False)
def reports_task(experiment_dir: str) -> list[str]:
    """The reports as one task run of the calling flow: every report of the experiment
    in one batch (a subflow costs several blocking server calls; a task run none)."""
    return rebuild_and_publish(experiment_dir)


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {message} (usage: python flows/report.py EXPERIMENT_DIR [--dry-run])\n")


def main(argv: list[str] | None = None) -> int:
    parser = _OneLineParser(prog="flows/report.py", description=__doc__.splitlines()[0])
    parser.add_argument("experiment_dir", metavar="EXPERIMENT_DIR", type=Path)
    parser.add_argument("--dry-run", action="store_true", help="list the files that would be written; write nothing")
    args = parser.parse_args(argv)
    try:
        check_directory(args.experiment_dir)  # bad input fails before a Prefect server starts
        from flows.api_check import check_api

        check_api()
        written = report(str(args.experiment_dir), dry_run=args.dry_run)
    except BAD_INPUT as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    print(f"{'would write' if args.dry_run else 'wrote'} {len(written)} files", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
