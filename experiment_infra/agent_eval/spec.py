"""What an agent-evaluation suite declares, and the resolved spec its runs execute.

``AgentEvalSuite`` is what a user writes in a suite file. ``AgentEvalSpec`` is what one
agent run or judge slot needs (task commit resolved to a full sha, commands as argv
templates); it is written to ``config/manifest.json`` so recovery can rerun any run.
Every check raises ``AgentEvalError`` with a one-line message naming the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence

from ..layout import UnsafeNameError, check_name
from ..errors import ExperimentError
from .commands import DEFAULT_AGENT_COMMAND, DEFAULT_JUDGE_COMMAND, check_template

DEFAULT_AGENT_TIMEOUT_SECONDS = 1800.0
DEFAULT_JUDGE_TIMEOUT_SECONDS = 600.0
DEFAULT_RETRIES = 1
DEFAULT_RETRY_DELAY_SECONDS = 10.0
# At most this many agent runs and judge slots at once when -p is not given: ProjectScylla's
# default for an experiment's parallel_subtests (a run per CLI process against one API).
DEFAULT_PARALLEL_SUBTESTS = 4
# scheme://... or scp-like user@host:path: cloned, not checked on disk.
_URL = re.compile(r"^([a-z][a-z0-9+.-]*://|[^/\s]+@[^/\s]+:)", re.IGNORECASE)


class AgentEvalError(ExperimentError, ValueError):
    """An agent-evaluation suite, spec or input that cannot be used (one-line message, exit 2)."""


def is_url(repo: str) -> bool:
    return bool(_URL.match(repo))


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise AgentEvalError(f"{name} must be a number > 0, got {value!r}")
    return float(value)


def _count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise AgentEvalError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


@dataclass(frozen=True)
class Condition:
    """One (tier, subtest) and the agent settings it runs with."""

    tier: str
    subtest: str
    model: str
    system_prompt: str | None = None
    extra_args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            check_name("tier", self.tier)
            check_name("subtest", self.subtest)
        except UnsafeNameError as exc:
            raise AgentEvalError(f"condition: {exc}") from None
        where = f"condition {self.tier}/{self.subtest}"
        if not isinstance(self.model, str) or not self.model.strip():
            raise AgentEvalError(f"{where}: model must be a non-empty string, got {self.model!r}")
        if isinstance(self.extra_args, str) or not all(isinstance(a, str) for a in self.extra_args):
            raise AgentEvalError(f"{where}: extra_args must be a list of strings, got {self.extra_args!r}")
        if self.system_prompt is not None and not isinstance(self.system_prompt, str):
            raise AgentEvalError(f"{where}: system_prompt must be a string or None")
        if not all(isinstance(k, str) and k and isinstance(v, str) for k, v in dict(self.env).items()):
            raise AgentEvalError(f"{where}: env must map variable names to string values")
        object.__setattr__(self, "extra_args", tuple(self.extra_args))
        object.__setattr__(self, "env", dict(self.env))

    @property
    def key(self) -> tuple[str, str]:
        return (self.tier, self.subtest)


@dataclass(frozen=True)
class TaskSpec:
    """The task every run starts from: a git repository (path, bundle or URL) at a commit."""

    repo: str | Path
    prompt_file: str | Path
    commit: str = "HEAD"
    criteria_file: str | Path | None = None
    rubric_file: str | Path | None = None

    def __post_init__(self) -> None:
        if not str(self.repo).strip():
            raise AgentEvalError("task.repo is empty: give a git repository path, bundle or URL")
        if not isinstance(self.commit, str) or not self.commit.strip():
            raise AgentEvalError(f"task.commit must be a commit sha, tag or branch, got {self.commit!r}")


@dataclass(frozen=True)
class AgentEvalSpec:
    """Everything a single agent run or judge slot needs; serialisable to the manifest."""

    experiment_id: str
    conditions: tuple[Condition, ...]
    runs_per_subtest: int
    judge_models: tuple[str, ...]
    task_repo: str
    task_commit: str
    agent_command: tuple[str, ...] = DEFAULT_AGENT_COMMAND
    judge_command: tuple[str, ...] = DEFAULT_JUDGE_COMMAND
    agent_timeout_seconds: float = DEFAULT_AGENT_TIMEOUT_SECONDS
    judge_timeout_seconds: float = DEFAULT_JUDGE_TIMEOUT_SECONDS
    retries: int = 0
    retry_delay_seconds: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "conditions", tuple(self.conditions))
        object.__setattr__(self, "judge_models", tuple(self.judge_models))
        object.__setattr__(self, "agent_command", tuple(self.agent_command))
        object.__setattr__(self, "judge_command", tuple(self.judge_command))
        if not self.conditions:
            raise AgentEvalError("conditions is empty: declare at least one Condition(tier, subtest, model)")
        seen: set[tuple[str, str]] = set()
        for c in self.conditions:
            if c.key in seen:
                raise AgentEvalError(
                    f"conditions: {c.tier}/{c.subtest} is declared twice; give each condition its own tier/subtest"
                )
            seen.add(c.key)
        if not self.judge_models:
            raise AgentEvalError("judge_models is empty: list at least one judge model (the panel)")
        if not all(isinstance(m, str) and m.strip() for m in self.judge_models):
            raise AgentEvalError(f"judge_models must be non-empty strings, got {list(self.judge_models)!r}")
        _count("runs_per_subtest", self.runs_per_subtest, 1)
        _count("retries", self.retries, 0)
        _positive("agent_timeout_seconds", self.agent_timeout_seconds)
        _positive("judge_timeout_seconds", self.judge_timeout_seconds)
        if self.retry_delay_seconds < 0:
            raise AgentEvalError(f"retry_delay_seconds must be >= 0, got {self.retry_delay_seconds!r}")
        try:
            check_template(self.agent_command, "agent_command")
            check_template(self.judge_command, "judge_command")
        except ValueError as exc:
            raise AgentEvalError(str(exc)) from None

    def condition(self, tier: str, subtest: str) -> Condition:
        for c in self.conditions:
            if c.key == (tier, subtest):
                return c
        known = ", ".join(f"{c.tier}/{c.subtest}" for c in self.conditions)
        raise AgentEvalError(f"no condition {tier}/{subtest} in this experiment (known: {known})")

    def runs(self) -> list[tuple[str, str, int]]:
        """Every expected run, in declaration order."""
        return [(c.tier, c.subtest, n) for c in self.conditions for n in range(1, self.runs_per_subtest + 1)]

    def with_commands(self, agent: Sequence[str] | None, judge: Sequence[str] | None) -> AgentEvalSpec:
        return replace(
            self,
            agent_command=tuple(agent) if agent else self.agent_command,
            judge_command=tuple(judge) if judge else self.judge_command,
        )


@dataclass(frozen=True)
class AgentEvalSuite:
    """An agent-evaluation suite, declared at module level as ``suite = AgentEvalSuite(...)``."""

    experiment_name: str
    conditions: Sequence[Condition]
    judge_models: Sequence[str]
    task: TaskSpec
    runs_per_subtest: int = 1
    experiment_id: str | None = None
    agent_command: Sequence[str] = DEFAULT_AGENT_COMMAND
    judge_command: Sequence[str] = DEFAULT_JUDGE_COMMAND
    agent_timeout_seconds: float = DEFAULT_AGENT_TIMEOUT_SECONDS
    judge_timeout_seconds: float = DEFAULT_JUDGE_TIMEOUT_SECONDS
    retries: int = DEFAULT_RETRIES
    retry_delay_seconds: float = DEFAULT_RETRY_DELAY_SECONDS
    language: str | None = None
    parallel_subtests: int | None = None  # -p when none is given (None: DEFAULT_PARALLEL_SUBTESTS)

    mode = "agent_eval"

    def __post_init__(self) -> None:
        try:
            check_name("experiment", self.experiment_name)
        except UnsafeNameError as exc:
            raise AgentEvalError(f"experiment_name: {exc}") from None
        if not isinstance(self.task, TaskSpec):
            raise AgentEvalError(f"task must be a TaskSpec(repo=..., prompt_file=...), got {type(self.task).__name__}")
        if not all(isinstance(c, Condition) for c in self.conditions):
            raise AgentEvalError("conditions must be a list of Condition(tier, subtest, model, ...)")
        object.__setattr__(self, "conditions", tuple(self.conditions))
        object.__setattr__(self, "judge_models", tuple(self.judge_models))
        if self.parallel_subtests is not None:
            _count("parallel_subtests", self.parallel_subtests, 1)
        self.to_spec(self.task.commit)  # the same checks a run makes, at import time

    @property
    def default_parallelism(self) -> int:
        """How many agent runs and judge slots run at once when ``-p`` is not given."""
        return self.parallel_subtests or DEFAULT_PARALLEL_SUBTESTS

    @property
    def id(self) -> str:
        return self.experiment_id or self.experiment_name

    def to_spec(self, commit_sha: str) -> AgentEvalSpec:
        return AgentEvalSpec(
            experiment_id=self.id,
            conditions=tuple(self.conditions),
            runs_per_subtest=self.runs_per_subtest,
            judge_models=tuple(self.judge_models),
            task_repo=str(self.task.repo),
            task_commit=commit_sha,
            agent_command=tuple(self.agent_command),
            judge_command=tuple(self.judge_command),
            agent_timeout_seconds=self.agent_timeout_seconds,
            judge_timeout_seconds=self.judge_timeout_seconds,
            retries=self.retries,
            retry_delay_seconds=self.retry_delay_seconds,
        )

    def input_files(self) -> dict[str, Path | None]:
        """The task files to copy into the experiment, checked to exist."""
        files: dict[str, Path | None] = {}
        for name in ("prompt_file", "criteria_file", "rubric_file"):
            value = getattr(self.task, name)
            if value is None:
                files[name] = None
                continue
            path = Path(value).expanduser()
            if not path.is_file():
                raise AgentEvalError(f"task.{name}: {path} does not exist or is not a file; fix the path in the suite")
            files[name] = path.resolve()
        return files
