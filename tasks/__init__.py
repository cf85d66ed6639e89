"""Prefect tasks: each wraps one core call with a name, retries and logs."""

from .failure_logs import install as _install_failure_logs

_install_failure_logs()
