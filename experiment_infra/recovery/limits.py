"""When a recovery may run again what a rate limit stopped.

A run or judge slot that failed on a limit (``status_limits``) is rerun only once the limit
should have lifted: the ``Retry-After`` or reset time its failure gave, counted from when it
failed (the failure record's modification time), else ``DEFAULT_BACKOFF_SECONDS`` after it.
Those reruns go one at a time, never in a burst into the same limit. One whose limit is
further off than ``HOLD_SECONDS`` is left for a later recovery (the nightly's next night).
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from typing import NamedTuple

from ..layout import ExperimentPaths
from ..status.limits import is_rate_limited, retry_after_seconds
from .survey import RunWork

__all__ = ["DEFAULT_BACKOFF_SECONDS", "HOLD_SECONDS", "LimitPlan", "plan_limits"]

DEFAULT_BACKOFF_SECONDS = 60.0
HOLD_SECONDS = 15 * 60.0


class LimitPlan(NamedTuple):
    """The planned runs a limit stopped: those to wait for (seconds from now, the longest
    of them), run one at a time, and those held for a later recovery, with why."""

    limited: tuple[str, ...]  # labels, in order: each waits for the one before
    wait_seconds: float
    held: tuple[tuple[str, str], ...]


def _failed_at(exp: ExperimentPaths, work: RunWork, slot: int | None) -> float | None:
    run = exp.run_found(work.tier, work.subtest, work.run)
    path = run.command_log if slot is None else run.judge_slot(slot).timing
    try:
        return os.lstat(path).st_mtime
    except OSError:
        return None


def remaining_seconds(exp: ExperimentPaths, work: RunWork, now: float | None = None) -> float | None:
    """Seconds until the limit that stopped this planned run should lift (0 when it has);
    None when no limit stopped it."""
    now = time.time() if now is None else now
    stops: list[tuple[str, int | None]] = []
    if work.rerun_agent and is_rate_limited(work.reason):
        stops.append((work.reason, None))
    stops += [(j.reason, j.slot) for j in work.judges if j.slot in work.judge_slots and is_rate_limited(j.reason)]
    if not stops:
        return None
    left = 0.0
    for reason, slot in stops:
        failed = _failed_at(exp, work, slot)
        at = datetime.fromtimestamp(failed if failed is not None else now, timezone.utc)
        wait = retry_after_seconds(reason, now=at)
        ends = at.timestamp() + (wait if wait is not None else DEFAULT_BACKOFF_SECONDS)
        left = max(left, ends - now)
    return left


def plan_limits(exp: ExperimentPaths, planned: tuple[RunWork, ...] | list[RunWork], now: float | None = None) -> LimitPlan:
    limited: list[str] = []
    held: list[tuple[str, str]] = []
    wait = 0.0
    for work in planned:
        left = remaining_seconds(exp, work, now)
        if left is None:
            continue
        if left > HOLD_SECONDS:
            held.append((work.label, f"rate limited; the limit should lift in about {left / 3600:.1f} h: left for a later recovery"))
        else:
            limited.append(work.label)
            wait = max(wait, left)
    return LimitPlan(tuple(limited), wait, tuple(held))
