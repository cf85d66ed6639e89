"""Prefect settings as a command line reads them before Prefect is imported (importing
it takes seconds and reads its settings once): the environment, then the active
profile. The one owner of the setting names the command lines choose or check."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from experiment_infra.running.services import ServiceError

__all__ = ["API_URL", "STARTUP_SETTING", "configured", "prefect_home", "profile_settings", "startup_failure"]

API_URL = "PREFECT_API_URL"
STARTUP_SETTING = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"


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
