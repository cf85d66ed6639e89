"""The ``recover`` command line, Prefect-free until a real recovery starts.

    python flows/recover.py EXPERIMENT_DIR [--dry-run] [--status S]... [--tier T]... [--subtest S]...
           [--runs 1,3,5] [--agents-only | --judges-only] [--judge-model M] [-p N] [--json] [-v]

``--dry-run`` and ``--json`` survey the files and print; they never import Prefect
(importing it alone takes seconds and creates its home directory), so they are fast
and write nothing. A real recovery is checked here first (bad input is one
``error: ...`` line, exit 2; a held lock exits 3), then runs the ``recover`` flow.
Exit 0 when every selected run is complete afterwards (read from the files), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, Sequence

from .agent_eval import AgentEvalError, load_spec
from .atomic import unwritable_reason
from .lock import LockHeld, check_lock
from .records import RecordError
from .services import ServiceError
from .recovery_plan import ExperimentSurvey, RecoveryInputError, Selection, SuiteRunSurvey, survey
from .recovery_select import Mode
from .recovery_render import render_json, render_text

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_LOCKED = 0, 1, 2, 3
DEFAULT_PARALLELISM = 8
BAD_INPUT: tuple[type[Exception], ...] = (RecoveryInputError, AgentEvalError, RecordError, ServiceError)


@dataclass(frozen=True)
class RecoverySummary:
    """What a recovery did, read back from the files afterwards (the flow's result)."""

    directory: str
    mode: str
    dry_run: bool = False
    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)
    planned: int = 0
    not_done: tuple[tuple[str, str], ...] = ()  # (run, why) of planned work that did not succeed
    remaining: tuple[tuple[str, str, str], ...] = ()  # (run, status, reason) still needing work
    notes: tuple[str, ...] = ()
    missing: tuple[tuple[str, str], ...] = ()  # (tier, why) of selected tiers with no run at all

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.ok else EXIT_FAILED

    @property
    def ok(self) -> bool:
        """Every planned action succeeded and, read from the files afterwards, every
        selected run is complete (nothing left out by a switch, a filter or a failure)."""
        return not self.not_done and not self.missing and not self.remaining

    def problems(self, limit: int = 5) -> str:
        """The first few reasons it is not ``ok``, for a one-line summary."""
        items = [f"{label}: {why}" for label, why in self.not_done]
        items += [f"{label} still {status}: {why}" for label, status, why in self.remaining if label not in dict(self.not_done)]
        return "; ".join(items[:limit]) + (f"; and {len(items) - limit} more" if len(items) > limit else "")

    def format(self) -> str:
        def counts(c: dict[str, int]) -> str:
            return ", ".join(f"{k} {v}" for k, v in c.items())

        lines = [
            f"recovered {self.directory}: {self.planned - len(self.not_done)} of {self.planned} planned run(s) done",
            f"before: {counts(self.before)}",
            f"after:  {counts(self.after)}",
        ]
        lines += [f"not done: {label}: {why}" for label, why in self.not_done]
        if self.remaining:
            lines.append(
                f"still needing work: {len(self.remaining)} (the recovery exits {EXIT_FAILED}: "
                "not every selected run is complete afterwards)"
            )
            lines += [f"  {label}  {status}  {reason}" for label, status, reason in self.remaining]
        return "\n".join(lines)


def build_selection(
    statuses: Sequence[str] | None = None, tiers: Sequence[str] | None = None, subtests: Sequence[str] | None = None,
    runs: str | Sequence[int] | None = None, agents_only: bool = False, judges_only: bool = False,
    judge_model: str | None = None,
) -> Selection:
    return Selection.build(
        statuses=statuses, tiers=tiers, subtests=subtests, runs=runs,
        agents_only=agents_only, judges_only=judges_only, judge_model=judge_model,
    )


def check_suite_rerun(s: SuiteRunSurvey) -> None:
    """A standard-mode rerun goes through ``run_suite --resume``, which reruns every unfinished case."""
    if s.unselected_needing_work:
        raise RecoveryInputError(
            f"--status leaves out unfinished case(s) {', '.join(s.unselected_needing_work)}, but run_suite "
            "--resume reruns every unfinished case: drop --status or include their statuses"
        )
    if s.planned and not s.manifest.suite_file:
        where = s.run.dir if s.mode is Mode.INSPECT else s.run.manifest
        raise RecoveryInputError(f"{where}: no loadable suite file is recorded, so run_suite cannot rerun its cases")


# ------------------------------------------------------------------ command line


