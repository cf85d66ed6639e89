"""Files of a standard-mode (and inspect-mode) suite run: the manifest, each case's run
record and metrics."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import ConfigDict, RootModel

from ..processes.failures import FailureKind
from .base import _Closed


class GitProvenance(_Closed):
    sha: str
    short: str
    branch: str | None = None
    dirty: bool = False
    patch_file: str | None = None
    repo_root: str | None = None
    # Files the experiment uses (suite, entry point, what they import) that git does not
    # track: they make the run dirty and are saved whole in its patch.
    untracked: list[str] = []
    patch_sha256: str | None = None  # of the patch file's text: tells two dirty trees apart


class CodeVersion(GitProvenance):
    """One code version a run directory ran on: the first is the one it was made with;
    a resume or recovery allowed to run other code (``--allow-code-change``) adds one."""

    recorded_at: str


class AttemptCode(_Closed):
    """``run_record.json``'s ``code``: what one attempt ran, and where."""

    sha: str
    short: str
    dirty: bool = False
    patch_file: str | None = None  # in the case directory, kept with the attempt's other runner files
    python: str
    python_version: str | None = None
    slurm_job_id: str | None = None
    slurm_node: str | None = None

    @property
    def label(self) -> str:
        """``abc1234`` or ``abc1234-dirty``."""
        from ..layout.names import DIRTY_SUFFIX  # on use: the case waiter reads run records too

        return self.short + (DIRTY_SUFFIX if self.dirty else "")


class CodeFingerprint(_Closed):
    """The code one case runs, by content: its entry point and the modules it imports from
    inside the repository (repository-relative path -> sha256), the Python version and the
    installed distributions it imports (name -> version). A commit that touches none of
    them leaves it unchanged."""

    entry_point: str
    files: dict[str, str]
    python: str
    distributions: dict[str, str] = {}
    sha256: str  # of all the above: what two identities compare first


class CaseIdentity(_Closed):
    """What makes two cases the same computation (``--reuse``): the config without its
    ``output_dir`` (by hash) and the code it runs."""

    config_sha256: str
    code: CodeFingerprint

    @property
    def key(self) -> tuple[str, str]:
        return self.config_sha256, self.code.sha256


class ManifestAddition(_Closed):
    """Cases a resume added to a run directory (``--resume`` with a suite that grew): when,
    which, and the code version (1-based, in ``code_versions``) they were added on."""

    added_at: str
    variants: list[str]
    code_version: int


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
    # Every code version the run ran on, oldest first (empty in older manifests: then ``git`` alone).
    code_versions: list[CodeVersion] = []
    # Cases added by resumes, oldest first (the cases the run was made with are not listed).
    additions: list[ManifestAddition] = []

    def current_code(self) -> GitProvenance:
        """The code the run last ran on (what a resume compares the working tree with)."""
        return self.code_versions[-1] if self.code_versions else self.git


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
    # The Dask worker (its address) whose task ran the attempt; None off Dask. Names the
    # worker in a ``lost`` attempt's reason when that worker went away under it.
    worker: str | None = None
    pid: int | None = None
    # The entry point's start time (Linux /proc), so a reused pid is not mistaken for it.
    pid_start: str | None = None
    started_at: str
    ended_at: str | None = None
    exit_code: int | None = None
    duration_seconds: float | None = None
    timed_out: bool = False
    reason: str | None = None
    # What the runner handed the case: its GPU ids (CUDA_VISIBLE_DEVICES; None: the run
    # handed out none) and cpus (its thread variables; None: not set).
    gpus: list[str] | None = None
    cpus: int | None = None
    failure: FailureKind | None = None  # why a failed attempt failed (experiment_infra/processes/failures.py)
    code: AttemptCode | None = None  # None in records written before attempts named their code
    identity: CaseIdentity | None = None  # what --reuse matches; None in older records
    # ``--reuse``: the earlier case (its directory) whose files this case's are; it did not run here.
    reused_from: str | None = None
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


