"""``python flows/nightly.py RESULTS_ROOT [flags]``: recover every experiment under a results root.

``--dry-run`` classifies and lists from the files alone (no Prefect); a real night
runs the ``nightly_recovery`` flow. Exit 0 when every directory with work was
recovered, 1 when one was not, 2 for bad input.
"""

from __future__ import annotations

import argparse
from typing import Sequence

from experiment_infra.recovery.nightly import dry_run_summary
from experiment_infra.recovery.walk import check_root_filters, results_root_dir, survey_root

from .common import (
    BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    Parser,
    add_dask_options,
    cluster_options,
    exit_code_of,
    positive_int,
    report,
    run_flow,
    start_prefect,
)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="flows/nightly.py", description="Recover every experiment directory under a results root.")
    p.add_argument("results_root", metavar="RESULTS_ROOT", help="directory holding experiment and run directories")
    p.add_argument("--dry-run", action="store_true", help="classify and list what would be recovered; write nothing")
    p.add_argument("--status", action="append", dest="statuses", metavar="S", help="only runs with this status (repeatable)")
    p.add_argument("--tier", action="append", dest="tiers", metavar="T", help="only this tier (repeatable)")
    only = p.add_mutually_exclusive_group()
    only.add_argument("--agents-only", action="store_true", help="agent reruns and regeneration only")
    only.add_argument("--judges-only", action="store_true", help="judge reruns only")
    p.add_argument("-p", "--parallelism", type=positive_int, metavar="N", help="at most N tasks at once per experiment")
    p.add_argument(
        "--allow-code-change", action="store_true",
        help="rerun standard-mode runs' cases on code other than they last ran on (skipped otherwise)",
    )
    add_dask_options(p, "recoveries' tasks")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    filters = dict(
        statuses=args.statuses, tiers=args.tiers, agents_only=args.agents_only, judges_only=args.judges_only,
        allow_code_change=args.allow_code_change,
    )
    try:
        cluster = cluster_options(args)
        results_root_dir(args.results_root)  # a missing root fails before anything starts
        check_root_filters(args.statuses)
        if args.dry_run:
            summary = dry_run_summary(args.results_root, survey_root(args.results_root, **filters))
            print(summary.format())
            return EXIT_OK if summary.ok else EXIT_FAILED
        start_prefect(**cluster)
        from flows.nightly import nightly_recovery

        state = run_flow(
            nightly_recovery, results_root=args.results_root, dry_run=False, **filters,
            parallelism=args.parallelism, **cluster,
        )
    except BAD_INPUT as exc:
        return report(exc)
    return exit_code_of(state, "nightly recovery")
