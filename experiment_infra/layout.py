"""Every path this project reads or writes, in one place.

Nothing else in the code base spells a file name. Three layouts live here:

- standard mode: ``results/{experiment}/{YYYYmmdd_HHMMSS}_{git7}[-dirty]/{variant}/...``
- inspect mode:  ``results/{experiment}/{timestamp}_{git7}_{variant}_{id}.eval``
- agent evaluation (ProjectScylla's layout):
  ``{experiment_dir}/{tier}/{subtest}/run_{NN}/{agent,judge}/...``
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from .errors import ExperimentError

# Names become directory names and travel on command lines, so only a portable
# subset is allowed (no separators, no NUL, no unicode look-alikes, no leading dot
# or dash that would hide the directory or read as a flag).
# \Z, not $: "$" also matches before a trailing newline, which would let "a\n" through.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+=@,-]*\Z")
MAX_NAME_LENGTH = 128

DIRTY_SUFFIX = "-dirty"
NOGIT = "nogit"
RUN_DIR_PATTERN = re.compile(r"^[0-9]{8}_[0-9]{6}_[0-9a-z]+(-dirty)?\Z")
_RUN_NUMBER = re.compile(r"^run_([0-9]+)\Z")
_ATTEMPT = re.compile(r"^attempt_([0-9]+)\Z")
_JUDGE_SLOT = re.compile(r"^judge_([0-9]+)\Z")


class UnsafeNameError(ExperimentError, ValueError):
    """A variant, tier or subtest name that cannot be a single directory name."""


def check_name(kind: str, name: object) -> str:
    """Return ``name`` if it is a safe single directory name, else raise a one-line error."""
    if not isinstance(name, str) or not name:
        raise UnsafeNameError(f"{kind} name {name!r} is empty or not a string")
    shown = name if len(name) <= 40 else name[:37] + "..."
    if len(name) > MAX_NAME_LENGTH:
        raise UnsafeNameError(f"{kind} name {shown!r} is longer than {MAX_NAME_LENGTH} characters")
    if name in (".", "..") or not _SAFE_NAME.match(name):
        raise UnsafeNameError(
            f"{kind} name {shown!r} is not a safe directory name: use letters, digits and ._+=@,- "
            "(no path separators, no leading dot or dash, ASCII only)"
        )
    return name


# --------------------------------------------------------------------- standard mode


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
        return self.dir / "config.json"

    @property
    def run_record(self) -> Path:
        return self.dir / "run_record.json"

    @property
    def stdout(self) -> Path:
        return self.dir / "stdout.log"

    @property
    def stderr(self) -> Path:
        return self.dir / "stderr.log"

    @property
    def metrics(self) -> Path:
        """Optional numeric metrics an entry point may write (used by reports)."""
        return self.dir / "metrics.json"

    @property
    def attempts_dir(self) -> Path:
        return self.dir / ".attempts"

    def attempt_dir(self, attempt: int) -> Path:
        """Where everything an earlier attempt left in the case directory is moved before a retry."""
        return self.attempts_dir / f"attempt_{attempt}"

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
        """``git diff HEAD`` of a dirty working tree, beside the manifest."""
        return self.dir / "git.patch"

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
    def lock(self) -> Path:
        return self.dir / ".lock"

    def case(self, variant_name: str) -> CasePaths:
        return CasePaths(self.dir / check_name("variant", variant_name))

    def is_run_dir(self) -> bool:
        return self.manifest.is_file()


# ----------------------------------------------------------------------- inspect mode


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


# --------------------------------------------------------------- agent evaluation


class _Reported:
    """``report.json`` and ``report.md``: the reports of a run, a subtest, a tier or an experiment."""

    dir: Path

    @property
    def report_json(self) -> Path:
        return self.dir / "report.json"

    @property
    def report_md(self) -> Path:
        return self.dir / "report.md"


class _Summarized(_Reported):
    """Tier and experiment level: also the aggregated ``result.json`` and ``summary.md``."""

    @property
    def result(self) -> Path:
        return self.dir / "result.json"

    @property
    def summary_md(self) -> Path:
        return self.dir / "summary.md"


def run_dir_name_for(run_number: int) -> str:
    return f"run_{run_number:02d}"


def parse_run_number(name: str) -> int | None:
    m = _RUN_NUMBER.match(name)
    return int(m.group(1)) if m else None


def judge_slot_name(slot: int) -> str:
    return f"judge_{slot:02d}"


@dataclass(frozen=True)
class JudgeSlotPaths:
    """``run_NN/judge/judge_NN/``: one judge model's grading of one run."""

    dir: Path
    slot: int

    @property
    def judgment(self) -> Path:
        return self.dir / "judgment.json"

    @property
    def response(self) -> Path:
        return self.dir / "response.txt"

    @property
    def stdout(self) -> Path:
        return self.dir / "stdout.log"

    @property
    def stderr(self) -> Path:
        return self.dir / "stderr.log"

    @property
    def timing(self) -> Path:
        return self.dir / "timing.json"

    @property
    def replay(self) -> Path:
        return self.dir / "replay.sh"

    @property
    def model_md(self) -> Path:
        return self.dir / "MODEL.md"

    @property
    def command_log(self) -> Path:
        """This project's record of the judge command (exit code); absent in foreign runs."""
        return self.dir / "command_log.json"


