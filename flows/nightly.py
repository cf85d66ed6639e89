"""Prefect flow ``nightly_recovery``: recover every experiment under a results root.

    python flows/nightly.py RESULTS_ROOT [--dry-run] [--status S]... [--tier T]...
           [--judges-only | --agents-only] [-p N] [--dask-address ADDR | --dask-workers N]

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
    from flows.client_retries import use_generous_client_retries

    use_generous_client_retries()  # before anything imports Prefect
    from flows.nightly import main

    sys.exit(main(sys.argv[1:]))

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Sequence

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run
from prefect.states import Completed, Failed

from experiment_infra.cli import add_dask_options, positive_int
from experiment_infra.lock import LockHeld
from experiment_infra.records import RecordError
from experiment_infra.recovery_cli import RecoverySummary
from experiment_infra.recovery_scan import RootItem, check_root_filters, scan_results_root, survey_root
from experiment_infra.recovery_select import RecoveryInputError
from experiment_infra.services import ServiceError
from flows.artifacts import artifact_key, label_flow_run, publish_run_markdown, show, tag_flow_run, ui_only
from flows.recover import recover

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
BAD_INPUT = (RecoveryInputError, RecordError, ServiceError)
NIGHTLY_TAG = "nightly"


def _dirs(n: int) -> str:
    return f"{n} experiment {'directory' if n == 1 else 'directories'}"


@dataclass(frozen=True)
class NightlyRow:
    directory: str
    mode: str
    needing_work: int
    planned: int
    outcome: str  # nothing to do | would recover | recovered | failed | skipped | locked
    detail: str


@dataclass(frozen=True)
class NightlySummary:
    results_root: str
    dry_run: bool
    rows: tuple[NightlyRow, ...]

    @property
    def failed(self) -> list[NightlyRow]:
        return [r for r in self.rows if r.outcome == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def with_work(self) -> list[NightlyRow]:
        return [r for r in self.rows if r.planned and r.outcome not in ("skipped", "locked")]

    def headline(self) -> str:
        if not self.rows:
            return f"nothing to do: no experiment directories under {self.results_root}"
        if not self.with_work:
            skipped = sum(1 for r in self.rows if r.outcome in ("skipped", "locked"))
            extra = f" ({skipped} skipped)" if skipped else ""
            return f"nothing to do: {_dirs(len(self.rows))} under {self.results_root}, none needs recovery{extra}"
        counts: dict[str, int] = {}
        for r in self.rows:
            counts[r.outcome] = counts.get(r.outcome, 0) + 1
        return f"{self.results_root}: {_dirs(len(self.rows))}: " + ", ".join(
            f"{n} {k}" for k, n in sorted(counts.items())
        )

    def format(self) -> str:
        lines = [self.headline() + (" (dry run: nothing written)" if self.dry_run else "")]
        for r in self.rows:
            lines.append(f"  {r.outcome:<14} {r.mode:<10} {r.directory}  {r.detail}")
        return "\n".join(lines)


def _flow_run_name() -> str:
    params = flow_run.parameters
    root = Path(str(params.get("results_root", "")))
    return f"nightly {root.name or root}" + (" (dry run)" if params.get("dry_run") else "")


def _recover_one(item: RootItem, parallelism: int | None, dask_address: str | None, dask_workers: int | None) -> tuple[str, str]:
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
        dask_address=dask_address,
        dask_workers=dask_workers,
        return_state=True,
    )
    ui_only("the recovery's nightly tag", tag_flow_run, state.state_details.flow_run_id, [NIGHTLY_TAG])
    result = state.result(raise_on_failure=False)
    if isinstance(result, LockHeld):
        return "locked", str(result)  # taken between the survey and the recovery
    if isinstance(result, RecoverySummary):
        done = f"{result.planned - len(result.not_done)} of {result.planned} planned run(s) done"
        if result.ok:
            return "recovered", done
        return "failed", done + "; " + "; ".join(f"{label}: {why}" for label, why in result.not_done[:5])
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
    ui_only("the nightly table artifact", create_table_artifact, rows, key=f"{key}-experiments", description=summary.headline())
    lines = [f"- {summary.headline()}"] + [f"  - **{r.directory}** {r.outcome}: {r.detail}" for r in summary.rows if r.outcome != "nothing to do"]
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
) -> Any:
    """Classify every experiment directory under ``results_root`` and recover those with work to do.

    ``dry_run``: classify and list what would be recovered; write nothing. ``statuses`` and
    ``tiers`` apply to the directories they make sense for (``tiers`` skips standard-mode runs).
    """
    logger = get_run_logger()
    if parallelism is not None and parallelism < 1:
        raise RecoveryInputError(f"parallelism must be a positive integer, got {parallelism}")
    items = survey_root(results_root, statuses=statuses, tiers=tiers, agents_only=agents_only, judges_only=judges_only)
    ui_only("the nightly run's tags", label_flow_run, tags=[NIGHTLY_TAG, "recover"])
    root = str(Path(results_root).expanduser().resolve())
    rows: list[NightlyRow] = []
    for item in items:
        where = str(item.found.directory)
        base = dict(directory=where, mode=item.found.mode.value, needing_work=item.needing_work, planned=item.planned)
        if item.skipped:
            rows.append(NightlyRow(**base, outcome="locked" if item.locked else "skipped", detail=item.skipped))
        elif not item.has_work:
            detail = f"{item.needing_work} run(s) need work the filters leave out" if item.needing_work else "complete"
            rows.append(NightlyRow(**base, outcome="nothing to do", detail=detail))
        elif dry_run:
            rows.append(NightlyRow(**base, outcome="would recover", detail=item.work))
        else:
            logger.info("recovering %s: %s", where, item.work)
            outcome, detail = _recover_one(item, parallelism, dask_address, dask_workers)
            rows.append(NightlyRow(**base, outcome=outcome, detail=detail))
    summary = NightlySummary(root, dry_run, tuple(rows))
    text = summary.format()
    show(text)
    _publish(summary)
    if not summary.ok:
        return Failed(message=f"{_dirs(len(summary.failed))} not fully recovered", data=summary)
    return Completed(message=summary.headline(), data=summary)


# ------------------------------------------------------------------ command line


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="flows/nightly.py", description="Recover every experiment directory under a results root.")
    p.add_argument("results_root", metavar="RESULTS_ROOT", help="directory holding experiment and run directories")
    p.add_argument("--dry-run", action="store_true", help="classify and list what would be recovered; write nothing")
    p.add_argument("--status", action="append", dest="statuses", metavar="S", help="only runs with this status (repeatable)")
    p.add_argument("--tier", action="append", dest="tiers", metavar="T", help="only this tier (repeatable)")
    only = p.add_mutually_exclusive_group()
    only.add_argument("--agents-only", action="store_true", help="agent reruns and regeneration only")
    only.add_argument("--judges-only", action="store_true", help="judge reruns only")
    p.add_argument("-p", "--parallelism", type=positive_int, metavar="N", help="at most N tasks at once per experiment")
    add_dask_options(p, "recoveries' tasks")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from flows.api_check import check_api
    from flows.task_runners import check_dask

    args = build_parser().parse_args(argv)
    try:
        scan_results_root(args.results_root)  # a missing root fails before anything starts
        check_root_filters(args.statuses)
        check_api()
        check_dask(args.dask_address, args.dask_workers)
        state = nightly_recovery(
            results_root=args.results_root, dry_run=args.dry_run, statuses=args.statuses, tiers=args.tiers,
            judges_only=args.judges_only, agents_only=args.agents_only, parallelism=args.parallelism,
            dask_address=args.dask_address, dask_workers=args.dask_workers, return_state=True,
        )
    except BAD_INPUT as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    result = state.result(raise_on_failure=False)
    if isinstance(result, BAD_INPUT):
        print(f"error: {result}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if isinstance(result, BaseException):
        print(f"error: the nightly recovery failed: {type(result).__name__}: {result}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK if isinstance(result, NightlySummary) and result.ok else EXIT_FAILED
