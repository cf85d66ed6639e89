"""The ``nightly-recovery`` deployment, defined once for ``deployments/serve.py``.

``deployments/prefect.yaml`` declares the same deployment for the work-pool route
(``prefect deploy``); keep the two in step (tests/test_deployment.py checks both).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prefect.schedules import Cron

from experiment_infra.recovery.walk import results_root_dir
from experiment_infra.running.services import ServiceError

DEPLOYMENT_NAME = "nightly-recovery"
FLOW_NAME = "nightly_recovery"
DEFAULT_CRON = "0 2 * * *"  # 02:00 every night
DEFAULT_TIMEZONE = "UTC"
TAGS = ["nightly", "recover"]
ACTIVE_SLUG, DRY_RUN_SLUG = "nightly", "nightly-dry-run"


class DeploymentInputError(ServiceError):
    """A schedule or results root the deployment cannot use (one line)."""


def check_schedule(cron: str, timezone: str) -> None:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise DeploymentInputError(f"--timezone {timezone!r}: unknown time zone (use an IANA name such as UTC or Europe/Berlin)") from None
    try:
        Cron(cron, timezone=timezone)
    except ValueError:
        raise DeploymentInputError(f"--cron {cron!r}: not a cron expression (five fields, e.g. '0 2 * * *')") from None


def schedules(cron: str = DEFAULT_CRON, timezone: str = DEFAULT_TIMEZONE) -> list[Any]:
    """The nightly schedule, plus an inactive dry-run twin to switch on from the UI."""
    check_schedule(cron, timezone)
    return [
        Cron(cron, timezone=timezone, slug=ACTIVE_SLUG),
        Cron(cron, timezone=timezone, active=False, parameters={"dry_run": True}, slug=DRY_RUN_SLUG),
    ]


def nightly_deployment(results_root: str, *, cron: str = DEFAULT_CRON, timezone: str = DEFAULT_TIMEZONE, dry_run: bool = False) -> Any:
    """A RunnerDeployment of ``nightly_recovery`` (parameters editable in the UI)."""
    from flows.nightly import nightly_recovery

    root = results_root_dir(results_root)  # RecoveryInputError naming it when it is no directory
    return nightly_recovery.to_deployment(
        name=DEPLOYMENT_NAME,
        schedules=schedules(cron, timezone),
        parameters={"results_root": str(root), "dry_run": dry_run},
        tags=TAGS,
        description="Recover every experiment directory under results_root that has work to do (see docs/nightly.md).",
    )
