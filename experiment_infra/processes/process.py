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

from ..clock import utc_now_iso
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


_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))


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


# Every process these tools stop and did not just start themselves (an earlier attempt's
# agent, judge, entry point or case waiter, found from a record) must be proven to be the
# one recorded: same host, same pid, same start time (clock ticks since boot, from
# /proc/PID/stat) and same command line. A pid alone may have been reused by anything.
#
# The members of a process group are proven through the group's leader, or through a
# marker. While the recorded leader runs (proven), every process in its group is its
# own: Linux gives no new process the pid of a live process nor of a group that still
# has members, so group id == leader pid means "the group that leader made". Once the
# leader is gone that no longer holds: the pid can be reused by a new session leader
# (an unrelated `sleep`'s group, say) whose members then carry the same group id, and
# start times cannot tell them apart (both groups' members started after the recorded
# leader). So a command started for a record gets a random marker in its environment
# (MARKER_ENV), written beside its pid; every process it forks inherits it, and a
# member of a leaderless group is stopped only if /proc/PID/environ (readable for our
# own user's processes only) holds that exact marker. A member that cleared its
# environment is left running: never stopping something is the safe side.
#
# Each process is held by a pidfd (Linux 5.3+) opened before it is checked, and
# signalled through it: if the pid is reused between the check and the signal, the
# pidfd still names the process that was checked (gone by then), so the signal reaches
# nobody. Without pidfds the signal goes by pid right after the check.

MARKER_ENV = "EXPERIMENT_INFRA_PROCESS"


def new_marker() -> str:
    """A marker for ``MARKER_ENV``: random, so no other command's environment holds it."""
    return os.urandom(16).hex()


def _environ_holds(pid: int, marker: str) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            raw = fh.read()
    except OSError:
        return False
    return f"{MARKER_ENV}={marker}".encode() in raw.split(b"\0")


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _send(pid: int, fd: int | None, sig: int) -> None:
    try:
        if fd is not None:
            signal.pidfd_send_signal(fd, sig)
        else:
            os.kill(pid, sig)
    except OSError:  # gone meanwhile (or not ours to signal): nothing to do
        pass


def is_recorded(pid: int, argv: Sequence[str], pid_start: str | None) -> bool:
    """The live process ``pid`` is the one recorded (start time and command line)."""
    return pid_start is not None and proc_start(pid) == pid_start and not is_zombie(pid) and running_command(pid) == list(argv)


def _proven_group(pgid: int, argv: Sequence[str], pid_start: str, marker: str | None) -> tuple[dict[int, int | None], bool]:
    """The processes proven to be the recorded leader ``pgid`` or of its group, each with a
    pidfd (or None) to signal it by; and whether the leader itself is among them."""
    def member(pid: int) -> bool:
        fields = _stat_fields(pid)
        return (
            fields is not None and len(fields) > 19 and int(fields[2]) == pgid and not fields[0].startswith(b"Z")
            and int(fields[19]) >= int(pid_start)  # started before the leader: not its own
        )

    candidates: dict[int, int | None] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit() or int(entry) in (os.getpid(), pgid) or not member(int(entry)):
            continue
        pid = int(entry)
        fd = _pidfd(pid)
        if member(pid):  # read again once held: the process checked is the one held, or it is gone
            candidates[pid] = fd
        else:
            _close(fd)
    leader_fd = _pidfd(pgid)
    # Checked after the members' group ids were read: a leader proven now ran then too.
    leader = is_recorded(pgid, argv, pid_start)
    held = {}
    for pid, fd in candidates.items():
        if leader or (marker is not None and _environ_holds(pid, marker)):
            held[pid] = fd
        else:
            _close(fd)
    if leader:
        held[pgid] = leader_fd
    else:
        _close(leader_fd)
    return held, leader


def _close(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


def _gone(pid: int, fd: int | None, pid_start: str | None) -> bool:
    if fd is not None:
        import select  # here: only a stop waits

        return bool(select.select([fd], [], [], 0)[0])  # a pidfd reads ready once its process ended
    return not pid_alive(pid) or proc_start(pid) != pid_start


def stop_recorded_group(
    pid: int, host: str | None, argv: Sequence[str], pid_start: str | None, marker: str | None = None,
    grace: float = KILL_GRACE_SECONDS,
) -> int:
    """Stop the recorded process ``pid`` (a process group leader started for ``argv``) and
    the members of its group that are proven to be its own (see above); how many processes
    were signalled, 0 when nothing could be proven.

    A live leader and its group get SIGTERM, then SIGKILL after ``grace`` (or once the
    leader ended); what its dead leader left (marked members) gets SIGKILL at once.
    """
    import socket  # here: the case waiter imports this module and never gets this far

    if host != socket.gethostname() or pid_start is None or not pid_start.isdigit():
        return 0
    held, leader = _proven_group(pid, argv, pid_start, marker)
    try:
        if leader:
            for member, fd in held.items():
                _send(member, fd, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and not _gone(pid, held[pid], pid_start):
                time.sleep(0.05)
            # Members forked meanwhile, proven the same way (the leader may be gone by now).
            more, _ = _proven_group(pid, argv, pid_start, marker)
            for member, fd in more.items():
                if member in held:
                    _close(fd)
                else:
                    held[member] = fd
        for member, fd in held.items():
            _send(member, fd, signal.SIGKILL)
        return len(held)
    finally:
        for fd in held.values():
            _close(fd)


def stop_group_of(pid: int, argv: Sequence[str], pid_start: str | None, *, host: str | None, grace: float = KILL_GRACE_SECONDS) -> bool:
    """``stop_recorded_group`` for a leader that must still run: True if it was stopped
    (the case's entry point, from its run record)."""
    if not is_recorded(pid, argv, pid_start):
        return False
    return stop_recorded_group(pid, host, argv, pid_start, None, grace) > 0


def stop_parent(pid: int, argv: Sequence[str], pid_start: str | None, is_parent: Callable[[list[str]], bool]) -> int | None:
    """SIGKILL the parent of the recorded process ``pid`` if ``is_parent`` accepts its command
    line (a case's waiter, whose entry point ``pid`` is); its pid, or None.

    Proof: a process's parent pid names a live process (an orphan's parent becomes init or
    a subreaper), so a parent read, held by a pidfd and read again unchanged while the
    child is still the recorded one is that child's parent.
    """
    fields = _stat_fields(pid)
    if fields is None or len(fields) <= 1:
        return None
    parent = int(fields[1])
    fd = _pidfd(parent)
    try:
        command = running_command(parent)
        again = _stat_fields(pid)
        if command is None or not is_parent(command) or again is None or int(again[1]) != parent or not is_recorded(pid, argv, pid_start):
            return None
        _send(parent, fd, signal.SIGKILL)
        return parent
    finally:
        _close(fd)


def stop_leftover(
    pid: int, host: str, argv: Sequence[str], pid_start: str | None, marker: str | None = None
) -> str | None:
    """Stop what is left on this host of a process group started for ``argv`` (an earlier
    attempt whose runner was killed); a sentence saying what was stopped, or None.

    The leader must be the recorded one (host, pid, start time, command line); what a
    dead leader left is stopped only where it carries the leader's ``marker``.
    """
    leader_running = is_recorded(pid, argv, pid_start)
    count = stop_recorded_group(pid, host, argv, pid_start, marker)
    if not count:
        return None
    if leader_running:
        return f"stopped pid {pid} ({argv[0]}), still running from an earlier attempt"
    return f"stopped {count} process(es) an earlier attempt's pid {pid} ({argv[0]}) left running"


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
