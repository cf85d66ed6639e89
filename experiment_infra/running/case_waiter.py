"""The process between a runner and a standard-mode entry point; it records the case's end.

    python experiment_infra/running/case_waiter.py CASE_DIR [--timeout SECONDS]

The runner writes the attempt's run record (the command, no pid, no end) and starts
this waiter in a session of its own; the waiter starts the entry point (in its own
process group, as before), writes its logs, fills in its pid, waits for it, enforces
the timeout and writes the end of the record, atomically. A runner that is killed
(SIGKILL, a lost laptop) therefore costs nothing: the entry point's output still
reaches its logs (nothing writes to a pipe nobody reads), and a case that finishes
afterwards reads ``completed``, so a resume does not run it again (submitit's job
process does the same for its jobs). The entry point's lines are also forwarded to
the waiter's stdout/stderr, for the runner's live log, while anyone reads them.

A resume that finds a leftover attempt still running stops the waiter (SIGKILL: it
writes nothing more) before the entry point's group, then sets the attempt aside.
Started by path, not ``-m``, so it runs from any working directory.
"""

from __future__ import annotations

if __name__ == "__main__":
    # Run as a script, sys.path[0] is experiment_infra/running/ (whose module names would shadow
    # top-level ones): the directory holding the package instead.
    import os
    import sys

    sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

import os
import signal
import sys
import threading

# The standard library's lighter half and the light core modules only: this process
# starts beside every case, so what it imports is paid once per case. Not the pydantic
# models (more CPU than a trivial case takes), nor typing, argparse, dataclasses or
# pathlib (together more than half of its start-up); tests/test_case_waiter.py checks.
from experiment_infra.clock import utc_now_iso
from experiment_infra.processes.interrupt import interrupted_reason
from experiment_infra.layout import waiter_files
from experiment_infra.layout.case_files import read_stop
from experiment_infra.processes.process import proc_start
from experiment_infra.records.run_record_io import read_run_record_json, update_run_record_json
from experiment_infra.running.slurm_job import ending_slurm_job
from experiment_infra.running.streaming import run_streaming

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType
    from typing import Any, Sequence

    from experiment_infra.layout import CasePaths

WAITER_SCRIPT = os.path.realpath(__file__)
BAD_INPUT_EXIT_CODE = 2
USAGE = "usage: case_waiter.py CASE_DIR [--timeout SECONDS]"