class _UsageError(Exception):
    """A command line argparse refuses (exit 2), reported by ``main`` in text or JSON."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _wants_json(argv: Sequence[str]) -> bool:
    """``--json`` (or an abbreviation argparse accepts) before any ``--``: errors too are JSON then."""
    for arg in argv:
        if arg == "--":
            return False
        if len(arg) >= 4 and "--json".startswith(arg):
            return True
    return False


def _positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="flows/recover.py",
        description="Classify every run of an experiment from its files; rerun, re-judge or regenerate only what is needed.",
    )
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
        "-p", "--parallelism", type=_positive_int, metavar="N", help=f"at most N tasks at once (default {DEFAULT_PARALLELISM})"
    )
    p.add_argument("--json", action="store_true", dest="json_output", help="print the classification as one JSON document; run nothing")
    p.add_argument("-v", "--verbose", action="store_true", help="list every selected run, not only those needing work")
    from .cli import add_dask_options

    add_dask_options(p, "reruns")
    return p


def _error(message: object, code: int = EXIT_BAD_INPUT, *, as_json: bool = False) -> int:
    """One line ``error: ...`` on stderr; with ``--json``, the one document on stdout instead."""
    if as_json:
        print(json.dumps({"error": str(message), "exit_code": code}, ensure_ascii=False))
    else:
        print(f"error: {message}", file=sys.stderr)
    return code


def _quiet_broken_pipe() -> None:
    """The reader went away (``... | head``): drop what is left to print, with no traceback,
    and none either when the interpreter flushes stdout at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def preflight(args: argparse.Namespace, selection: Selection) -> ExperimentSurvey | SuiteRunSurvey:
    """Everything a real recovery would refuse, checked before Prefect starts (reads only);
    returns the survey it read."""
    s = survey(args.experiment_dir, selection)
    target = s.exp if isinstance(s, ExperimentSurvey) else s.run
    check_lock(target.lock, what=str(target.dir))
    problem = unwritable_reason(target.dir)
    if problem is not None:  # a read-only mount: refused here, not at the lock inside the flow
        raise RecoveryInputError(f"{target.dir}: a recovery writes here and cannot ({problem}); --dry-run and --json only read")
    if isinstance(s, ExperimentSurvey):
        if any(r.rerun_agent or r.judge_slots for r in s.planned):
            load_spec(s.exp)  # an experiment it cannot rerun, or a bad command template
        if any(r.rerun_agent for r in s.planned) and not s.exp.prompt.is_file():
            raise RecoveryInputError(
                f"{s.exp.prompt}: missing, so agents of this experiment cannot be rerun; restore it, "
                "or recover without agent reruns (--judges-only, or --status results)"
            )
        return s
    check_suite_rerun(s)
    if s.planned:
        from .preflight import check_run

        inspect = s.mode is Mode.INSPECT
        check_run(
            s.manifest.suite_file, dry_run=False, parallelism=args.parallelism,
            resume=None if inspect else str(s.run.dir),
            results_root=str(s.run.dir.parent) if inspect else "results",
        )
    return s


def _import_flows(name: str) -> Any:
    # Imported only for a real recovery: the core (and the dry run) never imports Prefect.
    import importlib

    try:
        return importlib.import_module(f"flows.{name}")
    except ModuleNotFoundError as exc:
        if exc.name not in ("flows", f"flows.{name}"):
            raise
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a plain checkout
        return importlib.import_module(f"flows.{name}")


def _bad_input() -> tuple[type[Exception], ...]:
    from .cli import BAD_INPUT as SUITE_BAD_INPUT  # run_suite's refusals, for standard-mode reruns

    return BAD_INPUT + SUITE_BAD_INPUT


def run(args: argparse.Namespace) -> int:
    selection = build_selection(
        args.statuses, args.tiers, args.subtests, args.runs, args.agents_only, args.judges_only, args.judge_model
    )
    if args.dry_run or args.json_output:
        s = survey(args.experiment_dir, selection)
        print(render_json(s) if args.json_output else render_text(s, verbose=args.verbose))
        return EXIT_OK
    before = preflight(args, selection)
    from .cli import check_services

    check_services(args.dask_address, args.dask_workers)
    dask = {k: v for k, v in dict(dask_address=args.dask_address, dask_workers=args.dask_workers).items() if v is not None}
    flows_recover = _import_flows("recover")
    flows_recover.quiet_lost_server_tracebacks()
    try:
        state = flows_recover.recover(
            experiment_dir=args.experiment_dir, statuses=args.statuses, tiers=args.tiers, subtests=args.subtests,
            runs=args.runs, agents_only=args.agents_only, judges_only=args.judges_only, judge_model=args.judge_model,
            parallelism=args.parallelism, verbose=args.verbose, **dask, return_state=True,
        )
        result = state.result(raise_on_failure=False)
    except Exception as exc:
        if not flows_recover.lost_server_call(exc):
            raise
        result = exc
    if isinstance(result, RecoverySummary):
        return result.exit_code
    if isinstance(result, BaseException):
        if flows_recover.lost_server_call(result):
            return flows_recover.exit_code_from_files(before, result)  # the files decide, not a lost HTTP call
        raise result
    return EXIT_FAILED if state.is_failed() else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Exit codes as the README says; with ``--json`` every outcome is one JSON document on
    stdout, an error being ``{"error": "...", "exit_code": N}``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = _wants_json(argv)
    try:
        try:
            args = build_parser().parse_args(argv)
        except _UsageError as exc:
            return _error(exc, as_json=as_json)
        try:
            return run(args)
        except LockHeld as exc:
            return _error(exc, EXIT_LOCKED, as_json=as_json)
        except BrokenPipeError:
            raise
        except Exception as exc:
            if isinstance(exc, _bad_input()):
                return _error(exc, as_json=as_json)
            if as_json:
                return _error(f"the survey failed: {type(exc).__name__}: {exc}", EXIT_FAILED, as_json=True)
            if args.dry_run:
                raise
            return _error(f"the recovery failed: {type(exc).__name__}: {exc}", EXIT_FAILED)
    except BrokenPipeError:
        _quiet_broken_pipe()
        return EXIT_OK
