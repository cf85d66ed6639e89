"""Generous Prefect client retries for the recovery commands, unless the user set their own.

A recovery fans out many task runs, and a busy server (a temporary one digesting their
events, or a shared one under load) answers 429 or 503 for a while. Prefect's client
retries those (and 408, 502) with exponential backoff, 2, 4, 8 ... seconds, but only
5 times by default (about a minute in all); a recovery rather waits a few minutes than
loses a state or a log. Prefect reads its settings when it is first imported, so
``use_generous_client_retries`` must run before that (the commands' ``__main__``).
"""

from __future__ import annotations

import os
from typing import MutableMapping

CLIENT_RETRY_DEFAULTS = {
    # 7 retries back off 2 + 4 + ... + 128 s: about four minutes before a call is given up.
    "PREFECT_CLIENT_MAX_RETRIES": "7",
    # 429, 502, 503 and 408 are always retried; a proxy in front of a server also says 504.
    "PREFECT_CLIENT_RETRY_EXTRA_CODES": "504",
}


def use_generous_client_retries(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Set each default the user has not set (environment only); returns those set."""
    chosen = {k: v for k, v in CLIENT_RETRY_DEFAULTS.items() if k not in environ}
    environ.update(chosen)
    return chosen
