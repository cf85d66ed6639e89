"""Pydantic models of every JSON file this project reads or writes, and the only reader.

Models of foreign files (ProjectScylla's agent-evaluation layout) accept extra keys,
so a newer writer's additions never make a good file look broken; the required
fields are exactly the ones the status rules depend on. ``read_record`` is the one
place a result file is parsed: it never raises for bad content, it says why.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, RootModel, ValidationError, field_validator

from .atomic import atomic_write_text, json_text
from .errors import ExperimentError
from .layout import check_name

# Result files are small; anything larger is not one of ours and is not read whole.
MAX_RECORD_BYTES = 32 * 1024 * 1024

M = TypeVar("M", bound=BaseModel)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def utc_now_iso() -> str:
    return utc_now().isoformat()


class RecordError(ExperimentError, ValueError):
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


def read_record(path: Path | str, model: type[M]) -> ReadResult[M]:
    """Parse ``path`` as ``model``; never raises for bad content, never follows a symlink.

    Classification reads thousands of these, so the file is opened once with
    O_NOFOLLOW (the open is the existence check) and pydantic parses the bytes
    directly; only a file that fails that fast path is parsed again with ``json``
    so the reason names the JSON error or the first bad field.
    """
    name = os.path.basename(path)
    try:
        fd = os.open(path, NOFOLLOW_READ_FLAGS)
    except FileNotFoundError:
        return ReadResult(None, "missing")
    except NotADirectoryError:
        return ReadResult(None, "missing")
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return ReadResult(None, f"invalid: {name} is a symlink (not followed)")
        return ReadResult(None, f"invalid: {name} unreadable ({exc.strerror or exc})")
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return ReadResult(None, "missing")
        if st.st_size == 0:
            return ReadResult(None, f"invalid: {name} is empty")
        if st.st_size > MAX_RECORD_BYTES:
            return ReadResult(None, f"invalid: {name} is {st.st_size} bytes (limit {MAX_RECORD_BYTES})")
        raw = _read_all(fd, st.st_size)
    except OSError as exc:
        return ReadResult(None, f"invalid: {name} unreadable ({exc.strerror or exc})")
    finally:
        os.close(fd)
    if not raw.strip():
        return ReadResult(None, f"invalid: {name} is empty")
    try:
        return ReadResult(model.model_validate_json(raw), None)
    except ValidationError:
        pass
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return ReadResult(None, f"invalid: {name} is not UTF-8")
    except json.JSONDecodeError as exc:
        return ReadResult(None, f"invalid: {name} is not valid JSON ({exc.msg} at line {exc.lineno})")
    try:
        return ReadResult(model.model_validate(data), None)
    except ValidationError as exc:
        return ReadResult(None, f"invalid: {name} {explain_validation(exc)}")


_EXPECTED = {
    "dict_type": "should be a JSON object",
    "model_type": "should be a JSON object",
    "model_attributes_type": "should be a JSON object",
    "list_type": "should be a list",
    "tuple_type": "should be a list",
    "int_type": "should be a whole number",
    "int_parsing": "should be a whole number",
    "int_from_float": "should be a whole number",
    "float_type": "should be a number",
    "float_parsing": "should be a number",
    "finite_number": "should be a finite number",
    "bool_type": "should be true or false",
    "bool_parsing": "should be true or false",
    "string_type": "should be text",
}


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def explain_validation(exc: ValidationError) -> str:
    """The first problem pydantic found, as the end of a sentence a researcher can act on
    (``lacks the required field exit_code``, ``field criteria_scores should be a JSON object,
    but it is null``), never pydantic's own wording (``Input should be a valid dictionary``)."""
    first = exc.errors()[0]
    loc = first["loc"]
    where = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(loc))
    kind, ctx = first["type"], first.get("ctx") or {}
    if not where:
        return f"should hold a JSON object, but it is {_shown(first.get('input'))}" if kind.endswith("_type") else first["msg"].lower()
    if kind == "missing":
        return f"lacks the required field {where}"
    if kind == "extra_forbidden":
        return f"has a field this project does not write: {where}"
    if kind == "value_error" and ctx.get("error") is not None:
        said, last = str(ctx["error"]), str(loc[-1])  # a validator's own sentence, e.g. "score must be ..."
        return f"field {where}{said[len(last):]}" if said.startswith(last + " ") else f"field {where}: {said}"
    if kind == "too_short":
        return f"field {where} should not be empty"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = {"greater_than_equal": ("at least", "ge"), "greater_than": ("more than", "gt"),
                 "less_than_equal": ("at most", "le"), "less_than": ("less than", "lt")}[kind]
        return f"field {where} should be {bound[0]} {ctx.get(bound[1])}, but it is {_shown(first.get('input'))}"
    expected = _EXPECTED.get(kind)
    if expected is None:
        msg = first["msg"]
        expected = msg[:1].lower() + msg[1:]
        expected = expected[len("input "):] if expected.startswith("input ") else expected
    return f"field {where} {expected}, but it is {_shown(first.get('input'))}"


