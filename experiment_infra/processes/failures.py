"""Why an attempt failed, and whether that is worth another attempt.

A failed case is put in one class, recorded in its run record (``failure``) and shown by
the cases table and recovery:

- ``exit``: the entry point exited non-zero on its own: a bug or bad input, which fails
  the same way again. Not retried unless the suite lists the code (``retry_on_exit_codes``).
- ``retry_on``: its stderr matched one of the suite's ``retry_on`` patterns (``429|rate
  limit|Connection reset``): transient by the suite's own word.
- ``oom``: killed by SIGKILL while the kernel's OOM killer ran (``/proc/vmstat``'s
  ``oom_kill`` count rose during the attempt).
- ``signal``: killed by a signal nobody of this run sent (a preempting scheduler, an
  administrator's kill).
- ``timeout``: the run's own ``timeout_seconds`` killed it: it would run as long again.
- ``interrupted``: the user stopped the run (Ctrl-C, SIGTERM, a cancel from the UI).
- ``lost``: the process that watched it went away (a lost host, a Slurm job preempted
  or timed out, a lost Dask worker): the case never had its chance.

By default only the transient classes (``retry_on``, ``oom``, ``signal``, ``lost``) are
retried; ``exit`` only for the codes a suite names, ``timeout`` and ``interrupted`` never.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass
from typing import Literal, get_args


__all__ = [
    "DEFAULT_RETRIES",
    "FAILURE_KINDS",
    "TRANSIENT_KINDS",
    "FailureKind",
    "RetryPolicy",
    "classify_failure",
    "oom_kills",
]

FailureKind = Literal["exit", "retry_on", "oom", "signal", "timeout", "interrupted", "lost"]
FAILURE_KINDS: tuple[str, ...] = get_args(FailureKind)
TRANSIENT_KINDS: frozenset[str] = frozenset({"retry_on", "oom", "signal", "lost"})
# Attempts after the first, spent only on transient failures (``RetryPolicy``:
# a lost host or job, a signal from outside that is not the user's, an OOM kill, a
# ``retry_on`` match), which often pass on the next try. A plain non-zero exit, a timeout
# or the user's stop is never retried by default: a bug fails the same way again and would
# spend its compute twice. ``retries = 0`` turns retries off; ``retry_on_exit_codes``
# adds exit codes worth another attempt.
DEFAULT_RETRIES = 2
STDERR_TAIL_BYTES = 64 * 1024  # what a retry_on pattern is matched against: the end is where the error is


def oom_kills() -> int | None:
    """The kernel's count of processes its OOM killer ended since boot (None: not told)."""
    try:
        with open("/proc/vmstat", "rb") as f:
            for line in f:
                if line.startswith(b"oom_kill "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def classify_failure(
    exit_code: int | None,
    *,
    timed_out: bool = False,
    interrupted: bool = False,
    lost: bool = False,
    stderr_tail: str = "",
    retry_on: str | None = None,
    oom_during: bool = False,
) -> tuple[FailureKind, str] | None:
    """The class of a finished attempt and a few words on it; None for a success."""
    if interrupted:
        return "interrupted", "stopped by the user"
    if lost:
        return "lost", "the process watching it went away (lost host, job or worker)"
    if exit_code == 0:
        return None
    if timed_out:
        return "timeout", "killed at the run's timeout"
    if retry_on and stderr_tail:
        match = re.search(retry_on, stderr_tail, flags=re.IGNORECASE | re.MULTILINE)
        if match:
            return "retry_on", f"stderr matched retry_on: {match.group(0)[:80]!r}"
    if exit_code is None:
        return "lost", "no exit code was recorded"
    if exit_code < 0:
        sig = -exit_code
        if sig == signal.SIGKILL and oom_during:
            return "oom", "SIGKILL while the kernel's OOM killer ran (out of memory)"
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return "signal", f"killed by {name} from outside this run"
    return "exit", f"exit code {exit_code}"


@dataclass(frozen=True)
class RetryPolicy:
    """A suite's retry settings: how many, after which failures.

    ``retries``: attempts after the first. ``retry_on``: a regular expression matched
    against the end of the case's stderr. ``retry_on_exit_codes``: exit codes worth another
    attempt (say ``[1]`` for an entry point that fails transiently with 1).
    ``retry_kinds``: the classes retried (default: the transient ones).
    """

    retries: int = DEFAULT_RETRIES
    retry_on: str | None = None
    retry_on_exit_codes: tuple[int, ...] = ()
    retry_kinds: frozenset[str] = TRANSIENT_KINDS

    def worth_retrying(self, kind: str, exit_code: int | None) -> bool:
        if kind in ("interrupted", "timeout"):
            return False
        if kind == "exit":
            return exit_code in self.retry_on_exit_codes
        return kind in self.retry_kinds
