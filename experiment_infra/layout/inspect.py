"""Inspect mode: ``results/{experiment}/{timestamp}_{git7}_{variant}_{id}.eval``, and the
run records beside the log directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .names import check_name


def inspect_log_dir(results_root: Path, experiment_name: str) -> Path:
    return Path(results_root) / check_name("experiment", experiment_name)


def inspect_log_file_pattern(git7: str, variant_name: str) -> str:
    """Inspect's ``log_file_pattern``; Inspect itself prefixes ``{timestamp}_``."""
    return f"{git7}_{check_name('variant', variant_name)}_{{id}}"


INSPECT_LOG_SUFFIX = ".eval"


def parse_inspect_log_name(name: str) -> tuple[str, str, str, str] | None:
    """``(timestamp, git7, variant, id)`` of ``{timestamp}_{git7}_{variant}_{id}.eval``.

    Inspect turns ``_`` into ``-`` in the timestamp and the id, so the first two and
    the last underscore are the separators and the variant may contain underscores.
    """
    if not name.endswith(INSPECT_LOG_SUFFIX):
        return None
    stem = name[: -len(INSPECT_LOG_SUFFIX)]
    parts = stem.split("_", 2)
    if len(parts) != 3 or "_" not in parts[2]:
        return None
    variant, _, log_id = parts[2].rpartition("_")
    return parts[0], parts[1], variant, log_id


def inspect_logs_for(log_dir: Path, variant_name: str) -> list[Path]:
    """Every ``.eval`` log of one variant, oldest first (names start with a timestamp)."""
    if not Path(log_dir).is_dir():
        return []
    logs = []
    for p in Path(log_dir).iterdir():
        parsed = parse_inspect_log_name(p.name)
        if parsed and parsed[2] == variant_name and not p.is_symlink() and p.is_file():
            logs.append(p)
    return sorted(logs, key=lambda p: p.name)


INSPECT_RECORDS_DIR = ".inspect_runs"


def inspect_lock(log_dir: Path) -> Path:
    """The lock of an inspect-mode experiment (one runner or recovery at a time, as in every
    mode: ``lock.acquire_lock``), beside its run records, not among its ``.eval`` logs."""
    log_dir = Path(log_dir)
    return log_dir.parent / INSPECT_RECORDS_DIR / log_dir.name / ".lock"


@dataclass(frozen=True)
class InspectCasePaths:
    """This project's record of one inspect-mode case: the runner's account of its latest
    attempt (``run_record.json``, earlier ones in ``.attempts/``). Kept beside the log
    directory, at ``results/.inspect_runs/{experiment}/{variant}/``, never inside it: that
    directory holds Inspect's flat ``.eval`` logs and nothing else."""

    dir: Path

    @classmethod
    def of(cls, log_dir: Path, variant_name: str) -> InspectCasePaths:
        log_dir = Path(log_dir)
        return cls(log_dir.parent / INSPECT_RECORDS_DIR / log_dir.name / check_name("variant", variant_name))

    @property
    def run_record(self) -> Path:
        return self.dir / "run_record.json"

    def next_attempt_record(self) -> Path:
        """Where the previous attempt's record is moved before a new attempt (first free N)."""
        attempt = 1
        while (self.dir / ".attempts" / f"attempt_{attempt}.json").exists():
            attempt += 1
        return self.dir / ".attempts" / f"attempt_{attempt}.json"


