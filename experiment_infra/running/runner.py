"""Run one attempt of one standard-mode case in a fresh subprocess (no Prefect here).

The disk is the truth about a case: ``config.json`` is written before the process
starts, the run record when it starts (no end) and again when it ends. The end is
written by the case's waiter (``case_waiter``), the process that waits on the entry
point, not by the runner: a runner that is killed leaves a case that still finishes
and reads ``completed``, and one killed with its waiter leaves a record saying the
case started and never finished, which ``status.classify_case`` reads back. Earlier
attempts' records are moved aside, never deleted, so a
retry cannot destroy the evidence of why the first attempt failed; by default only the
runner's own files are moved, so the entry point continues in place from what it wrote.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from pathlib import Path

from ..files.atomic import atomic_write_json, atomic_write_text, move_aside
from ..suites.case import ExperimentCase
from ..provenance.code_versions import attempt_code
from .case_waiter import is_waiter_of, waiter_argv
from ..suites.config import ENTRY_POINT_ENV, BaseExperimentConfig, ConfigError
from ..processes.failures import STDERR_TAIL_BYTES, classify_failure, oom_kills
from ..suites.import_paths import case_environment
from ..processes.interrupt import CANCELLED, RunInterrupted, interrupted_reason, stop_requested
from ..layout import CasePaths, InspectCasePaths
from ..layout.case_files import read_stop
from ..provenance.git import CodeSnapshot
from ..processes.process import is_recorded, processes_running, stop_group_of, stop_parent, wait_exit
from ..records import CaseIdentity, InspectRunRecord, RunRecord, read_record, utc_now_iso, write_record
from .resources import Grant, granted_environment
from ..status.rules import CaseClassification, CaseStatus, classify_case
from .streaming import OutputCallback, Streamed, run_streaming
from .waiter_server import forked_waiter, is_forked_waiter

__all__ = ["OutputCallback", "Streamed", "case_command", "case_config", "run_case", "run_streaming"]

# A waiter whose entry point has ended is writing the end of its record: this long is
# more than enough, and it is only waited for when a resume finds one.
WAITER_FINISH_SECONDS = 10.0
_CAN_FORK = hasattr(os, "fork") and hasattr(socket, "send_fds") and hasattr(os, "waitid")

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


def stop_unfinished_attempt(paths: CasePaths | InspectCasePaths) -> bool:
    """Stop an earlier attempt that is still running on this host; True if one was stopped.

    Entry points run in their own process group, so a runner that is killed (or a
    laptop that loses its terminal) leaves them running. A resumed run must not let
    that orphan write into the case directory beside the new attempt. Its waiter goes
    first, with SIGKILL, so it records nothing more (the attempt stays "never finished");
    a waiter whose entry point already ended is left to record that end. Only what is
    proven to be the attempt's is signalled: the entry point by its recorded pid, start
    time and command, the waiter as that entry point's parent (``process.stop_parent``);
    a record without a start time (written before it had one) stops nothing. An
    inspect-mode case (``InspectCasePaths``) has no waiter: its entry point alone is stopped.
    """
    inspect = isinstance(paths, InspectCasePaths)
    record = read_record(paths.run_record, InspectRunRecord if inspect else RunRecord).record
    if record is None or record.ended_at is not None or record.host != socket.gethostname():
        return False
    if record.pid is None or not is_recorded(record.pid, record.command, record.pid_start):
        if not inspect:
            for waiter in processes_running(lambda argv: is_waiter_of(argv, paths)):
                wait_exit(waiter, WAITER_FINISH_SECONDS)  # never signalled: only waited for
        return False
    # A forked waiter's command line is its server's: being the recorded entry point's parent proves it.
    waiter = None if inspect else stop_parent(
        record.pid, record.command, record.pid_start, lambda argv: is_waiter_of(argv, paths) or is_forked_waiter(argv)
    )
    if waiter is not None:
        wait_exit(waiter, WAITER_FINISH_SECONDS)
    return stop_group_of(record.pid, record.command, record.pid_start, host=record.host)


def set_aside_previous_attempt(paths: CasePaths, *, fresh: bool = False) -> int:
    """Keep what an earlier attempt left in the case directory in ``.attempts/attempt_N``;
    return the new attempt number.

    By default only the runner's files move (config, run record, logs, code patch): the
    entry point's own files stay where it wrote them, so the next attempt continues in
    place (skips finished work, loads its last checkpoint), as the spec says, while each
    attempt's record of what ran is kept whole. ``fresh`` moves everything instead, for
    entry points that cannot cope with an earlier attempt's files: the next attempt then
    starts in an empty directory. Attempt numbers continue across resumed runs.
    """
    kept = paths.kept_attempts()
    if fresh:
        present = paths.attempt_entries()
    else:
        present = [p for p in paths.runner_files() if os.path.lexists(p)]
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
    grant: Grant | None = None,
    retry_on: str | None = None,
    code: CodeSnapshot | None = None,
    fresh_attempt_dir: bool = False,
    identity: CaseIdentity | None = None,
    worker: str | None = None,
) -> CaseClassification:
    """Run one attempt of ``case`` into ``paths.dir``; return what the disk now says about it.

    The attempt continues in place with what earlier attempts wrote (their runner files
    are kept in ``.attempts/attempt_N``); ``fresh_attempt_dir`` moves all of it aside
    instead. ``code``: what the attempt runs on, named in its run record (with its own
    ``code.patch`` when dirty). ``identity``: the case's identity, kept in its run record
    for a later ``--reuse``.

    Raises ``ConfigError`` (before anything is written) if the config cannot travel
    on a command line. Interrupting the runner kills the case's process group and
    records the attempt as failed before re-raising. A leftover attempt whose waiter
    recorded its completion meanwhile is not run again.

    ``grant``: the devices and cpus the case holds (``resources.ResourcePool``), handed to
    it in its environment and named in its run record. ``retry_on``: the suite's pattern
    for failures worth retrying, matched against the end of its stderr (``failures``).
    ``worker``: the Dask worker running it (its address), named in its run record.
    """
    config = case_config(case, paths)
    command = _command(config, case.variant_name, entry_point, python)
    cwd = Path(cwd) if cwd is not None else Path.cwd()
    paths.dir.mkdir(parents=True, exist_ok=True)
    stop_unfinished_attempt(paths)
    settled = classify_case(paths)
    if settled.status is CaseStatus.COMPLETED:
        return settled
    stopped = stop_requested() or read_stop(str(paths.dir))  # the stop file: a run stopped elsewhere (Dask, Slurm)
    if stopped:
        raise RunInterrupted(f"case {case.variant_name!r} not started: the run was stopped ({stopped})")
    attempt = set_aside_previous_attempt(paths, fresh=fresh_attempt_dir)
    atomic_write_json(paths.config, config.to_json_dict())
    ran = None
    if code is not None:
        if code.patch:
            atomic_write_text(paths.code_patch, code.patch)
        ran = attempt_code(code.git, paths.code_patch.name if code.patch else None, python)

    # The waiter's instructions, and "started, never finished" until it says more.
    record = RunRecord(
        variant_name=case.variant_name,
        command=command,
        cwd=str(cwd),
        attempt=attempt,
        host=socket.gethostname(),
        worker=worker,
        started_at=utc_now_iso(),
        gpus=list(grant.gpus) if grant is not None and grant.gpus is not None else None,
        cpus=grant.cpus if grant is not None else None,
        code=ran,
        identity=identity,
    )
    write_record(paths.run_record, record)
    granted = granted_environment(grant.gpus, grant.cpus) if grant is not None else {}
    ooms = oom_kills()
    done = run_streaming(
        waiter_argv(paths, timeout_seconds),
        cwd=cwd,
        # ENTRY_POINT_ENV lets the spec's `config = MyConfig()` read this argv.
        env=case_environment({**os.environ, **granted, "PYTHONUNBUFFERED": "1", ENTRY_POINT_ENV: str(entry_point)}, entry_point),
        logs=None,  # the waiter writes them: they must not depend on this process living
        on_output=on_output,
        timeout_seconds=None,  # the waiter's: it outlives this process
        on_stop="forward",  # the run's stop request reaches the waiter, which records it
        # Forked by this process's waiter server: no interpreter start per case (Linux and
        # macOS; elsewhere a waiter process of its own).
        spawn=forked_waiter if _CAN_FORK else None,
    )
    now = read_record(paths.run_record, RunRecord).record or record
    if done.stopped == CANCELLED and now.interrupted is not None:
        # The waiter knows the signal it was sent; the run was cancelled (the UI, the API).
        now = now.model_copy(update={"interrupted": CANCELLED, "reason": interrupted_reason(CANCELLED)})
        write_record(paths.run_record, now)
    if done.interrupted is not None:
        # The waiter was sent SIGTERM (and SIGKILL after a grace): make sure its entry point went too.
        if now.pid is not None:
            stop_group_of(now.pid, now.command, now.pid_start, host=now.host)
        reason = f"runner interrupted ({type(done.interrupted).__name__}); process group killed"
        _record_end(paths, now, now.exit_code if now.exit_code is not None else -signal.SIGKILL, reason)
        raise done.interrupted
    if now.ended_at is None:
        # The waiter could not start, or died without recording the end.
        if now.pid is not None:
            stop_group_of(now.pid, now.command, now.pid_start, host=now.host)
        why = done.reason or f"exit code {done.exit_code}"
        if done.stopped is not None:  # stopped with the run, and killed after the grace period
            _record_end(paths, now, done.exit_code or -signal.SIGKILL, interrupted_reason(done.stopped), done.stopped)
        else:
            _record_end(paths, now, done.exit_code or -signal.SIGKILL, f"the case's waiter process ended without recording the end ({why})")
        _record_failure(paths, retry_on, ooms, lost=done.stopped is None)
    else:
        _record_failure(paths, retry_on, ooms)
    return classify_case(paths)


def _stderr_tail(paths: CasePaths) -> str:
    try:
        with open(paths.stderr, "rb") as fh:
            fh.seek(max(0, os.fstat(fh.fileno()).st_size - STDERR_TAIL_BYTES))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _record_failure(paths: CasePaths, retry_on: str | None, ooms_before: int | None, *, lost: bool = False) -> None:
    """Put a failed attempt's class in its run record (``failures.classify_failure``)."""
    record = read_record(paths.run_record, RunRecord).record
    if record is None or record.ended_at is None or (record.exit_code == 0 and not lost and record.interrupted is None):
        return
    if record.failure is not None:
        return  # classed by the waiter, which knew more (its Slurm job was ended under it: lost)
    ooms_after = oom_kills()
    found = classify_failure(
        record.exit_code, timed_out=record.timed_out, lost=lost, retry_on=retry_on,
        interrupted=record.interrupted is not None,
        stderr_tail=_stderr_tail(paths) if retry_on else "",
        oom_during=ooms_before is not None and ooms_after is not None and ooms_after > ooms_before,
    )
    if found is not None:
        write_record(paths.run_record, record.model_copy(update={"failure": found[0]}))
