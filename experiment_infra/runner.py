"""Run one attempt of one standard-mode case in a fresh subprocess (no Prefect here).

The disk is the truth about a case: ``config.json`` is written before the process
starts, the run record when it starts (no end) and again when it ends. The end is
written by the case's waiter (``case_waiter``), the process that waits on the entry
point, not by the runner: a runner that is killed leaves a case that still finishes
and reads ``completed``, and one killed with its waiter leaves a record saying the
case started and never finished, which ``status.classify_case`` reads back. Earlier
attempts (everything in the case directory) are moved aside, never deleted, so a
retry cannot destroy the evidence of why the first attempt failed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from pathlib import Path

from .atomic import atomic_write_json, move_aside
from .case import ExperimentCase
from .case_waiter import is_waiter_of, waiter_argv
from .config import ENTRY_POINT_ENV, BaseExperimentConfig, ConfigError
from .interrupt import CANCELLED, RunInterrupted, interrupted_reason, stop_requested
from .layout import CasePaths
from .process import processes_running, running_command, stop_group_of, wait_exit
from .records import RunRecord, read_record, utc_now_iso, write_record
from .status import CaseClassification, CaseStatus, classify_case
from .streaming import OutputCallback, Streamed, run_streaming

__all__ = ["OutputCallback", "Streamed", "case_command", "case_config", "run_case", "run_streaming"]

# A waiter whose entry point has ended is writing the end of its record: this long is
# more than enough, and it is only waited for when a resume finds one.
WAITER_FINISH_SECONDS = 10.0

def case_config(case: ExperimentCase, paths: CasePaths) -> BaseExperimentConfig:
    """The config the entry point receives: the suite's, placed in its case directory."""
    return case.config.with_output_dir(str(paths.dir.resolve()))


def case_command(
    case: ExperimentCase, paths: CasePaths, entry_point: Path, python: str = sys.executable
) -> list[str]:
    """``[python, entry_point, --field=value ...]``: an argv list, never a shell string.

    Raises ``ConfigError`` for a value that cannot make the trip (checked while planning,
    so nothing is written for a suite that holds one).
    """
    return _command(case_config(case, paths), case.variant_name, entry_point, python)


def _command(config: BaseExperimentConfig, variant: str, entry_point: Path, python: str) -> list[str]:
    argv = config.to_argv(case=variant)
    _check_travels(config, argv, variant)
    return [python, str(entry_point), *argv]


def _check_travels(config: BaseExperimentConfig, argv: list[str], variant: str) -> None:
    for arg in argv:
        if "\x00" in arg:  # exec() would refuse it ("embedded null byte") after config.json was written
            raise ConfigError(
                f"case {variant!r}: {arg.partition('=')[0]} holds a NUL character, which no command line can carry; remove it"
            )
    for name, value in config.to_json_dict().items():
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:  # config.json and the manifest are UTF-8 files
            raise ConfigError(
                f"case {variant!r}: field {name!r} holds text that is not valid Unicode (a lone surrogate), "
                "which cannot be written to config.json; fix the value"
            ) from None


def stop_unfinished_attempt(paths: CasePaths) -> bool:
    """Stop an earlier attempt that is still running on this host; True if one was stopped.

    Entry points run in their own process group, so a runner that is killed (or a
    laptop that loses its terminal) leaves them running. A resumed run must not let
    that orphan write into the case directory beside the new attempt. Its waiter goes
    first, with SIGKILL, so it records nothing more (the attempt stays "never finished");
    a waiter whose entry point already ended is left to record that end.
    """
    record = read_record(paths.run_record, RunRecord).record
    if record is None or record.ended_at is not None or record.host != socket.gethostname():
        return False
    entry_running = record.pid is not None and running_command(record.pid) == record.command
    waiters = processes_running(lambda argv: is_waiter_of(argv, paths))
    for waiter in waiters:
        if not entry_running:
            wait_exit(waiter, WAITER_FINISH_SECONDS)
            continue
        try:
            os.kill(waiter, signal.SIGKILL)
        except ProcessLookupError:
            pass
        wait_exit(waiter, WAITER_FINISH_SECONDS)
    if not entry_running or record.pid is None:
        return False
    return stop_group_of(record.pid, record.command)


