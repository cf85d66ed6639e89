"""``python flows/compare.py RUN_DIR RUN_DIR... | EXPERIMENT_FOLDER``: compare runs of one
experiment, per metric and condition, against a baseline run.

The table is worked out and printed by the core alone (no Prefect is imported):
markdown on stdout, or ``--json``; ``--csv FILE`` and ``--plot FILE`` write those too.
``--publish`` also runs the ``compare`` flow, which shows the tables and the plot as
artifacts in the Prefect UI. Bad input is one ``error:`` line and exit 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from experiment_infra.files.atomic import atomic_write_bytes, atomic_write_text
from experiment_infra.compare import compare_runs, to_csv, to_json, to_markdown

from .common import BAD_INPUT, EXIT_OK, Parser, exit_code_of, report, run_flow, start_prefect


def build_parser() -> Parser:
    p = Parser(prog="flows/compare.py", description="Compare runs of one experiment, per metric, against a baseline run.")
    p.add_argument("runs", metavar="RUN_DIR", type=Path, nargs="+",
                   help="two or more run directories of one experiment, or its folder (results/<experiment>/)")
    p.add_argument("--baseline", metavar="RUN", help="the run the others are compared with (its directory name or path; default: the oldest)")
    p.add_argument("--metric", metavar="M", action="append", default=[], help="compare this metric only (repeatable; default: every metric the runs share)")
    p.add_argument("--json", action="store_true", dest="json_output", help="print one JSON document instead of markdown")
    p.add_argument("--csv", metavar="FILE", type=Path, help="also write the table as CSV (one row per metric, condition and run)")
    p.add_argument("--plot", metavar="FILE", type=Path, help="also write a PNG plot (a panel per metric)")
    p.add_argument("--publish", action="store_true", help="also publish the tables and plot as Prefect artifacts (the compare flow)")
    return p


def _check_output(option: str, path: Path | None) -> None:
    if path is not None and not path.parent.is_dir():
        raise SystemExit(report(f"{option} {path}: no directory {path.parent}; create it or name a file in an existing one"))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _check_output("--csv", args.csv)
    _check_output("--plot", args.plot)
    try:
        comparison = compare_runs(args.runs, args.baseline, args.metric)
    except BAD_INPUT as exc:
        return report(exc)
    if args.csv is not None:
        atomic_write_text(args.csv, to_csv(comparison), fsync=False)
    if args.plot is not None:
        from experiment_infra.compare.plot import comparison_plot

        atomic_write_bytes(args.plot, comparison_plot(comparison), fsync=False)
    print(to_json(comparison) if args.json_output else to_markdown(comparison), flush=True)
    if args.publish:
        start_prefect()
        from flows.compare import compare as compare_flow

        state = run_flow(
            compare_flow, run_dirs=[str(p) for p in args.runs], baseline=args.baseline, metrics=args.metric or None,
        )
        return exit_code_of(state, "compare")
    return EXIT_OK