# O_NONBLOCK: a FIFO planted where a result file should be must not hang the reader.
NOFOLLOW_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def _read_all(fd: int, size: int) -> bytes:
    """Read to EOF (the file may have grown since fstat), never past the record limit."""
    first = os.read(fd, size + 1)
    if len(first) <= size:  # a short read of a regular file is its end: the usual case
        return first
    chunks = [first]
    total = len(first)
    want = size + 1
    while total <= MAX_RECORD_BYTES:
        chunk = os.read(fd, max(want, 65536))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    if total > MAX_RECORD_BYTES:
        raise OSError(errno.EFBIG, f"grew past {MAX_RECORD_BYTES} bytes while being read")
    return b"".join(chunks)


def load_record(path: Path, model: type[M]) -> M:
    """Like ``read_record`` but raises ``RecordError`` naming the file."""
    result = read_record(path, model)
    if result.record is None:
        raise RecordError(f"{path}: {result.problem}")
    return result.record


def record_json(record: BaseModel) -> str:
    """The exact text ``write_record`` writes for ``record``."""
    return json_text(record.model_dump(mode="json", exclude_none=False))


def write_record(path: Path, record: BaseModel, *, fsync: bool = True) -> None:
    atomic_write_text(path, record_json(record), fsync=fsync)


# ------------------------------------------------------------------- standard mode


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

    @property
    def is_fallback(self) -> bool:
        """A heuristic stand-in written when the judge's reply could not be used."""
        return self.fallback or not self.is_valid


class JudgeTiming(_Open):
    """``judge/timing.json`` and ``judge/judge_NN/timing.json``."""

    judge_duration_seconds: float = Field(ge=0)
    measured_at: str | None = None


class ProcessRecord(_Closed):
    """``agent/process.json``: the agent process of a run, written when it starts, so a
    later resume or recovery can find it (or what it left) if its runner was killed."""

    command: list[str]
    host: str
    pid: int
    started_at: str
    # The process start time (Linux /proc), so a reused pid is not mistaken for it.
    pid_start: str | None = None


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

    ProjectScylla writes ``is_valid`` (false when not every judge of the panel was valid)
    and ``criteria_scores`` (may be null) since 2026-02-09; older versions wrote neither.
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


def grade_for(score: float) -> str:
    """Letter grade of a consensus score (S only at exactly 1.0)."""
    if score >= 1.0:
        return "S"
    for floor, letter in ((0.8, "A"), (0.6, "B"), (0.4, "C"), (0.2, "D")):
        if score >= floor:
            return letter
    return "F"


# =========================================================================== reports
# Report files rebuilt from run_result.json files (experiment_infra/reports/). They
# keep ProjectScylla's keys and meanings so tools built on its reports keep working;
# keys this project adds (missing runs, tied subtests) are extra keys, never renames.
#
# Cost-of-pass values: a number; the string "inf" when runs completed and none passed
# (JSON has no infinity, and float("inf") reads the string back); null when there
# was nothing to measure (no completed run).

INFINITE = "inf"


def _inf_as_text(v: float | str | None) -> float | str | None:
    if isinstance(v, float) and math.isinf(v) and v > 0:
        return INFINITE
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError(f"cost-of-pass must be a number, \"{INFINITE}\" or null, got {v}")
    return v


CostOfPass = Annotated[float | Literal["inf"] | None, AfterValidator(_inf_as_text)]


def cost_of_pass_value(v: float | str | None) -> float | None:
    """A report's cost-of-pass as a float (``math.inf`` for ``"inf"``), None when unmeasured."""
    return math.inf if v == INFINITE else (None if v is None else float(v))


class MissingRun(_Open):
    """An expected run left out of the aggregates because it is not ``completed``."""

    tier: str
    subtest: str
    run_number: int
    status: str
    reason: str


class SubtestResult(_Open):
    """One entry of ``T*/result.json`` ``subtest_results``: the subtest's completed runs aggregated.

    The statistics are null when no run completed (never zero: a missing run is not a 0 score).
    """

    subtest_id: str
    tier_id: str
    runs: list[RunResult]
    pass_rate: float | None = None
    mean_score: float | None = None
    median_score: float | None = None
    std_dev_score: float | None = None
    mean_cost: float | None = None
    total_cost: float = 0.0
    token_stats: TokenStats = TokenStats()
    consistency: float | None = None
    grade_distribution: dict[str, int] | None = None
    modal_grade: str | None = None
    min_grade: str | None = None
    max_grade: str | None = None
    selected_as_best: bool = False
    selection_reason: str = ""
    rate_limit_info: dict[str, Any] | None = None
    expected_runs: int | None = None
    missing_runs: list[MissingRun] = []


