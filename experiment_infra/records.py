"""Pydantic models of every JSON file this project reads or writes, and the only reader.

Models of foreign files (ProjectScylla's agent-evaluation layout) accept extra keys,
so a newer writer's additions never make a good file look broken; the required
fields are exactly the ones the status rules depend on. ``read_record`` is the one
place a result file is parsed: it never raises for bad content, it says why.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .atomic import atomic_write_json

# Result files are small; anything larger is not one of ours and is not read whole.
MAX_RECORD_BYTES = 32 * 1024 * 1024

M = TypeVar("M", bound=BaseModel)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def utc_now_iso() -> str:
    return utc_now().isoformat()


class RecordError(ValueError):
    """A result file that is missing or does not hold what its model requires."""


class _Open(BaseModel):
    """Foreign files: unknown keys are kept and written back unchanged."""

    model_config = ConfigDict(extra="allow")


class _Closed(BaseModel):
    """Files only this project writes: a typo is an error, not a silent extra key."""

    model_config = ConfigDict(extra="forbid")


# ----------------------------------------------------------------- reading helpers


class ReadResult(Generic[M]):
    """A parsed record, or the reason there is none (``missing``, ``invalid: ...``)."""

    __slots__ = ("record", "problem")

    def __init__(self, record: M | None, problem: str | None) -> None:
        self.record = record
        self.problem = problem

    @property
    def ok(self) -> bool:
        return self.record is not None

    @property
    def exists(self) -> bool:
        return self.problem != "missing"


def read_record(path: Path, model: type[M]) -> ReadResult[M]:
    """Parse ``path`` as ``model``; never raises for bad content, never follows a symlink."""
    path = Path(path)
    try:
        if path.is_symlink():
            return ReadResult(None, f"invalid: {path.name} is a symlink (not followed)")
        if not path.is_file():
            return ReadResult(None, "missing")
        size = path.stat().st_size
        if size == 0:
            return ReadResult(None, f"invalid: {path.name} is empty")
        if size > MAX_RECORD_BYTES:
            return ReadResult(None, f"invalid: {path.name} is {size} bytes (limit {MAX_RECORD_BYTES})")
        raw = path.read_bytes()
    except OSError as exc:
        return ReadResult(None, f"invalid: {path.name} unreadable ({exc.strerror or exc})")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return ReadResult(None, f"invalid: {path.name} is not UTF-8")
    except json.JSONDecodeError as exc:
        return ReadResult(None, f"invalid: {path.name} is not valid JSON ({exc.msg} at line {exc.lineno})")
    try:
        return ReadResult(model.model_validate(data), None)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "top level"
        return ReadResult(None, f"invalid: {path.name} field {where}: {first['msg']}")


def load_record(path: Path, model: type[M]) -> M:
    """Like ``read_record`` but raises ``RecordError`` naming the file."""
    result = read_record(path, model)
    if result.record is None:
        raise RecordError(f"{path}: {result.problem}")
    return result.record


def write_record(path: Path, record: BaseModel) -> None:
    atomic_write_json(path, record.model_dump(mode="json", exclude_none=False))


# ------------------------------------------------------------------- standard mode


class GitProvenance(_Closed):
    sha: str
    short: str
    branch: str | None = None
    dirty: bool = False
    patch_file: str | None = None
    repo_root: str | None = None


class ManifestCase(_Closed):
    variant_name: str
    config: dict[str, Any]
    output_dir: str | None = None


Mode = Literal["standard", "inspect", "agent_eval"]


class SuiteManifest(_Closed):
    """``manifest.json`` of a standard-mode run directory (or an inspect suite run)."""

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


# ------------------------------------------------------------- agent evaluation


class ExperimentConfig(_Open):
    """``config/experiment.json`` of an agent-evaluation experiment."""

    experiment_id: str
    tiers_to_run: list[str]
    runs_per_subtest: int = Field(ge=1)
    judge_models: list[str]
    models: list[str] = []
    task_repo: str | None = None
    task_commit: str | None = None
    task_prompt_file: str | None = None
    language: str | None = None
    parallel_subtests: int | None = None
    timeout_seconds: float | None = None
    max_turns: int | None = None
    max_subtests: int | None = None
    use_containers: bool | None = None


class CommandEntry(_Open):
    timestamp: str
    command: list[str]
    cwd: str
    env_vars: dict[str, str] = {}
    exit_code: int
    stdout_file: str | None = None
    stderr_file: str | None = None
    duration_seconds: float | None = None


class CommandLog(_Open):
    """``agent/command_log.json``."""

    generated_at: str | None = None
    total_commands: int
    commands: list[CommandEntry] = Field(min_length=1)

    @property
    def exit_code(self) -> int:
        """The run's exit code: the first non-zero one, else 0."""
        return next((c.exit_code for c in self.commands if c.exit_code != 0), 0)