@dataclass(frozen=True)
class AgentRunPaths(_Reported):
    """``{tier}/{subtest}/run_{NN}/``: one agent run and its judge panel."""

    dir: Path

    @property
    def run_number(self) -> int:
        number = parse_run_number(self.dir.name)
        if number is None:
            raise ValueError(f"{self.dir}: not a run directory (expected run_NN)")
        return number

    # agent/
    @property
    def agent_dir(self) -> Path:
        return self.dir / "agent"

    @property
    def command_log(self) -> Path:
        return self.agent_dir / "command_log.json"

    @property
    def agent_stdout(self) -> Path:
        return self.agent_dir / "stdout.log"

    @property
    def agent_stderr(self) -> Path:
        return self.agent_dir / "stderr.log"

    @property
    def output(self) -> Path:
        return self.agent_dir / "output.txt"

    @property
    def agent_timing(self) -> Path:
        return self.agent_dir / "timing.json"

    @property
    def prompt(self) -> Path:
        return self.agent_dir / "prompt.md"

    @property
    def agent_replay(self) -> Path:
        return self.agent_dir / "replay.sh"

    @property
    def agent_result(self) -> Path:
        return self.agent_dir / "result.json"

    @property
    def agent_model_md(self) -> Path:
        return self.agent_dir / "MODEL.md"

    @property
    def agent_process(self) -> Path:
        """This project's record of the running agent process (pid, host, start)."""
        return self.agent_dir / "process.json"

    # judge/
    @property
    def judge_dir(self) -> Path:
        return self.dir / "judge"

    @property
    def consensus(self) -> Path:
        return self.judge_dir / "result.json"

    @property
    def judge_timing(self) -> Path:
        return self.judge_dir / "timing.json"

    def judge_slot(self, slot: int) -> JudgeSlotPaths:
        if slot < 1:
            raise ValueError(f"judge slots are numbered from 1, got {slot}")
        return JudgeSlotPaths(self.judge_dir / judge_slot_name(slot), slot)

    def judge_slots_on_disk(self) -> list[JudgeSlotPaths]:
        """The ``judge_NN`` directories present (a linked ``judge/`` is not followed)."""
        if not self.judge_dir.is_dir() or self.judge_dir.is_symlink():
            return []
        found = (_JUDGE_SLOT.match(p.name) for p in self.judge_dir.iterdir() if p.is_dir() and not p.is_symlink())
        return [self.judge_slot(n) for n in sorted(int(m.group(1)) for m in found if m and int(m.group(1)) >= 1)]

    # run level
    @property
    def run_result(self) -> Path:
        return self.dir / "run_result.json"

    @property
    def workspace(self) -> Path:
        return self.dir / "workspace"

    @property
    def task_prompt(self) -> Path:
        return self.dir / "task_prompt.md"

    @property
    def judge_prompt(self) -> Path:
        return self.dir / "judge_prompt.md"

    @property
    def worktree_script(self) -> Path:
        """The ``git worktree add`` command that made ``workspace/`` (run it to rebuild one)."""
        return self.dir / "worktree_create.sh"

    @property
    def workspace_instructions(self) -> Path:
        """A condition's system prompt, where Claude Code reads project instructions."""
        return self.workspace / "CLAUDE.md"


