"""Rate limits, as ProjectScylla recognises them (``scylla/e2e/rate_limit.py`` and
``scripts/reset_rate_limited_runs.py`` at b1b5ea8d): which text says a limit was hit, and
how long it asks to wait.

A run or judge slot that hit one is ``failed`` with a reason that starts with
``RATE_LIMITED``: that is what ``--status rate_limited`` selects, and what a recovery
waits on before it runs it again.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from ..records import NOFOLLOW_READ_FLAGS, AgentResult, read_record
from .entries import _Names, _at

__all__ = ["RATE_LIMITED", "agent_rate_limit", "is_rate_limited", "judge_failure_reason", "rate_limit_in", "rate_limit_in_json", "retry_after_seconds"]

RATE_LIMITED = "rate limited"

# What ProjectScylla looks for in a command's stderr or error text, in its order. "429" is
# matched case-sensitively as it is written; the rest lower-cased.
_TEXT_SIGNS = (
    ("weekly usage limit", True), ("upgrade to continue", True), ("failed to configure provider", True),
    ("429", False), ("rate limit", True), ("ratelimit", True), ("hit your limit", True),
    ("overloaded", True), ("resets ", True), ("usage limit", True),
)
# ... and in the ``result`` of a Claude Code JSON object that says ``is_error``.
_JSON_SIGNS = (
    "rate limit", "rate_limit", "ratelimit", "overloaded", "429", "hit your limit", "resets",
    "weekly usage limit", "upgrade to continue", "failed to configure provider",
)


def is_rate_limited(reason: str) -> bool:
    """Does a classification's reason say the run or slot hit a rate limit?"""
    return reason.startswith(RATE_LIMITED)


def judge_failure_reason(error: str) -> str:
    """The reason of a judge slot ProjectScylla marked failed, from the error it recorded
    (the same text it checks for a limit before it calls the run rate-limited)."""
    error = " ".join(error.split()) or "no error recorded"
    return f"{RATE_LIMITED}: judge: {error}" if rate_limit_in(error) else f"judge failed: {error}"


def rate_limit_in(text: str) -> bool:
    """Error text (stderr, a recorded error) that says a limit was hit."""
    lower = text.lower()
    return any((sign in lower) if low else (sign in text) for sign, low in _TEXT_SIGNS)


def rate_limit_in_json(stdout: str) -> str | None:
    """The message of a Claude Code result object (``--output-format json`` or a
    ``stream-json`` line) that failed on a limit: ``is_error`` with a limit's words in its
    ``result``, or ``api_error_status`` 429; None otherwise. Only these structured fields
    are read, never the reply's own text (a judge may well discuss rate limits)."""
    text = stdout.strip()
    if not text:
        return None
    for candidate in [text, *text.splitlines()]:
        try:
            data: Any = json.loads(candidate)
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        message = str(data.get("result", data.get("error", "")))
        if data.get("api_error_status") == 429:
            return message or "API error status 429"
        if data.get("is_error") and any(sign in message.lower() for sign in _JSON_SIGNS):
            return message
    return None


_RETRY_AFTER = re.compile(r"Retry-After:\s*(\d+)", re.IGNORECASE)
_RESETS_AT = re.compile(r"resets\s+(\d{1,2}):?(\d{2})?\s*(am|pm)", re.IGNORECASE)
_ZONE = re.compile(r"\(([A-Za-z_]+/[A-Za-z_/]+|UTC)\)")


def retry_after_seconds(text: str, now: datetime | None = None) -> float | None:
    """How long the text asks to wait: ``Retry-After: N`` (seconds) or ``resets 4pm
    (America/Los_Angeles)`` (the next such time), plus a tenth, as ProjectScylla waits;
    None when it names neither."""
    match = _RETRY_AFTER.search(text)
    if match:
        return float(match.group(1)) * 1.1
    match = _RESETS_AT.search(text)
    if not match:
        return None
    hour, minute = int(match.group(1)) % 12, int(match.group(2) or 0)
    if match.group(3).lower() == "pm":
        hour += 12
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    zone_match = _ZONE.search(text)
    try:
        zone = ZoneInfo(zone_match.group(1) if zone_match else "America/Los_Angeles")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    now = (now or datetime.now(timezone.utc)).astimezone(zone)
    reset = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if reset <= now:
        reset += timedelta(days=1)
    return (reset - now).total_seconds() * 1.1


def agent_rate_limit(run: str) -> str | None:
    """The reason of a failed agent run (``run``: its directory) that hit a limit, else None:
    ``agent/result.json``'s stdout names one (``api_error_status`` 429, an ``is_error``
    result), or it is ProjectScylla's crash signature of a limit (exit 1, no cost, at most
    one API call, no tokens: ``reset_rate_limited_runs.py``), or its stderr names one."""
    result = read_record(_at(run, _Names.agent_result), AgentResult).record
    if result is not None:
        message = rate_limit_in_json(result.stdout)
        if message is not None:
            return f"{RATE_LIMITED}: agent: {' '.join(message.split())}"
        stats = result.token_stats
        if (result.exit_code == 1 and result.cost_usd == 0.0 and result.api_calls <= 1
                and stats.input_tokens == 0 and stats.output_tokens == 0):
            return f"{RATE_LIMITED}: agent exited with code 1 having spent nothing (no cost, no tokens)"
        stderr = result.stderr
    else:
        stderr = _head(_at(run, _Names.stderr))
    if stderr.strip() and rate_limit_in(stderr):
        line = next((l for l in stderr.splitlines() if rate_limit_in(l)), stderr.strip().splitlines()[-1])
        return f"{RATE_LIMITED}: agent: {' '.join(line.split())[:300]}"
    return None


def _head(path: str, size: int = 65536) -> str:
    """The first ``size`` bytes of a regular file as text ("" when unreadable or a link)."""
    try:
        fd = os.open(path, NOFOLLOW_READ_FLAGS)
    except OSError:
        return ""
    try:
        return os.read(fd, size).decode("utf-8", errors="replace")
    except OSError:
        return ""
    finally:
        os.close(fd)
