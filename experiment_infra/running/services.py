"""Is what a run depends on there? The Prefect API and a Dask scheduler (Slurm: ``slurm``), checked before a flow starts.

Prefect-free (the flows read the Prefect settings and call these): a run pointed at a
server that is down, or at a Dask scheduler that does not answer, should stop with one
line naming the URL or address and the fix, not with a stack trace minutes later.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import ExperimentError

API_TIMEOUT_SECONDS = 10.0
SCHEDULER_TIMEOUT_SECONDS = 5.0
_START_SERVER = "start it (prefect server start) or unset PREFECT_API_URL to run on a temporary local server"


class ServiceError(ExperimentError, RuntimeError):
    """A service a run needs is unreachable, or options that cannot reach it (one line)."""


def _first_line(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    text = str(reason).strip().splitlines()
    return text[0] if text else type(exc).__name__


def check_prefect_api(
    url: str, *, api_key: str | None = None, auth_string: str | None = None, timeout: float = API_TIMEOUT_SECONDS
) -> None:
    """GET ``{url}/health`` (with the credentials the Prefect client would send); ServiceError naming ``url`` unless 200."""
    import base64  # here, not at the top: urllib.request brings ssl, email and http (tens of ms), which only a check needs
    import urllib.error
    import urllib.request

    try:
        request = urllib.request.Request(url.rstrip("/") + "/health")
        if api_key:
            request.add_header("Authorization", f"Bearer {api_key}")
        elif auth_string:
            request.add_header("Authorization", "Basic " + base64.b64encode(auth_string.encode()).decode())
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (the user's own URL)
            body = response.read(200)
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise ServiceError(
                f"PREFECT_API_URL={url} refused the credentials (HTTP {exc.code}); set PREFECT_API_AUTH_STRING or PREFECT_API_KEY"
            ) from None
        raise ServiceError(f"PREFECT_API_URL={url} answered HTTP {exc.code} at /health; is it a Prefect API URL (ending in /api)?") from None
    except (OSError, ValueError) as exc:  # URLError, refused, timeout, a malformed URL
        raise ServiceError(f"PREFECT_API_URL={url} does not answer ({_first_line(exc)}); {_START_SERVER}") from None
    try:
        json.loads(body or b"null")
    except ValueError:
        raise ServiceError(f"PREFECT_API_URL={url} answered /health with something not JSON; is it a Prefect API URL (ending in /api)?") from None


def chosen_cluster(
    dask_address: str | None = None, dask_workers: int | None = None, slurm: object | None = None
) -> dict[str, Any]:
    """The scale-out options that were given, as the flows' keyword arguments (none: threads)."""
    given = dict(dask_address=dask_address, dask_workers=dask_workers, slurm=slurm)
    return {k: v for k, v in given.items() if v is not None}


def check_dask_options(
    dask_address: str | None, dask_workers: int | None, api_url: str | None, slurm: object | None = None
) -> None:
    """The Dask checks that need no network: one kind of cluster at most, a positive count,
    a real Prefect server. ``slurm``: the run's ``slurm.SlurmWorkers``, if any."""
    chosen = [name for name, value in (("--dask-address", dask_address), ("--dask-workers", dask_workers),
                                       ("--slurm-workers", slurm)) if value not in (None, "")]
    if len(chosen) > 1:
        raise ServiceError(
            f"{' and '.join(chosen)} are exclusive: use an existing scheduler, a local cluster or Slurm jobs, one of them"
        )
    if dask_workers is not None and (isinstance(dask_workers, bool) or not isinstance(dask_workers, int) or dask_workers < 1):
        raise ServiceError(f"--dask-workers must be a positive integer, got {dask_workers!r}")
    if chosen and not api_url:
        # The command lines start a temporary server of their own for a local cluster; a
        # scheduler or Slurm jobs elsewhere cannot reach it, and Prefect's in-process one
        # fails every worker with 'database is locked' (each opens its SQLite file).
        raise ServiceError(
            f"{chosen[0]} needs a Prefect server its workers can reach: start one (prefect server start) "
            "and set PREFECT_API_URL"
        )


def check_dask_scheduler(address: str, timeout: float = SCHEDULER_TIMEOUT_SECONDS) -> int:
    """Connect to the Dask scheduler at ``address``; its worker count, or ServiceError naming it."""
    import distributed  # only a Dask run needs it (the `dask` extra)

    try:
        with distributed.Client(address, timeout=timeout, set_as_default=False) as client:
            return len(client.scheduler_info().get("workers", {}))
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        raise ServiceError(
            f"Dask scheduler {address} does not answer within {timeout:g} s ({_first_line(exc)}); "
            "start it (dask scheduler) or fix --dask-address"
        ) from None
