"""Standard mode: ``results/{experiment}/{YYYYmmdd_HHMMSS}_{git7}[-dirty]/{variant}/...``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from .case_files import ATTEMPTS_DIR, BUDGET_FILE, CODE_PATCH, CONFIG, METRICS, RUN_RECORD, STDERR_LOG, STDOUT_LOG, STOP_FILE
from .names import DIRTY_SUFFIX, SLURM_LOGS, check_name

_ATTEMPT = re.compile(r"^attempt_([0-9]+)\Z")


def run_dir_name(when: datetime, git7: str, dirty: bool) -> str:
    return f"{when:%Y%m%d_%H%M%S}_{git7}{DIRTY_SUFFIX if dirty else ''}"


def free_run_dir(results_root: Path, experiment_name: str, when: datetime, git7: str, dirty: bool) -> Path:
    """``results/{experiment}/{YYYYmmdd_HHMMSS}_{git7}[-dirty]`` that does not exist yet.

    Two runs started within the same second would share a name: the later one takes
    the next free second.
    """
    parent = Path(results_root) / check_name("experiment", experiment_name)
    while (parent / run_dir_name(when, git7, dirty)).exists():
        when += timedelta(seconds=1)
    return parent / run_dir_name(when, git7, dirty)


@dataclass(frozen=True)
class CasePaths:
    """Files of one case of a standard-mode suite run."""

    dir: Path

    @property
    def config(self) -> Path:
        return self.dir / CONFIG

    @property
    def run_record(self) -> Path:
        return self.dir / RUN_RECORD

    @property
    def stdout(self) -> Path:
        return self.dir / STDOUT_LOG

    @property
    def stderr(self) -> Path:
        return self.dir / STDERR_LOG

    @property
    def metrics(self) -> Path:
        """Optional numeric metrics an entry point may write (used by reports)."""
        return self.dir / METRICS

    @property
    def code_patch(self) -> Path:
        """The uncommitted changes this attempt ran with (only when its code was dirty)."""
        return self.dir / CODE_PATCH

    def runner_files(self) -> list[Path]:
        """The files the runner writes for each attempt (the entry point's are its own)."""
        return [self.config, self.run_record, self.stdout, self.stderr, self.code_patch]

    @property
    def attempts_dir(self) -> Path:
        return self.dir / ATTEMPTS_DIR

    def attempt_dir(self, attempt: int) -> Path:
        """Where an earlier attempt's runner files (or, for suites with ``fresh_attempt_dir``,
        everything it left in the case directory) are moved before the next attempt."""
        return self.attempts_dir / f"attempt_{attempt}"

    def attempt_run_record(self, attempt: int) -> Path:
        """The run record of an earlier attempt, once set aside (``attempt_dir``)."""
        return self.attempt_dir(attempt) / RUN_RECORD

    def attempt_entries(self) -> list[Path]:
        """What the current attempt holds: every entry of the case directory but ``.attempts``
        (the runner's files and whatever the entry point wrote), sorted by name."""
        if not self.dir.is_dir() or self.dir.is_symlink():
            return []
        return sorted(p for p in self.dir.iterdir() if p.name != self.attempts_dir.name)

    def kept_attempts(self) -> list[int]:
        if not self.attempts_dir.is_dir():
            return []
        found = (_ATTEMPT.match(p.name) for p in self.attempts_dir.iterdir())
        return sorted(int(m.group(1)) for m in found if m)


@dataclass(frozen=True)
class SuiteRunPaths:
    """One standard-mode suite run: ``results/{experiment}/{run_dir_name}``."""

    dir: Path

    @classmethod
    def new(cls, results_root: Path, experiment_name: str, when: datetime, git7: str, dirty: bool) -> SuiteRunPaths:
        """A run directory that does not exist yet (see ``free_run_dir``)."""
        return cls(free_run_dir(results_root, experiment_name, when, git7, dirty))

    @property
    def manifest(self) -> Path:
        return self.dir / "manifest.json"

    @property
    def patch(self) -> Path:
        """``git diff HEAD`` of a dirty working tree (plus the untracked files the
        experiment uses), beside the manifest."""
        return self.dir / "git.patch"

    def patch_of(self, version: int) -> Path:
        """The patch of the run's code version ``version`` (1: the one it was made with)."""
        return self.patch if version <= 1 else self.dir / f"git.v{version}.patch"

    @property
    def summary(self) -> Path:
        return self.dir / "summary.json"

    @property
    def report_md(self) -> Path:
        return self.dir / "report.md"

    @property
    def metrics_plot(self) -> Path:
        return self.dir / "metrics.png"

    @property
    def stop_file(self) -> Path:
        """Written when the run is stopped (Ctrl-C, a cancellation) while its cases run on
        other hosts: their waiters and runners read it (``case_files.read_stop``)."""
        return self.dir / STOP_FILE

    @property
    def budget_file(self) -> Path:
        """Written once the run's failure budget is spent: a case that has not started yet
        does not start, wherever it runs (``case_files.budget_spent``); removed by the next run."""
        return self.dir / BUDGET_FILE

    @property
    def lock(self) -> Path:
        return self.dir / ".lock"

    @property
    def slurm_logs(self) -> Path:
        """Where the Slurm worker jobs of a ``--slurm-workers`` run write their output."""
        return self.dir / SLURM_LOGS

    def case(self, variant_name: str) -> CasePaths:
        return CasePaths(self.dir / check_name("variant", variant_name))

    def is_run_dir(self) -> bool:
        return self.manifest.is_file()


