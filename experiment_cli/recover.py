"""The ``recover`` command line, Prefect-free until a real recovery starts.

    python flows/recover.py EXPERIMENT_DIR [--dry-run] [--status S]... [--tier T]... [--subtest S]...
           [--runs 1,3,5] [--agents-only | --judges-only] [--judge-model M] [-p N] [--json] [-v]

``--dry-run`` and ``--json`` survey the files and print; they never import Prefect
(importing it alone takes seconds and creates its home directory), so they are fast
and write nothing. A real recovery is checked here first (bad input is one
``error: ...`` line, exit 2; a held lock exits 3), then runs the ``recover`` flow,
unless it plans nothing: then nothing would execute, and it answers as a dry run does.
Exit 0 when every selected run is complete afterwards (read from the files), 1 otherwise.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import TYPE_CHECKING, Sequence

from experiment_infra.errors import EXIT_FAILED, EXIT_OK
from experiment_infra.processes.interrupt import INTERRUPTED_EXIT_CODE
from experiment_infra.processes.process import drop_stdout
from experiment_infra.recovery import DEFAULT_PARALLELISM

# The recovery core (models, status rules) is imported where it is used: a dry run starts
# checking its cached runs first (status_prefetch), and the imports overlap those checks.
if TYPE_CHECKING:
    from experiment_infra.recovery.select import Selection
    from experiment_infra.recovery.survey import Survey

from .common import (
    BAD_INPUT, Parser, add_dask_options, cluster_options, load_temporary_server, positive_int, report, run_flow,
    start_prefect,
)


def _wants_json(argv: Sequence[str]) -> bool:
    """``--json`` (or an abbreviation argparse accepts) before any ``--``: errors too are JSON then."""
    for arg in argv:
        if arg == "--":
            return False
        if len(arg) >= 4 and "--json".startswith(arg):
            return True
    return False


def build_parser(*, json_errors: bool = False) -> Parser:
    p = Parser(
        prog="flows/recover.py",
        description="Classify every run of an experiment from its files; rerun, re-judge or regenerate only what is needed.",
    )
    p.json_errors = json_errors
    p.add_argument("experiment_dir", metavar="EXPERIMENT_DIR", help="agent-evaluation experiment or standard-mode run directory")
    p.add_argument("--dry-run", action="store_true", help="print the classification and the actions; write nothing")
    p.add_argument("--status", action="append", dest="statuses", metavar="S", help="only runs with this run or judge status (repeatable)")
    p.add_argument("--tier", action="append", dest="tiers", metavar="T", help="only this tier (repeatable)")
    p.add_argument("--subtest", action="append", dest="subtests", metavar="S", help="only this subtest (repeatable)")
    p.add_argument("--runs", metavar="1,3,5", help="only these run numbers")
    only = p.add_mutually_exclusive_group()
    only.add_argument("--agents-only", action="store_true", help="agent reruns and regeneration only; no judge reruns")
    only.add_argument("--judges-only", action="store_true", help="judge reruns only; no agent reruns, no regeneration")
    p.add_argument("--judge-model", metavar="M", help="judges rerun with model M instead of the configured one (recorded)")
    p.add_argument(
        "-p", "--parallelism", type=positive_int, metavar="N", help=f"at most N tasks at once (default: the experiment's parallel_subtests, else {DEFAULT_PARALLELISM})"
    )
    p.add_argument(
        "--allow-code-change", action="store_true",
        help="standard-mode run directory: rerun its cases on code other than the code it last ran on "
        "(recorded in its manifest as a new code version); refused otherwise",
    )
    p.add_argument("--json", action="store_true", dest="json_output", help="print the classification as one JSON document; run nothing")
    p.add_argument("-v", "--verbose", action="store_true", help="list every selected run, not only those needing work")
    add_dask_options(p, "reruns")
    return p


def _selection(args: argparse.Namespace) -> Selection:
    from experiment_infra.recovery.outcome import build_selection

    return build_selection(
        args.statuses, args.tiers, args.subtests, args.runs, args.agents_only, args.judges_only, args.judge_model
    )


def _survey_only(args: argparse.Namespace) -> int:
    """``--dry-run`` / ``--json``: survey and print, nothing else."""
    from contextlib import nullcontext

    from experiment_infra.status.prefetch import prefetch

    # Every cached run is checked early only for a survey of every run (a status filter
    # still classifies them all); a tier, subtest or run filter reads a few directly.
    narrowed = args.tiers or args.subtests or args.runs
    with nullcontext() if narrowed else prefetch(args.experiment_dir) as early:
        from experiment_infra.recovery.render import render_json, render_text
        from experiment_infra.recovery.survey import survey_ahead

        text = survey_ahead(
            args.experiment_dir, _selection(args), early,
            render_json if args.json_output else lambda s: render_text(s, verbose=args.verbose),
        )
    print(text)
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    cluster = cluster_options(args)  # a Slurm setting without --slurm-workers is refused, dry run or not
    if args.dry_run or args.json_output:
        return _survey_only(args)
    from experiment_infra.recovery.outcome import RecoverySummary, check_recovery
    from experiment_infra.recovery.survey import ExperimentSurvey

    before = check_recovery(args.experiment_dir, _selection(args), args.parallelism, args.allow_code_change)
    if not before.planned:
        # Nothing to execute, so no Prefect: no import, no server, no flow run. The survey
        # is the whole answer (check_recovery saved its cache, as the flow would have).
        return _nothing_planned(before, args.verbose)
    api_url = start_prefect(**cluster)
    import flows.recover as flows_recover
    from experiment_infra.processes import helpers
    from experiment_infra.recovery.batch import HELPER_WARMUP, PLOTS_WARMUP
    from flows.lost_server import lost_server_call, quiet_lost_server_tracebacks

    quiet_lost_server_tracebacks()
    if isinstance(before, ExperimentSurvey):
        # The flow's pure-JSON work runs in helper processes: started now, after Prefect's
        # imports, they load while its temporary server starts (seconds with a core to spare).
        if api_url is None:  # Prefect starts the server itself: its module first, as it would
            load_temporary_server()
        helpers.prewarm(HELPER_WARMUP, first=PLOTS_WARMUP)
    state = None
    try:
        state = run_flow(  # a temporary server that never starts: one error line, exit 2
            flows_recover.recover, experiment_dir=args.experiment_dir, statuses=args.statuses, tiers=args.tiers, subtests=args.subtests,
            runs=args.runs, agents_only=args.agents_only, judges_only=args.judges_only, judge_model=args.judge_model,
            parallelism=args.parallelism, verbose=args.verbose, allow_code_change=args.allow_code_change, **cluster,
        )
        result = state.result(raise_on_failure=False)
    except Exception as exc:
        if not lost_server_call(exc):
            raise
        result = exc
    stopped = state is not None and state.is_cancelled()
    if stopped:
        print(f"recovery stopped: {state.message}", file=sys.stderr)
    if stopped or (isinstance(result, RecoverySummary) and result.exit_code != EXIT_OK):
        # What to type next: the same recovery picks up what is still not done.
        print(f"resume with: {shlex.join(['python', sys.argv[0], *sys.argv[1:]])}", file=sys.stderr)
    if stopped:
        return INTERRUPTED_EXIT_CODE
    if isinstance(result, RecoverySummary):
        return result.exit_code
    if isinstance(result, BaseException):
        if lost_server_call(result):
            return flows_recover.exit_code_from_files(before, result)  # the files decide, not a lost HTTP call
        raise result
    return EXIT_FAILED if state.is_failed() else EXIT_OK


def _nothing_planned(before: Survey, verbose: bool) -> int:
    """A recovery with no work it may do: the survey, and when selected runs still need
    work that the filters or switches leave out (or a tier that never started), the
    summary saying so, exit 1; else exit 0."""
    from experiment_infra.recovery.outcome import summarize
    from experiment_infra.recovery.render import render_text

    print(render_text(before, verbose=verbose))
    summary = summarize(before, before)
    if not summary.ok:
        print(summary.format())
    return summary.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """Exit codes as docs/recovery.md says; with ``--json`` every outcome is one JSON document on
    stdout, an error being ``{"error": "...", "exit_code": N}``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = _wants_json(argv)
    try:
        try:
            args = build_parser(json_errors=as_json).parse_args(argv)
        except SystemExit as exc:  # the refusal is reported already (text or JSON)
            return int(exc.code or 0)
        try:
            return run(args)
        except BrokenPipeError:
            raise
        except Exception as exc:
            if isinstance(exc, BAD_INPUT):  # LockHeld included: it carries exit code 3
                return report(exc, as_json=as_json)
            if as_json:
                return report(f"the survey failed: {type(exc).__name__}: {exc}", EXIT_FAILED, as_json=True)
            if args.dry_run:
                raise
            return report(f"the recovery failed: {type(exc).__name__}: {exc}", EXIT_FAILED)
    except BrokenPipeError:
        drop_stdout()
        return EXIT_OK
