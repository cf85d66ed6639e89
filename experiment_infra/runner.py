"""Run one attempt of one standard-mode case in a fresh subprocess (no Prefect here).

The disk is the truth about a case: ``config.json`` is written before the process
starts, the run record when it starts (no end) and again when it ends. A runner that
is killed therefore leaves a record saying the case started and never finished, and
``status.classify_case`` reads that back. Earlier attempts (everything in the case
directory) are moved aside, never deleted, so a retry cannot destroy the evidence of
why the first attempt failed.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable

from .atomic import atomic_write_json, move_aside
from .case import ExperimentCase
from .config import ENTRY_POINT_ENV, BaseExperimentConfig, ConfigError
from .layout import CasePaths
from .process import START_FAILED_EXIT_CODE, describe_exit, kill_group, stop_group_of
from .records import RunRecord, read_record, utc_now_iso, write_record
from .status import CaseClassification, classify_case

# (stream, line): stream is "stdout" or "stderr", line has no trailing newline.
OutputCallback = Callable[[str, str], None]

# After the entry point exits, a grandchild that kept its stdout open would keep the
# logs open forever; past this delay the rest of its process group is killed.
DRAIN_SECONDS = 5.0
POLL_SECONDS = 0.5  # how often a silent case is checked for exit and timeout


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
    that orphan write into the case directory beside the new attempt.
    """
    record = read_record(paths.run_record, RunRecord).record
    if record is None or record.ended_at is not None or record.pid is None or record.host != socket.gethostname():
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


