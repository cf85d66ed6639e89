"""What every command line shares: its parser, its error line, its exit codes, and
how it starts Prefect (a slow first start of the temporary server is survived).

Exit codes (every command): 0 done, 1 a case / run / recovery did not succeed,
2 bad input or a service that cannot be reached (one ``error:`` line), 3 the
directory is locked by another run or recovery.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from typing import TYPE_CHECKING, Any, Callable, NoReturn

from experiment_infra.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_LOCKED, EXIT_OK, ExperimentError
from experiment_infra.processes.interrupt import INTERRUPTED_EXIT_CODE
from experiment_infra.running.services import ServiceError, chosen_cluster

from .prefect_settings import API_URL, STARTUP_SETTING, configured, startup_failure

if TYPE_CHECKING:
    from experiment_infra.running.slurm import SlurmWorkers

# temporary_server (http.client, socket, subprocess) is imported by the functions that
# start or wait for a server: a dry run, which starts none, does not pay for it.

__all__ = [
    "BAD_INPUT", "EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_LOCKED", "EXIT_OK", "Parser", "add_dask_options", "cluster_options",
    "fail", "report", "run_flow", "start_prefect",
]

# Every refusal the core raises for input a user can fix carries its exit code
# (experiment_infra.errors); a run directory that already exists is one more.
BAD_INPUT: tuple[type[Exception], ...] = (ExperimentError, FileExistsError)

# Prefect allows its temporary server 20 s to start. A brand-new Prefect home on a
# busy 2-core laptop needs more (measured: 18 s idle, over 20 s with one other
# CPU-bound process), and the first run is a newcomer's first impression.
GENEROUS_STARTUP_SECONDS = 300


class Parser(argparse.ArgumentParser):
    """argparse with the project's error line: ``error: ...`` and exit 2, no usage dump.

    ``json_errors``: the command was given ``--json``, so a refused command line is the
    one JSON document on stdout instead (``report``)."""

    json_errors = False

    def error(self, message: str) -> NoReturn:
        raise SystemExit(report(message, EXIT_BAD_INPUT, as_json=self.json_errors))


def fail(message: object, code: int = EXIT_BAD_INPUT) -> NoReturn:
    raise SystemExit(report(message, code))


def report(problem: BaseException | str, code: int | None = None, *, as_json: bool = False) -> int:
    """The one way every command reports a refusal or a failure: the ``error:`` line on
    stderr, or with ``--json`` the document ``{"error": ..., "exit_code": N}`` on stdout.
    The exit code is ``code``, else the error's own (``ExperimentError.exit_code``), else 2."""
    if code is None:
        code = getattr(problem, "exit_code", EXIT_BAD_INPUT)
    if as_json:
        print(json.dumps({"error": str(problem), "exit_code": code}, ensure_ascii=False))
    else:
        print(f"error: {problem}", file=sys.stderr)
    return code


# At exit Prefect's log and event workers send what they hold to the server; one that is
# gone (a temporary server killed first) would have them retry for minutes.
EXIT_DRAIN_SECONDS = 10.0


