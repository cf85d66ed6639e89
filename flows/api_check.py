"""The Prefect API a flow run would report to, checked before the flow starts.

Every command line (run_suite, recover, report, nightly) calls ``check_api`` first: a
``PREFECT_API_URL`` (environment or Prefect profile) that does not answer is one
``error:`` line naming the URL, instead of a stack trace from deep inside Prefect.
No URL means Prefect's temporary local server, which needs no check.
"""

from __future__ import annotations

from prefect.settings import get_current_settings

from experiment_infra.running.services import ServiceError, check_prefect_api

__all__ = ["ServiceError", "check_api", "configured_api_url"]


def configured_api_url() -> str | None:
    url = get_current_settings().api.url
    return str(url) if url else None


def check_api() -> str | None:
    """The configured API URL once it answers (None: a temporary server will be used)."""
    url = configured_api_url()
    if url:
        api = get_current_settings().api
        check_prefect_api(
            url,
            api_key=api.key.get_secret_value() if api.key else None,
            auth_string=api.auth_string.get_secret_value() if api.auth_string else None,
        )
    return url