class AgentTiming(_Open):
    """``agent/timing.json``."""

    agent_duration_seconds: float = Field(ge=0)
    measured_at: str | None = None


class TokenStats(_Open):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0

    def __add__(self, other: TokenStats) -> TokenStats:
        return TokenStats(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_creation_tokens=self.cache_creation_tokens + other.cache_creation_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
        )


class AgentResult(_Open):
    """``agent/result.json``."""

    exit_code: int
    stdout: str
    stderr: str
    token_stats: TokenStats
    cost_usd: float
    api_calls: int


class ClaudeUsage(_Open):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


class ClaudeCodeOutput(_Open):
    """What ``claude --print --output-format json`` prints (``agent/stdout.log``)."""

    type: str = "result"
    subtype: str | None = None
    is_error: bool = False
    num_turns: int = 0
    result: str | None = None
    total_cost_usd: float = 0.0
    usage: ClaudeUsage = ClaudeUsage()
    duration_ms: int | None = None
    session_id: str | None = None

    def token_stats(self) -> TokenStats:
        return TokenStats(
            input_tokens=self.usage.input_tokens,
            output_tokens=self.usage.output_tokens,
            cache_creation_tokens=self.usage.cache_creation_input_tokens,
            cache_read_tokens=self.usage.cache_read_input_tokens,
        )


def _finite_unit(v: float) -> float:
    if not math.isfinite(v) or not 0.0 <= v <= 1.0:
        raise ValueError(f"score must be a number in [0, 1], got {v}")
    return v


class Judgment(_Open):
    """``judge/judge_NN/judgment.json``: one judge's grade of one run."""

    score: float
    passed: bool
    grade: str | None = None
    reasoning: str = ""
    is_valid: bool = True
    fallback: bool = False
    criteria_scores: dict[str, Any] = {}

    @field_validator("score", mode="before")
    @classmethod
    def _numeric_unit_score(cls, v: Any) -> Any:
        # JSON true would otherwise validate as 1.0, and "0.9" as 0.9.
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError("score must be a number")
        return _finite_unit(float(v))

    @field_validator("passed", mode="before")
    @classmethod
    def _strict_passed(cls, v: Any) -> Any:
        if not isinstance(v, bool):
            raise ValueError("passed must be true or false")
        return v

    @property
    def is_fallback(self) -> bool:
        """A heuristic stand-in written when the judge's reply could not be used."""
        return self.fallback or not self.is_valid


class JudgeTiming(_Open):
    """``judge/timing.json`` and ``judge/judge_NN/timing.json``."""

    judge_duration_seconds: float = Field(ge=0)
    measured_at: str | None = None


class JudgeCommand(_Closed):
    """``judge/judge_NN/command_log.json``: how this project ran a judge."""

    model: str
    command: list[str]
    cwd: str
    started_at: str
    ended_at: str | None = None
    exit_code: int | None = None
    duration_seconds: float | None = None
    timed_out: bool = False
    reason: str | None = None
    model_override: bool = False


class Consensus(_Open):
    """``judge/result.json``: the panel's verdict."""

    score: float
    passed: bool
    grade: str
    reasoning: str = ""


class JudgeSummary(_Open):
    model: str
    score: float
    passed: bool
    grade: str | None = None
    reasoning: str = ""
    judge_number: int


class RunResult(_Open):
    """``run_NN/run_result.json``."""

    run_number: int
    exit_code: int
    token_stats: TokenStats
    tokens_input: int
    tokens_output: int
    cost_usd: float
    duration_seconds: float
    agent_duration_seconds: float
    judge_duration_seconds: float
    judge_score: float
    judge_passed: bool
    judge_grade: str
    judge_reasoning: str = ""
    judges: list[JudgeSummary] = []
    workspace_path: str | None = None
    logs_path: str | None = None
    command_log_path: str | None = None
    criteria_scores: dict[str, Any] = {}


class RunReport(_Open):
    """``run_NN/report.json``."""

    run_number: int
    score: float
    grade: str
    passed: bool
    cost_usd: float
    duration_seconds: float
    generated_at: str | None = None


def grade_for(score: float) -> str:
    """Letter grade of a consensus score (S only at exactly 1.0)."""
    if score >= 1.0:
        return "S"
    for floor, letter in ((0.8, "A"), (0.6, "B"), (0.4, "C"), (0.2, "D")):
        if score >= floor:
            return letter
    return "F"
