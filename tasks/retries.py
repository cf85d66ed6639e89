"""How every Prefect task of this project waits between retries: exponential backoff.

``retry_delay_seconds`` of a suite or an agent-evaluation experiment is the first
delay; each later retry waits twice as long as the one before (delay, 2×delay,
4×delay, ...), as Prefect's own ``exponential_backoff`` computes it. One helper, so
a case, an agent run, a judge slot and a recovery's reruns of the same experiment
back off alike.
"""

from __future__ import annotations

from typing import Any

from prefect.tasks import exponential_backoff

__all__ = ["retry_options"]


def retry_options(retries: int, delay_seconds: float) -> dict[str, Any]:
    """``Task.with_options`` keywords: ``retries`` retries, backing off from ``delay_seconds``."""
    return {"retries": retries, "retry_delay_seconds": exponential_backoff(backoff_factor=float(delay_seconds))}
