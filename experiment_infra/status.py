"""Every status rule, in one place: what the files on disk say about a case or run.

The disk is the truth. Prefect states, checkpoints and manifests are views of it;
these functions decide, from file contents (not mere existence), whether a case or
an agent run is done, needs regenerating, or needs running again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from .layout import AgentRunPaths, CasePaths, JudgeSlotPaths
from .records import (
    AgentResult,
    AgentTiming,
    CommandLog,
    JudgeCommand,
    Judgment,
    RunRecord,
    RunResult,
    read_record,
)


class CaseStatus(str, Enum):
    """A standard-mode (or inspect-mode) case."""

    COMPLETED = "completed"
    FAILED = "failed"
    PARTIAL = "partial"
    MISSING = "missing"


class RunStatus(str, Enum):
    """The agent side of an agent-evaluation run."""

    COMPLETED = "completed"
    RESULTS = "results"  # agent finished; result files missing: regenerate, run nothing
    FAILED = "failed"
    PARTIAL = "partial"
    MISSING = "missing"


class JudgeStatus(str, Enum):
    """One judge slot of an agent-evaluation run."""

    COMPLETE = "complete"
    MISSING = "missing"
    FAILED = "failed"
    PARTIAL = "partial"
    AGENT_FAILED = "agent_failed"


AGENT_RERUN_STATUSES = frozenset({RunStatus.FAILED, RunStatus.PARTIAL, RunStatus.MISSING})
JUDGE_RERUN_STATUSES = frozenset({JudgeStatus.MISSING, JudgeStatus.FAILED, JudgeStatus.PARTIAL})


@dataclass(frozen=True)
class CaseClassification:
    status: CaseStatus
    reason: str
    record: RunRecord | None = None


@dataclass(frozen=True)
class JudgeClassification:
    slot: int
    model: str
    status: JudgeStatus
    reason: str


@dataclass(frozen=True)
class RunClassification:
    status: RunStatus
    reason: str
    judges: tuple[JudgeClassification, ...] = field(default_factory=tuple)

    @property
    def needs_agent(self) -> bool:
        return self.status in AGENT_RERUN_STATUSES

    @property
    def judges_needing_work(self) -> tuple[JudgeClassification, ...]:
        return tuple(j for j in self.judges if j.status in JUDGE_RERUN_STATUSES)


# -------------------------------------------------------------------- helpers


def _is_real_dir(path: Path) -> bool:
    # A symlinked directory may point outside the experiment: never follow it.
    return not path.is_symlink() and path.is_dir()


def _has_text(path: Path) -> bool:
    """A regular file with at least one non-whitespace byte."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if not (st.st_mode & 0o170000 == 0o100000) or st.st_size == 0:
        return False
    if st.st_size > 4096:
        return True
    try:
        return bool(path.read_bytes().strip())
    except OSError:
        return False


