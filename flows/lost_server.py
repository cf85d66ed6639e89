"""When the Prefect server loses a run: a server call that failed for good (after the
client's retries) is the server's problem, not the recovery's, so its traceback is
dropped from the logs and the exit code is read from the files instead."""

from __future__ import annotations

import logging

import httpx

__all__ = ["lost_server_call", "quiet_lost_server_tracebacks"]


def lost_server_call(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it was raised from) is an HTTP call to the Prefect server
    that failed for good (after the client's retries), not a problem of the recovery."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, httpx.HTTPError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


class _NoLostCallTraceback(logging.Filter):
    """Keep the one-line error of a server call lost for good, drop its traceback: the
    user's problem is the server, not a line of Prefect's engine."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None and lost_server_call(record.exc_info[1]):
            record.exc_info, record.exc_text = None, None
        return True


def quiet_lost_server_tracebacks() -> None:
    """Install ``_NoLostCallTraceback`` on the loggers of Prefect's flow and task engines (the command line)."""
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _NoLostCallTraceback) for f in log.filters):
            log.addFilter(_NoLostCallTraceback())
