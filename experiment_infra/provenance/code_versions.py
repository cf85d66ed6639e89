"""The code a standard-mode run directory runs on, across resumes and recoveries.

A run directory is named for the code it was made with. A resume or recovery that
would run other code (another commit, or other uncommitted changes) is refused unless
it is allowed (``--allow-code-change``, the ``allow_code_change`` flow parameter); an
allowed one is recorded in the manifest as a new code version, with its own patch, and
every attempt's run record names the code it ran either way.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import ExperimentError
from ..layout import DIRTY_SUFFIX, NOGIT, SuiteRunPaths
from .git import CodeSnapshot, code_snapshot
from ..records import AttemptCode, CodeVersion, GitProvenance, SuiteManifest, utc_now_iso

__all__ = [
    "ALLOW_FLAG", "CodeChanged", "CodeCheck", "attempt_code", "check_code", "code_change_in", "code_label", "experiment_code",
    "first_version",
]

ALLOW_FLAG = "--allow-code-change"


class CodeChanged(ExperimentError, ValueError):
    """The working tree's code differs from the code a run directory last ran on."""


def code_label(git: GitProvenance) -> str:
    """``abc1234`` or ``abc1234-dirty``."""
    return git.short + (DIRTY_SUFFIX if git.dirty else "")


def experiment_code(suite_file: Path | None, entry_point: Path) -> CodeSnapshot:
    """The code of an experiment: its repository (the suite file's), made dirty also by
    the untracked files it uses."""
    root = Path(suite_file).parent if suite_file else Path.cwd()
    return code_snapshot(root, [p for p in (suite_file, entry_point) if p is not None])


def _recorded_patch_hash(run: SuiteRunPaths, version: int, git: GitProvenance) -> str | None:
    if git.patch_sha256 is not None:
        return git.patch_sha256
    try:  # a manifest from before patches were hashed: hash its patch file
        return hashlib.sha256(run.patch_of(version).read_bytes()).hexdigest()
    except OSError:
        return None


def _same(run: SuiteRunPaths, version: int, recorded: GitProvenance, current: GitProvenance) -> bool:
    if recorded.sha != current.sha or recorded.dirty != current.dirty:
        return False
    if not current.dirty or current.sha == NOGIT:
        return True
    return _recorded_patch_hash(run, version, recorded) == current.patch_sha256


@dataclass(frozen=True)
class CodeCheck:
    """What a resume will run on: the current code, and the version to add (None: same code)."""

    code: CodeSnapshot
    new_version: CodeVersion | None = None
    version: int = 1  # the number of the version the attempts run on

    @property
    def new_patch(self) -> str:
        return self.code.patch if self.new_version is not None else ""


def check_code(
    run: SuiteRunPaths, manifest: SuiteManifest, code: CodeSnapshot, *, allow: bool, what: str
) -> CodeCheck:
    """Refuse (``CodeChanged``, one line naming both and the fix) to run ``code`` in ``run``
    when it differs from the code the run last ran on, unless ``allow``; ``what`` names the
    command (``--resume RUN_DIR``, ``recover RUN_DIR``)."""
    recorded = manifest.current_code()
    versions = max(1, len(manifest.code_versions))
    if _same(run, versions, recorded, code.git):
        return CodeCheck(code, None, versions)
    if not allow:
        why = "other uncommitted changes" if recorded.sha == code.git.sha else "other code"
        raise CodeChanged(
            f"{what}: it ran on code {code_label(recorded)} and the working tree is now {code_label(code.git)} "
            f"({why}); pass {ALLOW_FLAG} (flow parameter allow_code_change) to run it on this code, recorded "
            f"as a new code version, or check out {recorded.short}"
            + (f" and apply {run.patch_of(versions).name}" if recorded.dirty else "")
        )
    number = versions + 1
    update = {"recorded_at": utc_now_iso(), "patch_file": run.patch_of(number).name if code.git.dirty else None}
    return CodeCheck(code, CodeVersion(**{**code.git.model_dump(), **update}), number)


def code_change_in(run: SuiteRunPaths, manifest: SuiteManifest) -> str | None:
    """Why rerunning cases of ``run`` on the working tree's code would be refused (None: the
    same code), from the suite file and entry point its manifest names (nothing is loaded)."""
    suite_file, entry_point = Path(manifest.suite_file), Path(manifest.entry_point)
    if not manifest.suite_file or not suite_file.is_file() or not entry_point.is_file():
        return None  # the rerun itself says what is missing
    try:
        check_code(run, manifest, experiment_code(suite_file, entry_point), allow=False, what=f"recover {run.dir}")
    except CodeChanged as exc:
        return str(exc)
    return None


def first_version(git: GitProvenance, created_at: str) -> CodeVersion:
    """The code version a run directory is made with."""
    return CodeVersion(**git.model_dump(), recorded_at=created_at)


def attempt_code(git: GitProvenance, patch_file: str | None, python: str) -> AttemptCode:
    """What one attempt runs: the code, the interpreter and, in a Slurm job, the job and node."""
    same_python = os.path.realpath(python) == os.path.realpath(sys.executable)
    return AttemptCode(
        sha=git.sha,
        short=git.short,
        dirty=git.dirty,
        patch_file=patch_file,
        python=python,
        python_version=platform.python_version() if same_python else None,
        slurm_job_id=os.environ.get("SLURM_JOB_ID"),
        slurm_node=os.environ.get("SLURMD_NODENAME"),
    )