@dataclass(frozen=True)
class ExperimentPaths(_Summarized):
    """An agent-evaluation experiment directory (ProjectScylla's layout)."""

    dir: Path

    @classmethod
    def new(cls, results_root: Path, experiment_name: str, when: datetime, git7: str, dirty: bool) -> ExperimentPaths:
        """An experiment directory that does not exist yet, named as in standard mode."""
        return cls(free_run_dir(results_root, experiment_name, when, git7, dirty))

    @property
    def patch(self) -> Path:
        """``git diff HEAD`` of a dirty project tree when the suite was run."""
        return self.dir / "config" / "git.patch"

    @property
    def worktree_lock(self) -> Path:
        """Serialises ``git worktree add`` on ``repo/`` across threads and processes."""
        return self.dir / ".worktree.lock"

    @property
    def config(self) -> Path:
        return self.dir / "config" / "experiment.json"

    @property
    def manifest(self) -> Path:
        """This project's own record of the suite (conditions, commands); absent in foreign dirs."""
        return self.dir / "config" / "manifest.json"

    @property
    def lock(self) -> Path:
        return self.dir / ".recover.lock"

    @property
    def status_cache(self) -> Path:
        """Classifications keyed by the files' stat signatures (written by real recoveries only)."""
        return self.dir / ".recover-cache.json"

    @property
    def prompt(self) -> Path:
        return self.dir / "prompt.md"

    @property
    def judge_prompt(self) -> Path:
        return self.dir / "judge_prompt.md"

    @property
    def criteria(self) -> Path:
        return self.dir / "criteria.md"

    @property
    def rubric(self) -> Path:
        return self.dir / "rubric.yaml"

    @property
    def repo(self) -> Path:
        """The task repository clone that run workspaces are worktrees of."""
        return self.dir / "repo"

    # experiment-level reports

    @property
    def tier_comparison(self) -> Path:
        return self.dir / "tier_comparison.json"

    @property
    def plots_dir(self) -> Path:
        return self.dir / "plots"

    # report plots (PNG), written by experiment_infra.reports.plots
    @property
    def score_distribution_plot(self) -> Path:
        return self.plots_dir / "score_distribution.png"

    @property
    def pass_rate_plot(self) -> Path:
        return self.plots_dir / "pass_rate.png"

    @property
    def cost_vs_score_plot(self) -> Path:
        return self.plots_dir / "cost_vs_score.png"

    @property
    def judge_agreement_plot(self) -> Path:
        return self.plots_dir / "judge_agreement.png"

    def tier(self, tier: str) -> TierPaths:
        return TierPaths(self.dir / check_name("tier", tier))

    def subtest(self, tier: str, subtest: str) -> SubtestPaths:
        return SubtestPaths(self.tier(tier).dir / check_name("subtest", subtest))

    def run(self, tier: str, subtest: str, run_number: int) -> AgentRunPaths:
        return self.subtest(tier, subtest).run(run_number)

    def subtests_on_disk(self, tier: str) -> list[str]:
        """Subtest directories present under a tier (names that are safe only)."""
        tier_dir = self.tier(tier).dir
        if not tier_dir.is_dir() or tier_dir.is_symlink():
            return []
        names = []
        for p in tier_dir.iterdir():
            if p.is_dir() and not p.is_symlink() and not p.name.startswith("."):
                try:
                    names.append(check_name("subtest", p.name))
                except UnsafeNameError:
                    continue
        return sorted(names)


@dataclass(frozen=True)
class TierPaths(_Summarized):
    dir: Path

    @property
    def best_subtest(self) -> Path:
        return self.dir / "best_subtest.json"


