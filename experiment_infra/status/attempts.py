"""A standard-mode case's failure history: each attempt's failure class, oldest first.

Read from its run records (the attempts set aside under ``{variant}/.attempts/``, then the
current one), so the suite run's cases table, its report and recovery say the same thing
in the same words: ``signal, exit`` (killed from outside, retried, then a plain non-zero
exit), ``signal, -`` (killed, then completed on the retry).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..layout import CasePaths
from ..processes.failures import FailureKind
from ..records import RunRecord, read_record

__all__ = ["attempt_failures", "failures_text"]


def attempt_failures(paths: CasePaths, current: RunRecord | None) -> tuple[FailureKind | None, ...]:
    """Each attempt's failure class, oldest first (``processes.failures.FailureKind``; None: that
    attempt did not fail, or its record predates classes or cannot be read). ``current`` is the
    case directory's own run record (None: the current attempt never started). Empty when no
    attempt recorded a class: a case that never failed has no history worth a column."""
    # ``.attempts`` is the runner's own directory; a link in its place was not made by it
    # and may lead anywhere, so it is not followed (its records are not this case's).
    kept = [] if paths.attempts_dir.is_symlink() else paths.kept_attempts()
    found: list[FailureKind | None] = []
    for n in kept:
        record = read_record(paths.attempt_run_record(n), RunRecord).record
        found.append(record.failure if record is not None else None)
    if current is not None:
        found.append(current.failure)
    return tuple(found) if any(found) else ()


def failures_text(failures: Sequence[str | None]) -> str:
    """``signal, exit``: each attempt's class, oldest first (``-``: that attempt recorded none,
    or, alone, no attempt did)."""
    return ", ".join(f or "-" for f in failures) or "-"
