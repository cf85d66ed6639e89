"""The lock file a recovery keeps beside an experiment (the classification cache it
keeps there too has its schema in ``status_cache_file``, which needs no pydantic)."""

from __future__ import annotations

from .base import _Closed


class LockInfo(_Closed):
    """A per-experiment lock file (``.recover.lock``): who holds it, so a second
    recovery can name the holder and a dead holder's lock can be taken over."""

    pid: int
    host: str
    started_at: str
    token: str
    command: list[str] = []
    # The holder's process start time (Linux /proc), so a reused pid is not mistaken for it.
    pid_start: str | None = None
