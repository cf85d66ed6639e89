"""Subprocess plumbing shared by every runner: process groups, timeouts, exit reasons.

Each command gets its own process group, so a timeout (or an interrupted runner)
kills everything it started, not just the first process. ``run_logged`` sends output
straight to files: a grandchild that keeps the descriptors open cannot block it.
"""

from __future__ import annotations

import os
import signal
import sys
import subprocess
import time
from collections import namedtuple

from .clock import utc_now_iso
from .interrupt import interrupted_reason, stop_requested, tracked

# Neither typing, dataclasses nor pathlib at run time: the case waiter, which starts
# beside every case, imports this module, and those three would double its start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Callable, Mapping, Sequence

TIMEOUT_EXIT_CODE = 124  # what coreutils `timeout` reports
START_FAILED_EXIT_CODE = 127  # what a shell reports for a command it could not start
KILL_GRACE_SECONDS = 5.0
MAX_REASON_CHARS = 300


# Run in front of a command that must not outlive the process that started it (agents and
# judges: an orphan spends money on a result nobody records). It asks Linux to SIGKILL it
# when its parent dies (PR_SET_PDEATHSIG survives exec), gives up if the parent is
# already gone, then becomes the command (same pid). Elsewhere it only execs: the
# command's process record is then what finds an orphan.
DIE_WITH_PARENT = """
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1: PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass
if os.getppid() != int(sys.argv[1]):
    os._exit(137)
try:
    os.execvp(sys.argv[2], sys.argv[2:])
except OSError as exc:
    print(f"could not start {sys.argv[2]}: {exc.strerror or exc}", file=sys.stderr)
    os._exit(127)
"""


def dying_with_parent(argv: Sequence[str]) -> list[str]:
    """``argv`` behind the DIE_WITH_PARENT prelude (``-I -S``: no site, no environment
    variables of Python's own, so it starts in milliseconds and imports nothing of the user's)."""
    return [sys.executable, "-I", "-S", "-c", DIE_WITH_PARENT, str(os.getpid()), *argv]


_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def package_env() -> dict[str, str]:
    """This environment with this package importable: for ``python -m experiment_infra...``
    helpers started from anywhere (any working directory, an installed or a source tree)."""
    path = os.pathsep.join(p for p in (_PACKAGE_PARENT, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, which a container or taskset narrows)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class ProcessResult(
    namedtuple("ProcessResult", "exit_code started_at ended_at duration_seconds timed_out reason", defaults=(False, None))
):
    """How ``run_logged``'s command ended: ``exit_code`` (int), ``started_at`` and ``ended_at``
    (ISO text), ``duration_seconds`` (float), ``timed_out`` (bool), ``reason`` (text or None)."""

    __slots__ = ()


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
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
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
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            raw = fh.read()
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


def _group_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[2]) if fields is not None and len(fields) > 2 else None


def stop_leftover(pid: int, host: str, argv: Sequence[str], pid_start: str | None) -> str | None:
    """Stop what is left on this host of a process group started for ``argv`` (an earlier
    attempt whose runner was killed); a sentence saying what was stopped, or None.

    The leader is identified by its command line and start time (a pid alone may have been
    reused). A group whose leader is gone is still stopped: while a group has members its
    id cannot be given to another process, so they can only be that leader's leftovers.
    """
    import socket  # here: the case waiter imports this module and never gets this far

    if host != socket.gethostname():
        return None
    if pid_alive(pid):
        if running_command(pid) != list(argv) or (pid_start is not None and proc_start(pid) != pid_start):
            return None
        return f"stopped pid {pid} ({argv[0]}), still running from an earlier attempt" if stop_group_of(pid, argv) else None
    members = [int(e) for e in (os.listdir("/proc") if os.path.isdir("/proc") else []) if e.isdigit() and int(e) != pid and _group_of(int(e)) == pid and pid_alive(int(e))]
    if not members:
        return None
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return None
    return f"stopped {len(members)} process(es) an earlier attempt's pid {pid} ({argv[0]}) left running"


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
    die_with_parent: bool = False,
    on_start: Callable[[int, str], None] | None = None,
) -> ProcessResult:
    """Run ``argv`` to completion or timeout; the exit code of a timeout is 124.

    ``die_with_parent``: the command is killed if this process dies (Linux; see
    DIE_WITH_PARENT). ``on_start(pid, started_at)`` is called once it runs, to record it.
    """
    started_at = utc_now_iso()
    start = time.monotonic()
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        try:
            proc = subprocess.Popen(
                dying_with_parent(argv) if die_with_parent else list(argv), cwd=cwd, env=dict(env),
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True,
            )
        except OSError as exc:
            return ProcessResult(
                START_FAILED_EXIT_CODE, started_at, utc_now_iso(), 0.0,
                reason=f"could not start {argv[0]}: {exc.strerror or exc}",
            )
        try:
            if on_start is not None:
                on_start(proc.pid, started_at)
            with tracked(proc):  # the run's Ctrl-C (interrupt.py) terminates its group
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
    stopped = stop_requested()
    if stopped is not None and proc.returncode != 0:
        return ProcessResult(proc.returncode, started_at, utc_now_iso(), duration, reason=interrupted_reason(stopped))
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