def set_aside_previous_attempt(paths: CasePaths) -> int:
    """Move everything an earlier attempt left in the case directory into ``.attempts/attempt_N``;
    return the new attempt number.

    The entry point's own files go too, not only the runner's: a retry then starts in an
    empty directory, so nothing the failed attempt wrote is overwritten or mistaken for
    the new attempt's output, and the evidence of the failure is kept whole. Attempt
    numbers continue across resumed runs.
    """
    kept = paths.kept_attempts()
    present = paths.attempt_entries()
    last = max([0, *kept])
    if not present:
        return last + 1
    previous = read_record(paths.run_record, RunRecord).record
    number = previous.attempt if previous is not None else last + 1
    if number in kept or paths.attempt_dir(number).exists():
        number = last + 1
    # The run record last: a runner killed half way leaves it, and the files not yet
    # moved, to the next set-aside, which moves them to an attempt directory of their own.
    for path in sorted(present, key=lambda p: p == paths.run_record):
        move_aside(path, paths.attempt_dir(number) / path.name)
    return max(number, last) + 1


def _record_end(
    paths: CasePaths, record: RunRecord, exit_code: int, reason: str | None, interrupted: str | None = None
) -> None:
    update = {"ended_at": utc_now_iso(), "exit_code": exit_code, "reason": reason, "interrupted": interrupted}
    write_record(paths.run_record, record.model_copy(update=update))


def run_case(
    case: ExperimentCase,
    paths: CasePaths,
    entry_point: Path,
    *,
    timeout_seconds: float | None = None,
    on_output: OutputCallback | None = None,
    cwd: Path | None = None,
    python: str = sys.executable,
) -> CaseClassification:
    """Run one attempt of ``case`` into ``paths.dir``; return what the disk now says about it.

    Raises ``ConfigError`` (before anything is written) if the config cannot travel
    on a command line. Interrupting the runner kills the case's process group and
    records the attempt as failed before re-raising. A leftover attempt whose waiter
    recorded its completion meanwhile is not run again.
    """
    config = case_config(case, paths)
    command = _command(config, case.variant_name, entry_point, python)
    cwd = Path(cwd) if cwd is not None else Path.cwd()
    paths.dir.mkdir(parents=True, exist_ok=True)
    stop_unfinished_attempt(paths)
    settled = classify_case(paths)
    if settled.status is CaseStatus.COMPLETED:
        return settled
    if stop_requested():
        raise RunInterrupted(f"case {case.variant_name!r} not started: the run was stopped ({stop_requested()})")
    attempt = set_aside_previous_attempt(paths)
    atomic_write_json(paths.config, config.to_json_dict())

    # The waiter's instructions, and "started, never finished" until it says more.
    record = RunRecord(
        variant_name=case.variant_name,
        command=command,
        cwd=str(cwd),
        attempt=attempt,
        host=socket.gethostname(),
        started_at=utc_now_iso(),
    )
    write_record(paths.run_record, record)
    done = run_streaming(
        waiter_argv(paths, timeout_seconds),
        cwd=cwd,
        # ENTRY_POINT_ENV lets the spec's `config = MyConfig()` read this argv.
        env={**os.environ, "PYTHONUNBUFFERED": "1", ENTRY_POINT_ENV: str(entry_point)},
        logs=None,  # the waiter writes them: they must not depend on this process living
        on_output=on_output,
        timeout_seconds=None,  # the waiter's: it outlives this process
        on_stop="forward",  # the run's stop request reaches the waiter, which records it
    )
    now = read_record(paths.run_record, RunRecord).record or record
    if done.stopped == CANCELLED and now.interrupted is not None:
        # The waiter knows the signal it was sent; the run was cancelled (the UI, the API).
        now = now.model_copy(update={"interrupted": CANCELLED, "reason": interrupted_reason(CANCELLED)})
        write_record(paths.run_record, now)
    if done.interrupted is not None:
        # The waiter was sent SIGTERM (and SIGKILL after a grace): make sure its entry point went too.
        if now.pid is not None:
            stop_group_of(now.pid, now.command)
        reason = f"runner interrupted ({type(done.interrupted).__name__}); process group killed"
        _record_end(paths, now, now.exit_code if now.exit_code is not None else -signal.SIGKILL, reason)
        raise done.interrupted
    if now.ended_at is None:
        # The waiter could not start, or died without recording the end.
        if now.pid is not None:
            stop_group_of(now.pid, now.command)
        why = done.reason or f"exit code {done.exit_code}"
        if done.stopped is not None:  # stopped with the run, and killed after the grace period
            _record_end(paths, now, done.exit_code or -signal.SIGKILL, interrupted_reason(done.stopped), done.stopped)
        else:
            _record_end(paths, now, done.exit_code or -signal.SIGKILL, f"the case's waiter process ended without recording the end ({why})")
    return classify_case(paths)
