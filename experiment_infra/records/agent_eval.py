"""Files of an agent-evaluation experiment, in ProjectScylla's layout: the experiment
config, the agent's command log, timing and result, each judge's judgment and command,
the consensus, ``run_result.json`` and the run's report."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from ..layout import check_name
from .base import _Closed, _Open
from .standard import GitProvenance


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

    @model_validator(mode="before")
    @classmethod
    def _one_judge_model(cls, data: Any) -> Any:
        # ProjectScylla before 2026-01-08 named one judge, "judge_model": "<model>" (its own
        # reader still takes that as a panel of one); "judge_models" wins when both are there.
        if isinstance(data, dict) and "judge_models" not in data and isinstance(data.get("judge_model"), str):
            return {**data, "judge_models": [data["judge_model"]]}
        return data

    @field_validator("tiers_to_run")
    @classmethod
    def _tiers_are_directory_names(cls, tiers: list[str]) -> list[str]:
        # Each tier is a directory under the experiment: "../x" must not reach outside it.
        for tier in tiers:
            check_name("tier", tier)
        return tiers


class CommandEntry(_Open):
    timestamp: str
    command: list[str]
    cwd: str
    env_vars: dict[str, str] = {}
    exit_code: int
    stdout_file: str | None = None
    stderr_file: str | None = None
    duration_seconds: float | None = None
    # Written by this project only: why a command failed (e.g. a timeout, exit 124).
    timed_out: bool = False
    reason: str | None = None


class CommandLog(_Open):
    """``agent/command_log.json``."""

    generated_at: str | None = None
    total_commands: int
    commands: list[CommandEntry] = Field(min_length=1)

    @property
    def exit_code(self) -> int:
        """The run's exit code: the first non-zero one, else 0."""
        return next((c.exit_code for c in self.commands if c.exit_code != 0), 0)

    @property
    def duration_seconds(self) -> float | None:
        """The commands' total duration, when every entry records one (ProjectScylla's always do)."""
        durations = [c.duration_seconds for c in self.commands]
        if any(d is None or not math.isfinite(d) or d < 0 for d in durations):
            return None
        return float(sum(d for d in durations if d is not None))


def _moment(text: str | None) -> datetime | None:
    """A ``measured_at`` as a time (UTC when it names no zone); None when absent or not ISO 8601."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


class AgentTiming(_Open):
    """``agent/timing.json``: written when the agent ended."""

    agent_duration_seconds: float = Field(ge=0)
    measured_at: str | None = None

    @property
    def measured(self) -> datetime | None:
        return _moment(self.measured_at)


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
    is_valid: bool = True  # false, or ``fallback`` true: a heuristic stand-in (status.py decides what that means)
    fallback: bool = False
    criteria_scores: dict[str, Any] = {}

    @field_validator("criteria_scores", mode="before")
    @classmethod
    def _no_criteria(cls, v: Any) -> Any:
        # ProjectScylla writes null when a judge returned no per-criterion scores; its
        # own models read null as {}: a valid judgment without criteria, not a broken one.
        return {} if v is None else v

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


class JudgeTiming(_Open):
    """``judge/judge_NN/timing.json`` (written when that judge ended) and ``judge/timing.json``
    (the slots' durations summed, written when the last of them ended)."""

    judge_duration_seconds: float = Field(ge=0)
    measured_at: str | None = None

    @property
    def measured(self) -> datetime | None:
        return _moment(self.measured_at)

    @property
    def failed(self) -> bool:
        """ProjectScylla's mark of a judge that failed (since 2026-02): ``"failed": true``
        with its ``error``, beside ``error.log`` and no ``judgment.json``."""
        return _extra(self, "failed", False) is True

    @property
    def error(self) -> str:
        value = _extra(self, "error", "")
        return value if isinstance(value, str) else str(value)


class ProcessRecord(_Closed):
    """``agent/process.json``: the agent process of a run, written when it starts, so a
    later resume or recovery can find it (or what it left) if its runner was killed."""

    command: list[str]
    host: str
    pid: int
    started_at: str
    # The process start time (Linux /proc), so a reused pid is not mistaken for it.
    pid_start: str | None = None
    # The value of process.MARKER_ENV in its environment: what it leaves running is proven by it.
    marker: str | None = None


class JudgeCommand(_Closed):
    """``judge/judge_NN/command_log.json``: how this project ran a judge (written at the
    start, with the judge's ``host`` and ``pid`` once it runs, and again at the end)."""

    model: str
    command: list[str]
    cwd: str
    started_at: str
    host: str | None = None
    pid: int | None = None
    pid_start: str | None = None
    marker: str | None = None  # as ProcessRecord.marker
    ended_at: str | None = None
    exit_code: int | None = None
    duration_seconds: float | None = None
    timed_out: bool = False
    reason: str | None = None
    model_override: bool = False


def _extra(record: BaseModel, key: str, default: Any) -> Any:
    value = (record.model_extra or {}).get(key, default)
    return default if value is None else value


class Consensus(_Open):
    """``judge/result.json``: the panel's verdict.

    ProjectScylla writes ``is_valid`` (false when a judge that judged was not valid) and
    ``criteria_scores`` (may be null) since 2026-02-09; older versions wrote neither.
    They stay extra keys so that an older file is written back in its own shape.
    """

    score: float
    passed: bool
    grade: str
    reasoning: str = ""

    @property
    def panel_valid(self) -> bool:
        return _extra(self, "is_valid", True) is not False

    @property
    def criteria_scores(self) -> dict[str, Any]:
        value = _extra(self, "criteria_scores", {})
        return value if isinstance(value, dict) else {}


class JudgeSummary(_Open):
    """One entry of ``run_result.json`` ``judges`` (``is_valid``, ``criteria_scores``: see Consensus)."""

    model: str
    score: float
    passed: bool
    grade: str | None = None
    reasoning: str = ""
    judge_number: int

    @property
    def valid(self) -> bool:
        """False for a judge ProjectScylla lists as failed (``is_valid: false``, score 0)."""
        return _extra(self, "is_valid", True) is not False


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

    @field_validator("criteria_scores", mode="before")
    @classmethod
    def _no_criteria(cls, v: Any) -> Any:
        return {} if v is None else v  # as ProjectScylla's own model reads it


class RunReport(_Open):
    """``run_NN/report.json``."""

    run_number: int
    score: float
    grade: str
    passed: bool
    cost_usd: float
    duration_seconds: float
    generated_at: str | None = None


class ConditionRecord(_Closed):
    """One condition of an agent-evaluation suite as run (secret env values redacted)."""

    tier: str
    subtest: str
    model: str
    system_prompt: str | None = None
    extra_args: list[str] = []
    env: dict[str, str] = {}


class AgentEvalManifest(_Closed):
    """``config/manifest.json``: this project's record of an agent-evaluation suite,
    enough to rerun any run or judge slot (ProjectScylla's ``experiment.json`` is not)."""

    experiment_name: str
    experiment_id: str
    mode: Literal["agent_eval"] = "agent_eval"
    suite_file: str | None = None
    created_at: str
    git: GitProvenance
    task_repo: str
    task_commit: str
    conditions: list[ConditionRecord] = Field(min_length=1)
    runs_per_subtest: int = Field(ge=1)
    judge_models: list[str] = Field(min_length=1)
    agent_command: list[str] = Field(min_length=1)
    judge_command: list[str] = Field(min_length=1)
    agent_timeout_seconds: float = Field(gt=0)
    judge_timeout_seconds: float = Field(gt=0)
    retries: int = Field(default=0, ge=0)
    retry_delay_seconds: float = Field(default=0.0, ge=0)


