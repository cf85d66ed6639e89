"""Prefect flows over the ``experiment_infra`` core."""

import os

# The temporary local server Prefect starts with no PREFECT_API_URL tries to send usage
# telemetry at start-up, which logs an ERROR on every offline machine. Opt out unless
# the user said otherwise.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