class Terminated(BaseException):
    """SIGTERM or SIGINT from the runner (the run was stopped): the entry point's group is
    terminated (SIGTERM, a grace period, SIGKILL) and the end recorded with the signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signame = signal.Signals(signum).name


def waiter_argv(paths: CasePaths, timeout_seconds: float | None, python: str = sys.executable) -> list[str]:
    # -S: no site-packages (the waiter needs the standard library and this package only,
    # found through sys.path[0]), which halves its start-up, paid once per case.
    argv = [python, "-S", WAITER_SCRIPT, str(paths.dir.resolve())]
    return argv + (["--timeout", repr(float(timeout_seconds))] if timeout_seconds is not None else [])


def is_waiter_of(argv: Sequence[str], paths: CasePaths) -> bool:
    """``argv`` (of a running process) is a waiter of the case at ``paths``."""
    args = list(argv[1:])
    if args[:1] == ["-S"]:
        args = args[1:]
    return (
        len(args) >= 2 and os.path.basename(args[0]) == os.path.basename(WAITER_SCRIPT)
        and args[1] == str(paths.dir.resolve())
    )


def _forward(stream: str, line: str) -> None:
    # Unbuffered: a runner that died leaves a broken pipe, and the write's error makes
    # the streamer stop forwarding (the logs are written either way).
    os.write(1 if stream == "stdout" else 2, (line + "\n").encode("utf-8", "replace"))


_signalled = False  # a signal came: the stop file's watcher then sends none of its own


def _terminated(signum: int, frame: FrameType | None) -> None:
    global _signalled
    _signalled = True
    raise Terminated(signum)


STOP_POLL_SECONDS = 0.5
# How often a running case's waiter touches its run record: the sign of life a task Dask
# runs again on another host waits on (``lost_attempt``), where no pid can be checked.
HEARTBEAT_SECONDS = 10.0


def _watch_stop_file(case_dir: str, run_record: str) -> threading.Event:
    """A thread that sends this process the signal the run's stop file names once it appears
    (then the signal's own path stops the entry point and records the end), and touches the
    run record every ``HEARTBEAT_SECONDS``; set the returned event to end it."""
    done = threading.Event()

    def watch() -> None:
        beats = 0
        while not done.wait(STOP_POLL_SECONDS):
            beats += 1
            if beats * STOP_POLL_SECONDS >= HEARTBEAT_SECONDS:
                beats = 0
                try:
                    os.utime(run_record)
                except OSError:
                    pass  # moved aside or unwritable: a missed beat, nothing more
            why = read_stop(case_dir)
            if why is not None and not _signalled:
                signum = getattr(signal, why, signal.SIGTERM) if why.startswith("SIG") else signal.SIGTERM
                os.kill(os.getpid(), signum)
                return

    threading.Thread(target=watch, name="watch-stop-file", daemon=True).start()
    return done


def _still_this_attempt(run_record: str, mine: dict[str, Any]) -> bool:
    """The record on disk is still this attempt's, unfinished (nobody took the case over)."""
    now, _ = read_run_record_json(run_record)
    identity = ("attempt", "pid", "started_at")
    return now is not None and now.get("ended_at") is None and all(now.get(k) == mine.get(k) for k in identity)


def wait_case(case_dir: str, timeout_seconds: float | None) -> int:
    """Run the command of the case's run record to its end and record that end; the exit code."""
    run_record, stdout_log, stderr_log = waiter_files(case_dir)
    record, problem = read_run_record_json(run_record)
    if record is None:
        print(f"error: {run_record}: {problem}; the runner writes it before starting the waiter", file=sys.stderr)
        return BAD_INPUT_EXIT_CODE

    def started(pid: int) -> None:
        nonlocal record
        record = update_run_record_json(run_record, record, pid=pid, pid_start=proc_start(pid))

    # Its own session: a terminal's Ctrl-C never reaches it; the runner forwards the signal
    # it received (interrupt.tracked), and a killed runner sends nothing: the case runs on.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _terminated)
    # On another host (a Dask or Slurm worker) no signal can reach it: the stopped run's
    # stop file, in the run directory on the shared filesystem, says the same.
    watching = _watch_stop_file(case_dir, run_record)
    with open(stdout_log, "wb") as out_log, open(stderr_log, "wb") as err_log:
        done = run_streaming(
            record["command"], cwd=record["cwd"], env=dict(os.environ), logs=(out_log, err_log),
            on_output=_forward, timeout_seconds=timeout_seconds, on_start=started,
        )
    watching.set()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_IGN)  # the end is written whole, whatever comes now
    end: dict[str, Any] = dict(reason=done.reason)
    if isinstance(done.interrupted, Terminated):
        end = dict(reason=interrupted_reason(done.interrupted.signame), interrupted=done.interrupted.signame)
        lost = None if read_stop(case_dir) is not None else ending_slurm_job()
        if lost is not None:
            # Not the run's stop (no stop file): Slurm ended the job the case ran in (scancel,
            # preemption, walltime). The case never had its chance: a transient failure.
            job, state = lost
            end = dict(reason=f"lost: Slurm ended its job {job} under it (job state {state})", interrupted=None, failure="lost")
    if _still_this_attempt(run_record, record):
        update_run_record_json(
            run_record, record, ended_at=utc_now_iso(), exit_code=done.exit_code,
            duration_seconds=done.duration_seconds, timed_out=done.timed_out, **end,
        )
    return 0


def _parse(argv: list[str]) -> tuple[str, float | None] | str:
    """``(case_dir, timeout)`` from ``CASE_DIR [--timeout SECONDS]``, or what is wrong with it."""
    rest, timeout = list(argv), None
    if "--timeout" in rest:
        at = rest.index("--timeout")
        if at + 1 >= len(rest):
            return "--timeout needs a number of seconds"
        try:
            timeout = float(rest[at + 1])
        except ValueError:
            return f"--timeout: {rest[at + 1]!r} is not a number of seconds"
        del rest[at : at + 2]
    if len(rest) != 1 or rest[0].startswith("-"):
        return f"expected one case directory, got {' '.join(rest) or 'none'}"
    return rest[0], timeout


def main(argv: list[str] | None = None) -> int:
    # Parsed by hand: argparse alone would add a fifth to the start-up of every case.
    parsed = _parse(sys.argv[1:] if argv is None else argv)
    if isinstance(parsed, str):
        print(f"error: case_waiter.py: {parsed} ({USAGE})", file=sys.stderr)
        return BAD_INPUT_EXIT_CODE
    return wait_case(*parsed)


if __name__ == "__main__":
    sys.exit(main())
