"""What a task does while the run is stopping (Ctrl-C, SIGTERM, a cancellation): it starts
nothing and is not retried. See ``experiment_infra.processes.interrupt`` and ``flows/stopping.py``."""

from __future__ import annotations

from prefect.states import Cancelled, State

from experiment_infra.processes.interrupt import CANCELLED as CANCELLED_FROM_API
from experiment_infra.processes.interrupt import stop_requested

__all__ = ["CANCELLED_FROM_API", "not_started", "stop_message", "unless_stopped"]



def stop_message() -> str:
    """Why the run is stopping, as a person reads it."""
    why = stop_requested()
    if why == CANCELLED_FROM_API:
        return "cancelled from the Prefect UI or API"
    return f"interrupted by {why}"


def not_started(name: str) -> State | None:
    """The state of a task that must not start because the run is stopping, else None."""
    if stop_requested() is None:
        return None
    return Cancelled(message=f"{name}: not started ({stop_message()})")


def unless_stopped(retry: bool) -> bool:
    """A retry condition's answer, refused while the run is stopping."""
    return retry and stop_requested() is None