def _entries(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


# -------------------------------------------------------------- standard mode


def classify_case(paths: CasePaths) -> CaseClassification:
    """Status of one standard-mode case, from its run record."""
    if not _is_real_dir(paths.dir):
        return CaseClassification(CaseStatus.MISSING, "case directory does not exist")
    read = read_record(paths.run_record, RunRecord)
    if read.problem == "missing":
        return CaseClassification(CaseStatus.MISSING, "never started (no run record)")
    record = read.record
    if record is None:
        return CaseClassification(CaseStatus.PARTIAL, f"run record unusable ({read.problem})")
    if record.ended_at is None or record.exit_code is None:
        return CaseClassification(
            CaseStatus.PARTIAL, f"attempt {record.attempt} started {record.started_at} and never finished", record
        )
    if record.exit_code == 0 and not record.timed_out:
        return CaseClassification(CaseStatus.COMPLETED, "exit code 0", record)
    why = record.reason or (f"timed out" if record.timed_out else f"exit code {record.exit_code}")
    return CaseClassification(CaseStatus.FAILED, f"attempt {record.attempt}: {why}", record)


# ------------------------------------------------------------ agent evaluation


def _agent_finished(paths: AgentRunPaths) -> tuple[bool, str, CommandLog | None]:
    """Did the agent finish cleanly? (non-empty output, valid timing and command log, exit 0)"""
    log = read_record(paths.command_log, CommandLog)
    if not _has_text(paths.output):
        return False, "output.txt is missing or empty", log.record
    if log.record is None:
        return False, f"command_log.json {log.problem}", None
    if log.record.exit_code != 0:
        return False, f"agent exited with code {log.record.exit_code}", log.record
    timing = read_record(paths.agent_timing, AgentTiming)
    if timing.record is None:
        return False, f"timing.json {timing.problem}", log.record
    return True, "agent finished", log.record


def classify_agent(paths: AgentRunPaths) -> tuple[RunStatus, str]:
    """Agent-side status of one run; first matching rule wins (see README)."""
    if not _is_real_dir(paths.dir):
        why = "run directory is a symlink (not followed)" if paths.dir.is_symlink() else "run directory does not exist"
        return RunStatus.MISSING, why
    if not _is_real_dir(paths.agent_dir) or not _entries(paths.agent_dir):
        return RunStatus.MISSING, "no agent files"
    finished, why, log = _agent_finished(paths)
    if finished:
        problems = []
        for name, path, model in (
            ("agent/result.json", paths.agent_result, AgentResult),
            ("run_result.json", paths.run_result, RunResult),
        ):
            read = read_record(path, model)
            if read.record is None:
                problems.append(f"{name} {read.problem}")
        if not problems:
            return RunStatus.COMPLETED, "agent finished and result files are valid"
        return RunStatus.RESULTS, "agent finished but " + "; ".join(problems)
    if log is not None and log.exit_code != 0:
        return RunStatus.FAILED, why
    if _has_text(paths.agent_stderr) and not _has_text(paths.output):
        return RunStatus.FAILED, "stderr.log present and no usable output"
    return RunStatus.PARTIAL, f"agent started and never finished ({why})"


def classify_judge(slot_paths: JudgeSlotPaths, model: str) -> JudgeClassification:
    slot = slot_paths.slot
    if not _is_real_dir(slot_paths.dir) or not _entries(slot_paths.dir):
        return JudgeClassification(slot, model, JudgeStatus.MISSING, "no judge directory")
    read = read_record(slot_paths.judgment, Judgment)
    command = read_record(slot_paths.command_log, JudgeCommand).record
    if command is not None and command.exit_code not in (None, 0):
        why = command.reason or f"judge exited with code {command.exit_code}"
        return JudgeClassification(slot, model, JudgeStatus.FAILED, why)
    if read.record is not None:
        if read.record.is_fallback:
            return JudgeClassification(slot, model, JudgeStatus.FAILED, "judgment is a heuristic fallback")
        return JudgeClassification(slot, model, JudgeStatus.COMPLETE, f"score {read.record.score:.3f}")
    if read.exists:
        return JudgeClassification(slot, model, JudgeStatus.FAILED, f"judgment.json {read.problem}")
    return JudgeClassification(slot, model, JudgeStatus.PARTIAL, "judge started, no judgment.json")


def classify_run(paths: AgentRunPaths, judge_models: list[str]) -> RunClassification:
    """Agent status plus one judge status per model of the panel."""
    status, reason = classify_agent(paths)
    if status in AGENT_RERUN_STATUSES:
        judges = tuple(
            JudgeClassification(i, m, JudgeStatus.AGENT_FAILED, f"agent run is {status.value}")
            for i, m in enumerate(judge_models, start=1)
        )
    else:
        judges = tuple(classify_judge(paths.judge_slot(i), m) for i, m in enumerate(judge_models, start=1))
    return RunClassification(status, reason, judges)
