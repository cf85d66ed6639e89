"""``python flows/report.py EXPERIMENT_DIR [--dry-run]``: rebuild every report of an experiment.

``--dry-run`` lists the files that would be written, from the core alone (no Prefect);
otherwise the ``report`` flow writes them and publishes its artifact. The files are
printed one a line on stdout, the count on stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from experiment_infra.reports import build_reports, check_directory

from .common import BAD_INPUT, EXIT_OK, Parser, exit_code_of, report, run_flow, start_prefect


def build_parser() -> Parser:
    parser = Parser(prog="flows/report.py", description="Rebuild every report of an experiment (or suite run) directory.")
    parser.add_argument("experiment_dir", metavar="EXPERIMENT_DIR", type=Path)
    parser.add_argument("--dry-run", action="store_true", help="list the files that would be written; write nothing")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_directory(args.experiment_dir)  # bad input fails before a Prefect server starts
        if args.dry_run:
            written = [str(p) for p in build_reports(args.experiment_dir).paths]
        else:
            start_prefect()
            from flows.report import report as report_flow

            state = run_flow(report_flow, experiment_dir=str(args.experiment_dir))
            code = exit_code_of(state, "report")
            if code != EXIT_OK:
                return code
            written = state.result()
    except BAD_INPUT as exc:
        return report(exc)
    for path in written:
        print(path)
    print(f"{'would write' if args.dry_run else 'wrote'} {len(written)} files", file=sys.stderr)
    return EXIT_OK
