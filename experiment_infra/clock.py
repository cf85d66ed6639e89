"""The one clock every record is stamped with: timezone-aware UTC, ISO 8601 text.

Its own module (stdlib only) so that the processes that only stamp and move files (the
case waiter beside every case) start without loading the pydantic models.
"""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["utc_now", "utc_now_iso"]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def utc_now_iso() -> str:
    return utc_now().isoformat()