@dataclass(frozen=True)
class SubtestPaths(_Reported):
    dir: Path

    def run(self, run_number: int) -> AgentRunPaths:
        return AgentRunPaths(self.dir / run_dir_name_for(run_number))

    @property
    def config_manifest(self) -> Path:
        return self.dir / "config_manifest.json"

    @property
    def failed_dir(self) -> Path:
        return self.dir / ".failed"

    def failed_attempt(self, run_number: int, attempt: int) -> Path:
        """Where a run directory is moved before it is run again."""
        return self.failed_dir / f"{run_dir_name_for(run_number)}_attempt_{attempt}"

    def next_failed_attempt(self, run_number: int) -> Path:
        attempt = 1
        while self.failed_attempt(run_number, attempt).exists():
            attempt += 1
        return self.failed_attempt(run_number, attempt)

    def runs_on_disk(self) -> list[int]:
        if not self.dir.is_dir():
            return []
        found = (parse_run_number(p.name) for p in self.dir.iterdir() if p.is_dir())
        return sorted(n for n in found if n is not None)


def next_aside(dir_: Path, name: str) -> Path:
    """``{dir_}/.failed/{name}_attempt_{K}`` with the first unused K (judge slots)."""
    attempt = 1
    while (dir_ / ".failed" / f"{name}_attempt_{attempt}").exists():
        attempt += 1
    return dir_ / ".failed" / f"{name}_attempt_{attempt}"


# ---------------------------------------------------------------------------- locks


def lock_takeover_marker(lock: Path) -> Path:
    """Held for the instant a stale lock is replaced, so only one process replaces it."""
    return lock.with_name(lock.name + ".takeover")


def lock_temp(lock: Path, token: str, host: str, pid: int) -> Path:
    """A fully written lock file, linked or renamed into place (never seen half-written);
    named like every other temp file (``temp_prefix``), so a killed contender's is swept."""
    return lock.with_name(f"{temp_prefix(lock, host, pid)}{token}{TEMP_SUFFIX}")


# ---------------------------------------------------------------- atomic-write temps
# A file is written as a temp file beside it, then renamed over it. A writer killed in
# between leaves the temp behind; its name says which host and pid wrote it, so a later
# run can tell a dead writer's leftover (same host, pid gone) from a live writer's file
# (any other host is never judged from here).

TEMP_SUFFIX = ".tmp"
_HOST_CHARS = re.compile(r"[^A-Za-z0-9.-]")
# ".{target}~{host}~{pid}~{random}.tmp": host, pid and the random part hold no "~" (so
# a host name with dots cannot be misread), the random part no ".".
_TEMP = re.compile(r"^\.(?P<target>.+)~(?P<host>[A-Za-z0-9.-]+)~(?P<pid>[0-9]+)~[^.~/]*\.tmp\Z")


def temp_host(host: str) -> str:
    """``host`` as it appears in temp names (anything but letters, digits, ``.-`` becomes ``-``)."""
    return _HOST_CHARS.sub("-", host) or "-"


def temp_prefix(target: Path, host: str, pid: int) -> str:
    """The start of a temp file name for writing ``target`` (``mkstemp`` adds the random part)."""
    return f".{Path(target).name}~{temp_host(host)}~{pid}~"


@dataclass(frozen=True)
class TempOwner:
    """Who wrote a temp file, read back from its name."""

    target: str
    host: str
    pid: int


def parse_temp_name(name: str) -> TempOwner | None:
    """The writer of a temp file named by ``temp_prefix``; None for any other name
    (older temp names carry no writer, and are never judged)."""
    m = _TEMP.match(name)
    return TempOwner(m.group("target"), m.group("host"), int(m.group("pid"))) if m else None


# Directories a sweep does not descend into: kept attempts stay exactly as they were
# moved; clones and worktrees hold the task's files, not ours (a workspace's top level is
# still looked at: its CLAUDE.md is written atomically).
SWEEP_SKIP_DIRS = frozenset({".attempts", ".failed", ".git", "repo"})
SWEEP_TOP_ONLY_DIRS = frozenset({"workspace"})


def lock_aside(lock: Path, token: str) -> Path:
    """Where a stale takeover marker is moved to check that it was the one judged stale."""
    return lock.with_name(f"{lock.name}.{token}.stale")
