"""The two command lines that run a suite, and what they share.

``python flows/run_suite.py SUITE [flags]`` and ``python SUITE [flags]`` (a suite file
calling ``run_experiments_cli`` under ``__main__``) parse the same flags and run the
same Prefect flow. Bad input is reported as one ``error: ...`` line, exit code 2,
before any Prefect server starts; a run with a failed case exits 1.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path
from typing import Any, NoReturn, Sequence

from .case import ExperimentCase
from .config import ConfigError
from .layout import UnsafeNameError
from .lock import LockHeld
from .records import RecordError
from .services import ServiceError
from .suite import Suite, SuiteError, load_suite, resolve_entry_point

BAD_INPUT: tuple[type[Exception], ...] = (
    SuiteError, ConfigError, UnsafeNameError, RecordError, LockHeld, FileExistsError, ServiceError,
)
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
SUITE_OPTIONS = ("mode", "retries", "retry_delay_seconds", "timeout_seconds")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (at least 1), got {value}")
    return value


def build_parser(*, with_suite: bool = True, prog: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description="Run an experiment suite as a Prefect flow.")
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
        "--results-root", metavar="DIR", default="results", help="where run directories go (default: results)"
    )
    add_dask_options(parser, "cases")
    return parser


def add_dask_options(parser: argparse.ArgumentParser, what: str) -> None:
    """``--dask-address`` / ``--dask-workers`` (shared by run_suite and recover; see flows/task_runners.py)."""
    dask = parser.add_mutually_exclusive_group()
    dask.add_argument(
        "--dask-address", metavar="ADDR", default=None,
        help=f"run the {what} on the Dask scheduler at ADDR (needs PREFECT_API_URL and a shared filesystem)",
    )
    dask.add_argument(
        "--dask-workers", type=positive_int, metavar="N", default=None,
        help=f"run the {what} on a local Dask cluster of N worker processes (needs PREFECT_API_URL)",
    )


def check_services(dask_address: str | None = None, dask_workers: int | None = None) -> None:
    """The Prefect API (and Dask scheduler) a run needs answer; ServiceError naming them otherwise."""
    _import_flow()  # makes flows/ importable in a plain checkout
    from flows.api_check import check_api
    from flows.task_runners import check_dask

    check_api()
    check_dask(dask_address, dask_workers)


def _error(message: object) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _import_flow() -> Any:
    # Imported here, not at the top: experiment_infra is the Prefect-free core and
    # must import (and be tested) without Prefect; only running a flow needs it.
    try:
        import flows.run_suite as module
    except ModuleNotFoundError as exc:
        if exc.name not in ("flows", "flows.run_suite"):
            raise
        # Not installed (a plain checkout): the repository root holds flows/.
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        import flows.run_suite as module
    return module


def _exit_code(state: Any) -> int:
    result = state.result(raise_on_failure=False)
    if isinstance(result, BAD_INPUT):
        return _error(result)
    if isinstance(result, BaseException):
        print(f"error: the run failed: {type(result).__name__}: {result}", file=sys.stderr)
        return EXIT_FAILED
    if isinstance(result, bool):
        return EXIT_OK if result else EXIT_FAILED
    if isinstance(result, int):
        return result
    ok = getattr(result, "ok", None)
    if ok is not None:
        return EXIT_OK if ok else EXIT_FAILED
    return EXIT_FAILED if state.is_failed() else EXIT_OK


def run_suite_command(
    suite_path: str | Path,
    *,
    dry_run: bool = False,
    parallelism: int | None = None,
    resume: str | None = None,
    results_root: str = "results",
    dask_address: str | None = None,
    dask_workers: int | None = None,
) -> int:
    """Check the input, run the ``run_suite`` flow, return the process exit code."""
    module = _import_flow()
    options = dict(dry_run=dry_run, parallelism=parallelism, resume=resume, results_root=str(results_root))
    dask = {k: v for k, v in dict(dask_address=dask_address, dask_workers=dask_workers).items() if v is not None}
    try:
        module.preflight(str(suite_path), **options)
        check_services(dask_address, dask_workers)
    except BAD_INPUT as exc:
        return _error(exc)
    try:
        state = module.run_suite(suite_path=str(suite_path), **options, **dask, return_state=True)
    except BAD_INPUT as exc:
        return _error(exc)
    return _exit_code(state)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """``python flows/run_suite.py SUITE [--dry-run] [-p N] [--resume RUN_DIR] [--results-root DIR]``."""
    args = build_parser(prog=prog).parse_args(argv)
    return run_suite_command(
        args.suite, dry_run=args.dry_run, parallelism=args.parallelism, resume=args.resume,
        results_root=args.results_root, dask_address=args.dask_address, dask_workers=args.dask_workers,
    )


def _same_cases(given: Sequence[ExperimentCase], loaded: Sequence[ExperimentCase]) -> bool:
    def key(cases: Sequence[ExperimentCase]) -> list[tuple[str, str]]:
        return [(c.variant_name, c.config.model_dump_json()) for c in cases]

    try:
        return key(given) == key(loaded)
    except AttributeError:
        return False


def _check_call_matches(
    suite_file: Path, loaded: Suite, cases: Any, entry_point: Any, experiment_name: Any, options: dict[str, Any]
) -> None:
    """The flow loads the suite from its module-level names; the call must agree with them."""
    where = suite_file.name
    if not _same_cases(list(cases), loaded.cases):
        raise SuiteError(f"{where}: the cases passed to run_experiments_cli differ from module-level `cases`; pass `cases`")
    if entry_point is not None and resolve_entry_point(entry_point, suite_file.parent, where) != loaded.entry_point:
        raise SuiteError(
            f"{where}: run_experiments_cli(entry_point={str(entry_point)!r}) differs from module-level "
            f"entry_point; pass `entry_point`"
        )
    if experiment_name is not None and experiment_name != loaded.experiment_name:
        raise SuiteError(
            f"{where}: run_experiments_cli(experiment_name={experiment_name!r}) differs from module-level "
            f"experiment_name {loaded.experiment_name!r}"
        )
    for name, value in options.items():
        if getattr(loaded, name) != value:
            raise SuiteError(
                f"{where}: run_experiments_cli({name}={value!r}) differs from module-level {name} "
                f"{getattr(loaded, name)!r}; declare it once at module level"
            )


def run_experiments_cli(
    cases_or_suite: Sequence[ExperimentCase] | Any,
    entry_point: str | Path | None = None,
    experiment_name: str | None = None,
    *,
    argv: Sequence[str] | None = None,
    **options: Any,
) -> NoReturn:
    """Run the calling suite file as ``flows/run_suite.py`` would, then exit.

    Call it under ``if __name__ == "__main__":`` with the module-level names
    (``run_experiments_cli(cases, entry_point=entry_point, experiment_name=experiment_name)``).
    ``options`` may repeat the module-level ``mode``, ``retries``,
    ``retry_delay_seconds`` or ``timeout_seconds``.
    """
    caller = inspect.currentframe().f_back  # type: ignore[union-attr]
    suite_file = caller.f_globals.get("__file__") if caller is not None else None
    prog = Path(suite_file).name if suite_file else None
    args = build_parser(with_suite=False, prog=prog).parse_args(argv)
    unknown = sorted(set(options) - set(SUITE_OPTIONS))
    if unknown:
        raise SystemExit(_error(f"run_experiments_cli: unknown option(s) {', '.join(unknown)}; valid: {', '.join(SUITE_OPTIONS)}"))
    if not suite_file:
        raise SystemExit(_error("run_experiments_cli must be called from a suite file (no __file__ here)"))
    path = Path(suite_file).resolve()
    try:
        loaded = load_suite(path)
        if isinstance(loaded, Suite) and not isinstance(cases_or_suite, Suite):
            _check_call_matches(path, loaded, cases_or_suite, entry_point, experiment_name, options)
    except BAD_INPUT as exc:
        raise SystemExit(_error(exc)) from None
    raise SystemExit(
        run_suite_command(
            path, dry_run=args.dry_run, parallelism=args.parallelism, resume=args.resume,
            results_root=args.results_root, dask_address=args.dask_address, dask_workers=args.dask_workers,
        )
    )
