"""Subprocess plumbing shared by every runner: process groups, timeouts, exit reasons.

Each command gets its own process group, so a timeout (or an interrupted runner)
kills everything it started, not just the first process. ``run_logged`` sends output
straight to files: a grandchild that keeps the descriptors open cannot block it.
"""

from __future__ import annotations

import os
import sys
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from .records import utc_now_iso

TIMEOUT_EXIT_CODE = 124  # what coreutils `timeout` reports
START_FAILED_EXIT_CODE = 127  # what a shell reports for a command it could not start
KILL_GRACE_SECONDS = 5.0
MAX_REASON_CHARS = 300


@dataclass(frozen=True)
class ProcessResult:
    exit_code: int
    started_at: str
    ended_at: str
    duration_seconds: float
    timed_out: bool = False
    reason: str | None = None


def kill_group(proc: subprocess.Popen[bytes], grace: float = KILL_GRACE_SECONDS) -> None:
    """SIGTERM the process group of ``proc`` (started with start_new_session), SIGKILL after ``grace``."""
    # Only while the leader is unreaped: its pid (the group id) cannot belong to anyone else.
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    try:
        # Members that ignored SIGTERM (or outlived the leader) get SIGKILL.
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _stat_fields(pid: int) -> list[bytes] | None:
    """Fields 3 onwards of ``/proc/PID/stat`` (Linux), or None if it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return raw[raw.rfind(b")") + 2 :].split()


def proc_start(pid: int) -> str | None:
    """The process start time in clock ticks since boot (Linux), or None if unknown."""
    fields = _stat_fields(pid)
    return fields[19].decode() if fields is not None and len(fields) > 19 else None


def is_zombie(pid: int) -> bool:
    fields = _stat_fields(pid)
    return bool(fields) and fields[0].startswith(b"Z")


def pid_alive(pid: int) -> bool:
    """A process ``pid`` runs on this machine (a zombie does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user
    except OSError:
        return True  # cannot tell: assume alive, so nothing of a live process is touched
    return not is_zombie(pid)


def running_command(pid: int) -> list[str] | None:
    """The argv of a live process on this machine (Linux ``/proc``); None if gone or unknown."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if not raw:  # a zombie, or a kernel thread
        return None
    return [os.fsdecode(arg) for arg in raw.split(b"\0")[:-1]]


def processes_running(match: Callable[[list[str]], bool]) -> list[int]:
    """Pids of the live processes on this machine whose argv ``match`` accepts (Linux ``/proc``)."""
    found = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit() and int(entry) != os.getpid():
            argv = running_command(int(entry))
            if argv is not None and match(argv):
                found.append(int(entry))
    return found


def wait_exit(pid: int, timeout: float) -> bool:
    """Wait for a process that is not our child to end; True if it did within ``timeout``."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def stop_group_of(pid: int, argv: Sequence[str], grace: float = KILL_GRACE_SECONDS) -> bool:
    """SIGTERM, then SIGKILL, the process group led by ``pid``, if that process still runs
    exactly ``argv``; True if it was stopped.

    For a process that is not our child (its runner was killed): a pid alone may have
    been reused, so it is identified by its command line as well.
    """
    argv = list(argv)
    if running_command(pid) != argv:
        return False
    try:
        if os.getpgid(pid) != pid:
            return False
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and running_command(pid) == argv:
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)  # members that ignored SIGTERM (the group outlives its leader)
    except (ProcessLookupError, PermissionError):
        pass
    return True


def last_line(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, os.fstat(fh.fileno()).st_size - 4096))
            lines = [ln.strip() for ln in fh.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def describe_exit(exit_code: int, last_stderr: str = "") -> str | None:
    """``exit code N`` / ``killed by signal SIGX``, with the last stderr line; None for 0."""
    if exit_code == 0:
        return None
    if exit_code < 0:
        try:
            why = f"killed by signal {signal.Signals(-exit_code).name}"
        except ValueError:
            why = f"killed by signal {-exit_code}"
    else:
        why = f"exit code {exit_code}"
    return (why + (f" (last stderr line: {last_stderr})" if last_stderr else ""))[:MAX_REASON_CHARS]


def run_logged(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    stdout_path: Path,
    stderr_path: Path,
    timeout_seconds: float,
) -> ProcessResult:
    """Run ``argv`` to completion or timeout; the exit code of a timeout is 124."""
    started_at = utc_now_iso()
    start = time.monotonic()
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        try:
            proc = subprocess.Popen(
                list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                stdout=out, stderr=err, start_new_session=True,
            )
        except OSError as exc:
            return ProcessResult(
                START_FAILED_EXIT_CODE, started_at, utc_now_iso(), 0.0,
                reason=f"could not start {argv[0]}: {exc.strerror or exc}",
            )
        try:
            proc.wait(timeout=timeout_seconds)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            return ProcessResult(
                TIMEOUT_EXIT_CODE, started_at, utc_now_iso(), round(time.monotonic() - start, 6),
                timed_out=True, reason=f"timed out after {timeout_seconds:g} s; process group killed",
            )
        except BaseException:  # interrupted runner (Ctrl-C, Prefect cancellation): leave nothing running
            kill_group(proc, 1.0)
            raise
    duration = round(time.monotonic() - start, 6)
    return ProcessResult(proc.returncode, started_at, utc_now_iso(), duration, reason=describe_exit(proc.returncode, last_line(stderr_path)))


def drop_stdout() -> None:
    """The reader of stdout went away (``... | head``): point stdout at /dev/null, so what
    is left to print, and the interpreter's flush at exit, fail no more (no traceback)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
