"""Files of a standard-mode (and inspect-mode) suite run: the manifest, each case's run
record and metrics."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import ConfigDict, RootModel

from .base import _Closed


class GitProvenance(_Closed):
    sha: str
    short: str
    branch: str | None = None
    dirty: bool = False
    patch_file: str | None = None
    repo_root: str | None = None


class ManifestCase(_Closed):
    # A config may hold inf/nan; pydantic's JSON mode would write them as null and
    # the manifest would no longer match the config the case ran with.
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")

    variant_name: str
    config: dict[str, Any]
    output_dir: str | None = None


Mode = Literal["standard", "inspect", "agent_eval"]


class SuiteManifest(_Closed):
    """``manifest.json`` of a standard-mode run directory (or an inspect suite run)."""

    # The outer model's setting governs nested ManifestCase configs (see ManifestCase).
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")

    experiment_name: str
    mode: Mode
    suite_file: str
    entry_point: str
    config_class: str
    created_at: str
    run_dir: str | None = None
    git: GitProvenance
    cases: list[ManifestCase]


class RunRecord(_Closed):
    """``{variant}/run_record.json``: the runner's account of one attempt of one case.

    Written when the subprocess starts (no ``ended_at``) and again when it ends, so a
    killed runner leaves a record that says the case started and never finished.
    """

    variant_name: str
    command: list[str]
    cwd: str
    attempt: int = 1
    host: str
    pid: int | None = None
    started_at: str
    ended_at: str | None = None
    exit_code: int | None = None
    duration_seconds: float | None = None
    timed_out: bool = False
    reason: str | None = None
    # The signal that stopped the run while this attempt ran (SIGINT, SIGTERM) or
    # "cancelled" (from the Prefect UI); None when the run was not stopped.
    interrupted: str | None = None


class InspectRunRecord(RunRecord):
    """``results/.inspect_runs/{experiment}/{variant}/run_record.json``: the runner's account
    of the latest attempt of an inspect-mode case (a run record), plus the log it wrote."""

    eval_log: str | None = None  # file name of the .eval log this attempt wrote; None: it wrote none



class CaseMetrics(RootModel[dict[str, Any]]):
    """``{variant}/metrics.json`` of a standard-mode case: a flat JSON object of numbers.

    Values that are not finite numbers (strings, booleans, nested objects) are kept
    in the file but left out of reports; ``numbers()`` says which ones count.
    """

    def numbers(self) -> dict[str, float]:
        return {
            k: float(v)
            for k, v in self.root.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        }

    def ignored(self) -> list[str]:
        kept = self.numbers()
        return [k for k in self.root if k not in kept]