class TierResult(_Open):
    """``T*/result.json`` (and each entry of the experiment's ``tier_results``)."""

    tier_id: str
    subtest_results: dict[str, SubtestResult]
    best_subtest: str | None = None
    best_subtest_score: float | None = None
    inherited_from: dict[str, Any] | None = None
    tiebreaker_needed: bool = False
    total_cost: float = 0.0
    total_duration: float = 0.0
    cost_of_pass: CostOfPass = None
    token_stats: TokenStats = TokenStats()
    tied_subtests: list[str] = []


class ExperimentResult(_Open):
    """The experiment's ``result.json``."""

    config: ExperimentConfig
    tier_results: dict[str, TierResult]
    best_overall_tier: str | None = None
    best_overall_subtest: str | None = None
    frontier_cop: CostOfPass = None
    frontier_cop_tier: str | None = None
    total_cost: float = 0.0
    total_duration_seconds: float = 0.0
    token_stats: TokenStats = TokenStats()
    started_at: str | None = None
    completed_at: str | None = None
    missing_runs: list[MissingRun] = []


class SubtestReportSummary(_Open):
    total_runs: int
    passed: int
    pass_rate: float | None = None
    mean_score: float | None = None
    median_score: float | None = None
    std_dev: float | None = None
    total_cost: float = 0.0
    consistency: float | None = None
    grade_distribution: dict[str, int] | None = None
    modal_grade: str | None = None
    min_grade: str | None = None
    max_grade: str | None = None


class SubtestReportChild(_Open):
    run_number: int
    score: float
    passed: bool
    report: str


class SubtestReport(_Open):
    """``T*/{subtest}/report.json``."""

    subtest_id: str
    tier_id: str
    summary: SubtestReportSummary
    token_stats: TokenStats
    children: list[SubtestReportChild]
    generated_at: str | None = None
    missing_runs: list[MissingRun] = []


class TierReportSummary(_Open):
    total_subtests: int
    best_subtest: str | None = None
    best_score: float | None = None
    total_cost: float = 0.0
    total_duration: float = 0.0
    tiebreaker_needed: bool = False


class TierReportBest(_Open):
    subtest: str | None = None
    score: float | None = None
    report: str | None = None


class TierReportChild(_Open):
    id: str
    score: float | None = None
    pass_rate: float | None = None
    cost: float = 0.0
    selected: bool = False
    report: str


class TierReport(_Open):
    """``T*/report.json``."""

    tier: str
    summary: TierReportSummary
    token_stats: TokenStats
    best: TierReportBest
    children: list[TierReportChild]
    generated_at: str | None = None


class ExperimentReportSummary(_Open):
    total_tiers: int
    best_tier: str | None = None
    best_subtest: str | None = None
    frontier_cop: CostOfPass = None
    total_cost: float = 0.0
    total_duration: float = 0.0
    started_at: str | None = None
    completed_at: str | None = None


class ExperimentReportBest(_Open):
    tier: str | None = None
    subtest: str | None = None
    report: str | None = None


class ExperimentReportChild(_Open):
    tier: str
    best_subtest: str | None = None
    best_score: float | None = None
    cost: float = 0.0
    report: str


class ExperimentReport(_Open):
    """The experiment's ``report.json``."""

    experiment_id: str
    summary: ExperimentReportSummary
    token_stats: TokenStats
    best: ExperimentReportBest
    children: list[ExperimentReportChild]
    generated_at: str | None = None


class TierComparisonEntry(_Open):
    best_subtest: str | None = None
    best_score: float | None = None
    total_cost: float = 0.0
    tiebreaker_needed: bool = False
    cost_of_pass: CostOfPass = None


class TierComparison(RootModel[dict[str, TierComparisonEntry]]):
    """``tier_comparison.json``: one entry per tier."""


class SubtestVote(_Open):
    subtest_id: str
    score: float
    confidence: float
    reasoning: str


class BestSubtest(_Open):
    """``T*/best_subtest.json``: how the tier's best subtest was chosen."""

    winning_subtest: str
    winning_score: float
    votes: list[SubtestVote]
    margin: float
    tiebreaker_needed: bool = False
    tiebreaker_result: SubtestVote | None = None


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


# ============================================================================= locks


class LockInfo(_Closed):
    """A per-experiment lock file (``.recover.lock``): who holds it, so a second
    recovery can name the holder and a dead holder's lock can be taken over."""

    pid: int
    host: str
    started_at: str
    token: str
    command: list[str] = []
    # The holder's process start time (Linux /proc), so a reused pid is not mistaken for it.
    pid_start: str | None = None


# ====================================================================== status cache


class CachedRun(_Closed):
    """One run's classification and the stat signature of the files it was read from."""

    sig: str
    status: str
    reason: str
    judges: list[tuple[str, str]]  # (status, reason) per judge slot, in slot order


class StatusCacheFile(_Closed):
    """``.recover-cache.json``: lets a recovery skip re-reading runs whose files did not change."""

    version: int
    judge_models: list[str]
    runs: dict[str, CachedRun] = {}
