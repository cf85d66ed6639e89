"""Prefect settings as a command line reads them before Prefect is imported (importing
it takes seconds and reads its settings once): the environment, then the active
profile. The one owner of the setting names the command lines choose or check."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from experiment_infra.running.services import ServiceError

__all__ = [
    "API_URL", "BATCH_SETTING", "STARTUP_SETTING", "TASK_RUN_BATCH", "configured", "prefect_home", "profile_settings",
    "recorder_batch", "startup_failure",
]

API_URL = "PREFECT_API_URL"
STARTUP_SETTING = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
# Prefect's task-run recorder writes the task runs the UI lists from the engine's events,
# by default a transaction per event (batch 1), three events per task run: about half of
# the server's CPU per case, and a server that falls behind (a kept server at Prefect's
# default showed 1,000 finished cases Completed up to 204 s late). A batch is written once
# full or at the recorder's flush interval (5 s), and what is left when the server stops
# is written by its shutdown: every task run still ends in the database with its final
# state, at most seconds later. Every server this project starts (temporary or kept) gets
# it, unless the environment or the profile sets it; benchmarks/bench_scale.py and
# bench_ui_load.py have the figures.
BATCH_SETTING = "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE"
TASK_RUN_BATCH = "100"


def prefect_home() -> Path:
    """Prefect's home directory (its profiles, its default database)."""
    return Path(os.environ.get("PREFECT_HOME", "~/.prefect")).expanduser()


def profile_settings() -> dict[str, Any]:
    """The settings of the active Prefect profile (profiles.toml)."""
    import tomllib  # here: a dry run never reads the profile, and the parser costs its start-up 5 ms

    home = prefect_home()
    path = Path(os.environ.get("PREFECT_PROFILES_PATH", home / "profiles.toml")).expanduser()
    try:
        profiles = tomllib.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active") or "ephemeral"
    found = profiles.get("profiles", {}).get(active, {})
    return found if isinstance(found, dict) else {}


def configured(setting: str) -> str | None:
    """``setting`` as the environment or else the active profile sets it; None when neither does."""
    if setting in os.environ:
        return os.environ[setting]
    value = profile_settings().get(setting)
    return None if value is None else str(value)


def startup_failure(limit: object, detail: str = "") -> ServiceError:
    """The one-line error for a temporary server that did not start within ``limit`` seconds."""
    return ServiceError(
        f"Prefect's temporary server did not start within {limit} s{detail}; raise {STARTUP_SETTING} "
        f"(e.g. =600), or start a server (prefect server start) and set {API_URL}"
    )


def recorder_batch() -> dict[str, str]:
    """The task-run recorder's batch for a server this project starts, unless set already."""
    return {} if configured(BATCH_SETTING) is not None else {BATCH_SETTING: TASK_RUN_BATCH}