class _Stream:
    """One pipe of the case: bytes go to its log file as they come, lines to the callback."""

    def __init__(self, name: str, pipe: IO[bytes], log: IO[bytes] | None, on_output: OutputCallback | None) -> None:
        self.name, self.pipe, self.log, self.on_output = name, pipe, log, on_output
        self.pending = b""
        self.last_line = ""

    def feed(self, data: bytes) -> None:
        if self.log is not None:
            self.log.write(data)
            self.log.flush()
        *lines, self.pending = (self.pending + data).split(b"\n")
        for line in lines:
            self._emit(line)

    def close(self) -> None:
        if self.pending:
            self._emit(self.pending)
            self.pending = b""
        self.pipe.close()

    def _emit(self, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        if line.strip():
            self.last_line = line.strip()
        if self.on_output is not None:
            try:
                self.on_output(self.name, line)
            except Exception:  # a broken log forwarder must not cost the log file
                self.on_output = None


def _pump(
    proc: subprocess.Popen[bytes], streams: list[_Stream], deadline: float | None, drain: float = DRAIN_SECONDS
) -> bool:
    """Copy the pipes until both close; return True if ``deadline`` passed first.

    Runs in the calling thread (no reader threads: with hundreds of cases their
    start-up showed in the per-case overhead). A grandchild that keeps a pipe open
    after the entry point exited gets ``drain`` seconds, then its group is killed; a
    pipe still open a second later (held by a process that left the group) is given up.
    """
    selector = selectors.DefaultSelector()
    for stream in streams:
        selector.register(stream.pipe, selectors.EVENT_READ, stream)
    exited_at: float | None = None
    killed = False
    try:
        while selector.get_map():
            now = time.monotonic()
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > drain:
                if killed and now - exited_at > drain + 1.0:
                    return False
                if not killed:
                    kill_group(proc, grace=0.5)
                    killed = True
            # The timeout is the entry point's: once it has exited, only the drain delay applies
            # (a leftover child holding the pipe must not turn a finished case into a timeout).
            if deadline is not None and now >= deadline and exited_at is None:
                return True
            wait = POLL_SECONDS if deadline is None or exited_at is not None else min(POLL_SECONDS, deadline - now)
            for key, _ in selector.select(wait):
                stream = key.data
                data = os.read(key.fd, 65536)
                if data:
                    stream.feed(data)
                else:
                    selector.unregister(key.fileobj)
                    stream.close()
    finally:
        selector.close()
    return False


@dataclass(frozen=True)
class Streamed:
    """How a streamed subprocess ended."""

    exit_code: int
    duration_seconds: float
    timed_out: bool
    reason: str | None
    interrupted: BaseException | None = None


def run_streaming(
    command: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    logs: tuple[IO[bytes], IO[bytes]] | None,
    on_output: OutputCallback | None,
    timeout_seconds: float | None,
    on_start: Callable[[int], None] | None = None,
) -> Streamed:
    """Run ``command`` in its own process group, copying its output to ``logs`` and ``on_output``.

    Never raises for the command's own failures; an interrupted runner (Ctrl-C,
    Prefect cancellation) kills the group and reports the exception in ``interrupted``.
    """
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: a timeout kills grandchildren too
        )
    except OSError as exc:
        return Streamed(START_FAILED_EXIT_CODE, 0.0, False, f"could not start {command[0]}: {exc.strerror or exc}")
    if on_start is not None:
        on_start(proc.pid)
    assert proc.stdout is not None and proc.stderr is not None
    out_log, err_log = logs if logs is not None else (None, None)
    streams = [_Stream("stdout", proc.stdout, out_log, on_output), _Stream("stderr", proc.stderr, err_log, on_output)]
    deadline = started + timeout_seconds if timeout_seconds is not None else None

    timed_out = False
    interrupted: BaseException | None = None
    try:
        timed_out = _pump(proc, streams, deadline)
        if not timed_out:
            proc.wait(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        timed_out = True
    except BaseException as exc:  # KeyboardInterrupt, Prefect cancellation, ...
        interrupted = exc
        kill_group(proc)
    if timed_out:
        kill_group(proc)
    # Whatever the killed group wrote last still belongs in the logs.
    unread = [s for s in streams if not s.pipe.closed]
    if unread:
        _pump(proc, unread, None, drain=1.0)
    for stream in unread:
        if not stream.pipe.closed:
            stream.close()

    exit_code = proc.returncode if proc.returncode is not None else -signal.SIGKILL
    if timed_out:
        reason: str | None = f"timed out after {timeout_seconds:g} s; process group killed"
    elif interrupted is not None:
        reason = f"runner interrupted ({type(interrupted).__name__}); process group killed"
    else:
        reason = describe_exit(exit_code, streams[1].last_line)
    return Streamed(exit_code, round(time.monotonic() - started, 3), timed_out, reason, interrupted)


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
    records the attempt as failed before re-raising.
    """
    config = case_config(case, paths)
    command = _command(config, case.variant_name, entry_point, python)
    cwd = Path(cwd) if cwd is not None else Path.cwd()
    paths.dir.mkdir(parents=True, exist_ok=True)
    stop_unfinished_attempt(paths)
    attempt = set_aside_previous_attempt(paths)
    atomic_write_json(paths.config, config.to_json_dict())

    record = RunRecord(
        variant_name=case.variant_name,
        command=command,
        cwd=str(cwd),
        attempt=attempt,
        host=socket.gethostname(),
        started_at=utc_now_iso(),
    )

    def started(pid: int) -> None:
        nonlocal record
        record = record.model_copy(update={"pid": pid})
        write_record(paths.run_record, record)

    with open(paths.stdout, "wb") as out_log, open(paths.stderr, "wb") as err_log:
        done = run_streaming(
            command,
            cwd=cwd,
            # ENTRY_POINT_ENV lets the spec's `config = MyConfig()` read this argv.
            env={**os.environ, "PYTHONUNBUFFERED": "1", ENTRY_POINT_ENV: str(entry_point)},
            logs=(out_log, err_log),
            on_output=on_output,
            timeout_seconds=timeout_seconds,
            on_start=started,
        )
    write_record(
        paths.run_record,
        record.model_copy(
            update={
                "ended_at": utc_now_iso(),
                "exit_code": done.exit_code,
                "duration_seconds": done.duration_seconds,
                "timed_out": done.timed_out,
                "reason": done.reason,
            }
        ),
    )
    if done.interrupted is not None:
        raise done.interrupted
    return classify_case(paths)
