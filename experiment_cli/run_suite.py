"""``python flows/run_suite.py SUITE [flags]``: run a suite file as the ``run_suite`` flow.

Bad input is one ``error: ...`` line, exit 2, before Prefect is imported; ``--dry-run``
is answered by the core alone (no Prefect, no server, nothing written); a run with
a case that did not complete exits 1.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

from experiment_infra.suites.preflight import check_run, slurm_jobs_for
from experiment_infra.running.resources import check_max_failures

from .common import (
    BAD_INPUT,
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


def build_parser(*, with_suite: bool = True, prog: str | None = None) -> argparse.ArgumentParser:
    parser = Parser(prog=prog, description="Run an experiment suite as a Prefect flow.")
    if with_suite:
        parser.add_argument("suite", metavar="SUITE", help="path to a suite file (experiments/<name>/suite_<name>.py)")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the run directory and each case's command; write nothing"
    )
    parser.add_argument(
        "-p", "--parallelism", type=positive_int, default=None, metavar="N",
        help="at most N cases run at once (default: all cases)",
    )
    parser.add_argument(
        "--resume", metavar="RUN_DIR", default=None,
        help="reuse a run directory; cases already completed there are skipped",
    )
    parser.add_argument(
        "--allow-code-change", action="store_true",
        help="with --resume: run on code other than the code the run directory last ran on "
        "(recorded in its manifest as a new code version); refused otherwise",
    )
    parser.add_argument(
        "--reuse", action="store_true",
        help="do not run a case whose identity (config and code) matches a completed case of an earlier "
        "run of the experiment: link its files in instead (--dry-run says, per case, which and why)",
    )
    parser.add_argument(
        "--results-root", metavar="DIR", default="results", help="where run directories go (default: results)"
    )
    parser.add_argument(
        "--gpus", metavar="all|N|IDS", default=None,
        help="hand each case its own GPUs out of these: all (CUDA_VISIBLE_DEVICES, else nvidia-smi), "
        "a count, or ids (0,1,3); cases ask with gpus= (default: 1 each once --gpus is given). "
        "With --dask-workers N: this machine's devices, split across the N workers; with --dask-address: "
        "only all, the workers' own (dask worker ADDR --resources GPU=4)",
    )
    parser.add_argument(
        "--max-failures", metavar="N", type=failure_count, default=None,
        help="once N cases (or a fraction, 0.1) failed for good, start no new case (default: the suite's, else none)",
    )
    add_dask_options(parser, "cases")
    return parser


def failure_count(text: str) -> int | float:
    try:
        value: int | float = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a count (3) or a fraction (0.1), got {text!r}") from None
    try:
        return check_max_failures(value, "") or value
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).strip()) from None


def run_suite_command(
    suite_path: str | Path,
    *,
    dry_run: bool = False,
    parallelism: int | None = None,
    resume: str | None = None,
    results_root: str = "results",
    gpus: str | None = None,
    max_failures: int | float | None = None,
    allow_code_change: bool = False,
    reuse: bool = False,
    typed: Sequence[str] | None = None,
    **cluster: Any,
) -> int:
    """Check the input, answer a dry run or run the ``run_suite`` flow; the process exit code.
    ``cluster``: ``dask_address``, ``dask_workers`` or ``slurm`` (``common.cluster_options``).
    ``typed``: the command as the user typed it (after ``python``), for the ``--resume`` line
    printed when the run did not complete."""
    options = dict(dry_run=dry_run, parallelism=parallelism, resume=resume, results_root=str(results_root))
    scheduling = {k: v for k, v in (("gpus", gpus), ("max_failures", max_failures)) if v is not None}
    options.update(scheduling)
    if allow_code_change:
        options["allow_code_change"] = True
    if reuse:
        options["reuse"] = True
    try:
        account = check_run(str(suite_path), **options, **cluster)  # on Dask, the workers' GPUs
    except BAD_INPUT as exc:
        return report(exc)
    if dry_run:
        print(account)
        return EXIT_OK
    try:
        if cluster.get("slurm") is not None:  # GPU cases: the jobs Slurm is asked about ask for them
            cluster["slurm"] = slurm_jobs_for(str(suite_path), gpus, cluster["slurm"])
        start_prefect(**cluster)
        from flows.run_suite import run_suite

        state = run_flow(run_suite, suite_path=str(suite_path), **options, **cluster)
    except BAD_INPUT as exc:
        return report(exc)
    code = exit_code_of(state)
    result = state.result(raise_on_failure=False)
    run_dir = getattr(result, "run_dir", None)
    if code != EXIT_OK and run_dir and typed and getattr(result, "resumable", True):
        print(f"resume with: {resume_command(typed, run_dir)}", file=sys.stderr)
    return code


def resume_command(typed: Sequence[str], run_dir: str) -> str:
    """``python <typed, without any --resume> --resume RUN_DIR``, ready to paste (paths under
    the working directory relative to it)."""
    words, skip = [], False
    for word in typed:
        if skip:
            skip = False
        elif word == "--resume":
            skip = True
        elif not word.startswith("--resume="):
            words.append(_short(word))
    return shlex.join(["python", *words, "--resume", _short(run_dir)])


def _short(word: str) -> str:
    """An absolute path under the working directory, relative to it; anything else as it is."""
    if not os.path.isabs(word):
        return word
    where = os.path.relpath(word)
    return word if where.startswith("..") else where


def run_parsed(args: argparse.Namespace, suite_path: str | Path, typed: Sequence[str] | None = None) -> int:
    try:
        cluster = cluster_options(args)
    except BAD_INPUT as exc:
        return report(exc)
    return run_suite_command(
        suite_path, dry_run=args.dry_run, parallelism=args.parallelism, resume=args.resume,
        results_root=args.results_root, gpus=args.gpus, max_failures=args.max_failures,
        allow_code_change=args.allow_code_change, reuse=args.reuse, typed=typed, **cluster,
    )


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """``python flows/run_suite.py SUITE [--dry-run] [-p N] [--resume RUN_DIR] [--results-root DIR]``."""
    words = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(prog=prog).parse_args(words)
    script = sys.argv[0] if os.path.basename(sys.argv[0]) == "run_suite.py" else prog or "flows/run_suite.py"
    return run_parsed(args, args.suite, typed=[script, *words])