def _drain_prefect(code: int) -> None:
    """Let Prefect's workers deliver what they hold, for at most EXIT_DRAIN_SECONDS; past
    that (a server that died first) exit with ``code`` without them."""
    if "prefect" not in sys.modules:
        return
    from prefect._internal.concurrency.services import QueueService

    try:
        _, pending = QueueService.drain_all(timeout=EXIT_DRAIN_SECONDS)  # type: ignore[misc]
    except Exception:
        return
    if pending:
        print("note: the Prefect server did not take the last logs and events; exiting without them", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run_main(main: Callable[[], int]) -> NoReturn:
    """Exit with ``main()``'s code; a reader that closed the pipe (``| head``) ends it quietly.
    Ctrl-C outside a flow (a flow stops its cases itself, ``flows/stopping.py``) exits 130."""
    try:
        try:
            code = main()
        except KeyboardInterrupt:
            print("\ninterrupted", file=sys.stderr)
            code = INTERRUPTED_EXIT_CODE
        _drain_prefect(code)
        sys.stdout.flush()
        # Done: spare the interpreter's last garbage collection its walk over every live
        # object (tens of ms after pydantic or Prefect is loaded; a dry run's whole budget
        # is a few hundred). Objects are still freed and atexit handlers still run; only
        # finalizers of objects in reference cycles may not, as Python never promises at exit.
        gc.freeze()
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_OK
    raise SystemExit(code)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (at least 1), got {value}")
    return value


def _checked(check: Callable[[str], str]) -> Callable[[str], str]:
    """An argparse ``type`` from one of the core's checks (its sentence is the error)."""
    def convert(text: str) -> str:
        try:
            return check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return convert


def add_dask_options(parser: argparse.ArgumentParser, what: str) -> None:
    """``--dask-address`` / ``--dask-workers`` / ``--slurm-workers`` and the Slurm jobs'
    settings (see flows/task_runners.py; ``slurm_workers`` reads them back)."""
    from experiment_infra.running.slurm import DEFAULT_MEMORY, check_directive, check_memory, check_walltime

    dask = parser.add_mutually_exclusive_group()
    dask.add_argument(
        "--dask-address", metavar="ADDR", default=None,
        help=f"run the {what} on the Dask scheduler at ADDR (needs PREFECT_API_URL and a shared filesystem)",
    )
    dask.add_argument(
        "--dask-workers", type=positive_int, metavar="N", default=None,
        help=f"run the {what} on a local Dask cluster of N worker processes (on this command's temporary server, or PREFECT_API_URL's)",
    )
    dask.add_argument(
        "--slurm-workers", type=positive_int, metavar="N", default=None,
        help=f"run the {what} on N Dask workers submitted as Slurm jobs (needs PREFECT_API_URL and a shared filesystem)",
    )
    jobs = parser.add_argument_group("Slurm worker jobs (with --slurm-workers; defaults from dask's jobqueue.slurm configuration)")
    jobs.add_argument("--slurm-partition", metavar="P", help="the partition to submit to")
    jobs.add_argument("--slurm-walltime", metavar="HH:MM:SS", type=_checked(check_walltime), help="each job's time limit")
    jobs.add_argument(
        "--slurm-memory", metavar="SIZE", type=_checked(check_memory), help=f"each job's memory, e.g. 8GB (default {DEFAULT_MEMORY})"
    )
    jobs.add_argument("--slurm-account", metavar="A", help="the account to charge")
    jobs.add_argument(
        "--slurm-directive", metavar="OPT", action="append", default=[], type=_checked(check_directive),
        help="one more sbatch option, e.g. --slurm-directive=--constraint=a100 (repeatable)",
    )
    jobs.add_argument(
        "--slurm-gpus-per-job", metavar="K", type=positive_int, default=None,
        help="GPUs each job asks for (--gres=gpu:K) and runs K cases at once on, each on the job's own devices "
        "(default, when cases ask for gpus: the largest case's request, so every case fits one job)",
    )


def cluster_options(args: argparse.Namespace) -> dict[str, Any]:
    """The flow parameters ``add_dask_options``' flags ask for (only those given):
    ``dask_address``, ``dask_workers``, ``slurm``."""
    return chosen_cluster(args.dask_address, args.dask_workers, slurm_workers(args))


_SLURM_SETTINGS = (
    "slurm_partition", "slurm_walltime", "slurm_memory", "slurm_account", "slurm_directive", "slurm_gpus_per_job",
)


def slurm_workers(args: argparse.Namespace) -> SlurmWorkers | None:
    """The Slurm worker jobs ``add_dask_options``' flags ask for; None without --slurm-workers
    (then any Slurm setting is a ServiceError: it would be silently ignored)."""
    if args.slurm_workers is None:
        given = [name for name in _SLURM_SETTINGS if getattr(args, name)]
        if given:
            raise ServiceError(f"--{given[0].replace('_', '-')} applies to Slurm worker jobs only: add --slurm-workers N")
        return None
    from experiment_infra.running.slurm import SlurmWorkers

    try:
        return SlurmWorkers(
            jobs=args.slurm_workers, partition=args.slurm_partition, walltime=args.slurm_walltime,
            memory=args.slurm_memory, account=args.slurm_account, directives=tuple(args.slurm_directive),
            gpus_per_job=args.slurm_gpus_per_job,
        )
    except ValueError as exc:
        raise ServiceError(str(exc)) from None


# A busy server (a temporary one still digesting a fan-out's events, a shared one under
# load) answers 429 or 503 for a while. Prefect's client retries those (and 408, 502)
# with exponential backoff, 2, 4, 8 ... s, but only 5 times by default (about a minute);
# a run rather waits a few minutes than loses a state or a log.
CLIENT_RETRY_DEFAULTS = {
    # 7 retries back off 2 + 4 + ... + 128 s: about four minutes before a call is given up.
    "PREFECT_CLIENT_MAX_RETRIES": "7",
    # 429, 502, 503 and 408 are always retried; a proxy in front of a server also says 504.
    "PREFECT_CLIENT_RETRY_EXTRA_CODES": "504",
}


def _unset(setting: str) -> bool:
    return configured(setting) is None


def prepare_prefect() -> dict[str, str]:
    """Before Prefect is imported (its settings are read then): a generous start-up for its
    temporary server and generous client retries, each unless the user set it (in the
    environment or the active Prefect profile: theirs always wins). Returns what was set."""
    chosen = {STARTUP_SETTING: str(GENEROUS_STARTUP_SECONDS), **CLIENT_RETRY_DEFAULTS}
    chosen = {k: v for k, v in chosen.items() if _unset(k)}
    os.environ.update(chosen)
    return chosen


def _startup_timed_out(exc: BaseException) -> bool:
    return isinstance(exc, RuntimeError) and "attempting to connect to ephemeral Prefect API server" in str(exc)


def start_failure(exc: BaseException) -> ServiceError | None:
    """The one-line error for a temporary server that never came up, else None."""
    from . import temporary_server
    if not _startup_timed_out(exc):
        return None
    return startup_failure(f"{temporary_server.startup_seconds():g}")


def start_prefect(dask_address: str | None = None, dask_workers: int | None = None, slurm: Any = None) -> str | None:
    """Before Prefect is imported: its settings (``prepare_prefect``), the temporary server
    started now when one will be used (``temporary_server``: threads and a local Dask
    cluster; a scheduler or Slurm jobs elsewhere need a real server, and their check says
    so), then the services checked. Returns the API URL the
    flows will report to; None when Prefect will start a temporary server itself."""
    from . import kept_server, temporary_server
    prepare_prefect()
    import flows  # noqa: F401  (its import opts out of the server's telemetry: before a server starts)

    if temporary_server.wanted():
        kept = kept_server.find()  # `make server`'s, which outlives commands: no start-up, runs stay in its UI
        if kept is not None:
            os.environ[API_URL] = kept

    if dask_address is None and slurm is None:
        # Threads, or a local cluster's worker processes: all on this machine, so they
        # reach this command's temporary server over HTTP (each opening Prefect's own
        # temporary server's SQLite file is what fails with 'database is locked').
        temporary_server.start()
    return check_services(dask_address, dask_workers, slurm)


def run_flow(flow: Callable[..., Any], **parameters: Any) -> Any:
    """Call ``flow`` for its final state (once the temporary server this command started
    answers); a server that never starts is a ServiceError, not a traceback."""
    from . import temporary_server
    server = temporary_server.current()
    if server is not None:
        server.wait_ready(temporary_server.startup_seconds())
        server.watch()
    try:
        return flow(**parameters, return_state=True)
    except RuntimeError as exc:
        failure = start_failure(exc)
        if failure is None:
            raise
        raise failure from None


def check_services(dask_address: str | None = None, dask_workers: int | None = None, slurm: Any = None) -> str | None:
    """The Prefect API (and Dask scheduler) a run needs answer; ServiceError naming them
    otherwise. Returns the API's URL; None when the run will start a temporary server.
    The temporary server this command started is still starting: ``run_flow`` waits for it."""
    from . import temporary_server
    from flows.api_check import check_api
    from flows.task_runners import check_dask

    server = temporary_server.current()
    url = server.api_url if server is not None else check_api()
    check_dask(dask_address, dask_workers, slurm)
    return url


def load_temporary_server() -> None:
    """Import Prefect's temporary server now, as its first client call would (seconds of
    CPU): a command that starts helper processes does it first, so that they load while
    the server starts rather than beside this import."""
    from . import temporary_server
    import prefect.server.api.server  # noqa: F401


def exit_code_of(state: Any, what: str = "run") -> int:
    """A flow's final state as the process exit code (bad input returned by the flow: 2;
    stopped by Ctrl-C, SIGTERM or a cancellation: 130)."""
    if state.is_cancelled():
        print(f"{what} stopped: {state.message}", file=sys.stderr)
        return INTERRUPTED_EXIT_CODE
    result = state.result(raise_on_failure=False)
    if isinstance(result, BAD_INPUT):
        return report(result)
    if isinstance(result, BaseException):
        failure = start_failure(result)
        if failure is not None:
            print(f"error: {failure}", file=sys.stderr)
            return EXIT_BAD_INPUT
        print(f"error: the {what} failed: {type(result).__name__}: {result}", file=sys.stderr)
        return EXIT_FAILED
    if isinstance(result, bool):
        return EXIT_OK if result else EXIT_FAILED
    if isinstance(result, int):
        return result
    ok = getattr(result, "ok", None)
    if ok is not None:
        return EXIT_OK if ok else EXIT_FAILED
    return EXIT_FAILED if state.is_failed() else EXIT_OK
