"""Agent evaluation, ProjectScylla's layout: ``{experiment_dir}/{tier}/{subtest}/run_{NN}/{agent,judge}/...``."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from datetime import datetime
from pathlib import Path

from .names import COMPLETED, IN_PROGRESS, SLURM_LOGS, UnsafeNameError, check_name
from .standard import free_run_dir

_RUN_NUMBER = re.compile(r"^run_([0-9]+)\Z")
_JUDGE_SLOT = re.compile(r"^judge_([0-9]+)\Z")


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


def run_label(tier: str, subtest: str, run_number: int) -> str:
    """``T0/00/run_01``: how a run is named to users, in ``--json`` and in the status cache."""
    return f"{tier}/{subtest}/{run_dir_name_for(run_number)}"


def judge_slot_name(slot: int) -> str:
    return f"judge_{slot:02d}"


@dataclass(frozen=True)
class JudgeSlotPaths:
    """``run_NN/judge/judge_NN/``: one judge model's grading of one run."""

    dir: Path
    slot: int

    @cached_property
    def judgment(self) -> Path:
        return self.dir / "judgment.json"

    @cached_property
    def response(self) -> Path:
        return self.dir / "response.txt"

    @cached_property
    def stdout(self) -> Path:
        return self.dir / "stdout.log"

    @cached_property
    def stderr(self) -> Path:
        return self.dir / "stderr.log"

    @cached_property
    def timing(self) -> Path:
        return self.dir / "timing.json"

    @cached_property
    def replay(self) -> Path:
        return self.dir / "replay.sh"

    @cached_property
    def model_md(self) -> Path:
        return self.dir / "MODEL.md"

    @cached_property
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
    @cached_property
    def agent_dir(self) -> Path:
        return self.dir / "agent"

    @cached_property
    def command_log(self) -> Path:
        return self.agent_dir / "command_log.json"

    @cached_property
    def agent_stdout(self) -> Path:
        return self.agent_dir / "stdout.log"

    @cached_property
    def agent_stderr(self) -> Path:
        return self.agent_dir / "stderr.log"

    @cached_property
    def output(self) -> Path:
        return self.agent_dir / "output.txt"

    @cached_property
    def agent_timing(self) -> Path:
        return self.agent_dir / "timing.json"

    @cached_property
    def prompt(self) -> Path:
        return self.agent_dir / "prompt.md"

    @cached_property
    def agent_replay(self) -> Path:
        return self.agent_dir / "replay.sh"

    @cached_property
    def agent_result(self) -> Path:
        return self.agent_dir / "result.json"

    @cached_property
    def agent_model_md(self) -> Path:
        return self.agent_dir / "MODEL.md"

    @cached_property
    def agent_process(self) -> Path:
        """This project's record of the running agent process (pid, host, start)."""
        return self.agent_dir / "process.json"

    # judge/
    @cached_property
    def judge_dir(self) -> Path:
        return self.dir / "judge"

    @cached_property
    def consensus(self) -> Path:
        return self.judge_dir / "result.json"

    @cached_property
    def judge_timing(self) -> Path:
        return self.judge_dir / "timing.json"

    def judge_slot(self, slot: int) -> JudgeSlotPaths:
        if slot < 1:
            raise ValueError(f"judge slots are numbered from 1, got {slot}")
        slots = self.__dict__.setdefault("_slots", {})  # built once: the rules ask for each many times
        found = slots.get(slot)
        if found is None:
            found = slots[slot] = JudgeSlotPaths(self.judge_dir / judge_slot_name(slot), slot)
        return found

    def judge_slots_on_disk(self) -> list[JudgeSlotPaths]:
        """The ``judge_NN`` directories present (a linked ``judge/`` is not followed)."""
        if not self.judge_dir.is_dir() or self.judge_dir.is_symlink():
            return []
        found = (_JUDGE_SLOT.match(p.name) for p in self.judge_dir.iterdir() if p.is_dir() and not p.is_symlink())
        return [self.judge_slot(n) for n in sorted(int(m.group(1)) for m in found if m and int(m.group(1)) >= 1)]

    # run level
    @cached_property
    def run_result(self) -> Path:
        return self.dir / "run_result.json"

    @cached_property
    def workspace(self) -> Path:
        return self.dir / "workspace"

    @cached_property
    def task_prompt(self) -> Path:
        return self.dir / "task_prompt.md"

    @cached_property
    def judge_prompt(self) -> Path:
        return self.dir / "judge_prompt.md"

    @cached_property
    def worktree_script(self) -> Path:
        """The ``git worktree add`` command that made ``workspace/`` (run it to rebuild one)."""
        return self.dir / "worktree_create.sh"

    @cached_property
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
    def checkpoint(self) -> Path:  # ProjectScylla's record of each run's state (absent in ours)
        return self.dir / "checkpoint.json"

    @property
    def manifest(self) -> Path:
        """This project's own record of the suite (conditions, commands); absent in foreign dirs."""
        return self.dir / "config" / "manifest.json"

    @property
    def lock(self) -> Path:
        return self.dir / ".recover.lock"

    @property
    def slurm_logs(self) -> Path:
        """Where the Slurm worker jobs of a ``--slurm-workers`` run or recovery write their output."""
        return self.dir / SLURM_LOGS

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

    @cached_property
    def split(self) -> bool:
        """Whether this is ProjectScylla's split layout (written since 2026-03-28): every run
        under ``in_progress/{tier}/{subtest}/`` while its agent works, moved to
        ``completed/{tier}/{subtest}/`` before it is judged, and the tiers' and subtests' own
        files in ``completed/``. The experiment's own files stay at its top either way.

        Told by a tier directory in ``completed/`` or ``in_progress/``, not by the two alone:
        an empty one (ProjectScylla makes both before its first run, anyone can make one)
        must not send a flat experiment's runs and reports elsewhere."""
        return any(_holds_directory(self.dir / name) for name in (COMPLETED, IN_PROGRESS))

    @property
    def completed_dir(self) -> Path:
        """``completed/``: the split layout's home of tiers, subtests and runs."""
        return self.dir / COMPLETED

    def tier(self, tier: str) -> TierPaths:
        """The tier's home: where its files are written (``completed/{tier}`` when split)."""
        return TierPaths(self.tier_top / check_name("tier", tier))

    def subtest(self, tier: str, subtest: str) -> SubtestPaths:
        """The subtest's home; its runs may be elsewhere too (``subtest_places``)."""
        return SubtestPaths(self.tier(tier).dir / check_name("subtest", subtest))

    def run(self, tier: str, subtest: str, run_number: int) -> AgentRunPaths:
        """The run's home: where a recovery writes it (``run_found`` says where it is now)."""
        return self.subtest(tier, subtest).run(run_number)

    def tier_places(self, tier: str) -> tuple[Path, ...]:
        """Every directory a tier's subtests and runs may be in, the first winning: its home,
        then in a split experiment ``in_progress/`` (runs not yet judged) and the top (runs
        written before the split, in an experiment resumed since), as ProjectScylla itself
        looks for them."""
        home = self.tier(tier).dir
        return (home, self.dir / IN_PROGRESS / tier, self.dir / tier) if self.split else (home,)

    def subtest_places(self, tier: str, subtest: str) -> tuple[SubtestPaths, ...]:
        """``tier_places`` for one subtest: its home first."""
        name = check_name("subtest", subtest)
        return tuple(SubtestPaths(place / name) for place in self.tier_places(tier))

    def read_places(self, tier: str, subtest: str) -> tuple[SubtestPaths, ...]:
        """``subtest_places`` in the order a run is read from them: ``in_progress/`` first, the fresh
        copy where both exist (ProjectScylla promotes a run by deleting any ``completed/`` copy,
        since ``7c644312``, 2026-04-21: that one is a leftover of an earlier attempt)."""
        places = self.subtest_places(tier, subtest)
        return (places[1], places[0], *places[2:]) if len(places) > 1 else places

    def elsewhere(self, run: AgentRunPaths) -> str | None:
        """Where ``run`` is relative to the experiment (``in_progress/T1/01/run_01/``) when that is
        not its home, else None (what a recovery says before moving it home)."""
        return None if run.dir.parent.parent.parent == self.tier_top else os.path.relpath(run.dir, self.dir) + os.sep

    @property
    def tier_top(self) -> Path:
        """The directory the tiers' homes are in: ``completed/`` when split, else the experiment."""
        return self.completed_dir if self.split else self.dir

    def runs_found(self, tier: str, subtest: str) -> dict[int, tuple[SubtestPaths, ...]]:
        """Run number -> the places (of ``read_places``, in order: the first is where the
        run is read) its directory is in, for the runs on disk: one listing per place."""
        found: dict[int, tuple[SubtestPaths, ...]] = {}
        for place in self.read_places(tier, subtest):
            for number in place.runs_on_disk():
                found[number] = found.get(number, ()) + (place,)
        return found

    def run_found(self, tier: str, subtest: str, run_number: int) -> AgentRunPaths:
        """Where the run is now: the first of ``read_places`` holding it, else its home.
        Home is looked at again before each later place: a move home meanwhile (bring_home) is never missed."""
        places = self.subtest_places(tier, subtest)
        if len(places) > 1 and os.path.isdir(places[1].run_dir_str(run_number)):
            return places[1].run(run_number)  # in_progress/: the fresh copy (read_places)
        for place in places[2:]:
            if not os.path.isdir(places[0].run_dir_str(run_number)) and os.path.isdir(place.run_dir_str(run_number)):
                return place.run(run_number)
        return places[0].run(run_number)

    def run_dirs_of_labels(self, labels: Iterable[str]) -> Iterator[str | None]:
        """The run directory (a plain string) of each ``run_label`` where the run is now (as
        ``run_found``); None for anything else. Each subtest is looked at once, however many
        of its runs are asked for."""
        subtests: dict[str, tuple[SubtestPaths, dict[int, SubtestPaths]] | None] = {}
        for label in labels:
            where, _, run = label.rpartition("/")
            number = parse_run_number(run)
            if number is None or run != run_dir_name_for(number):
                yield None
                continue
            sub = subtests.get(where, False)
            if sub is False:
                tier, _, subtest = where.partition("/")
                try:
                    home = self.subtest(tier, subtest)
                    found = self.runs_found(tier, subtest) if self.split else {}
                    sub = subtests[where] = (home, {n: places[0] for n, places in found.items()})
                except UnsafeNameError:
                    sub = subtests[where] = None
            yield None if sub is None else sub[1].get(number, sub[0]).run_dir_str(number)

    def subtests_on_disk(self, tier: str) -> list[str]:
        """Subtest directories present under a tier, in any of its places (names that are safe only)."""
        names: set[str] = set()
        for tier_dir in self.tier_places(tier):
            if not tier_dir.is_dir() or tier_dir.is_symlink():
                continue
            for p in tier_dir.iterdir():
                if p.is_dir() and not p.is_symlink() and not p.name.startswith("."):
                    try:
                        names.add(check_name("subtest", p.name))
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

    def run_dir_str(self, run_number: int) -> str:
        """``run(n).dir`` as a plain string (a survey of many runs skips the Path objects)."""
        return os.fspath(self.dir) + os.sep + run_dir_name_for(run_number)  # os.path.join's generality costs more here

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
        """Numbers of the ``run_NN`` directories present, by their own names only (a ``run_1``
        is not run 1's directory); one listing: the entries' types come with it, so a survey
        of every subtest costs no stat per run."""
        try:
            with os.scandir(self.dir) as entries:
                found = [(parse_run_number(e.name), e.name) for e in entries if e.is_dir()]
        except OSError:  # absent, not a directory, unreadable: no runs to list
            return []
        return sorted(n for n, name in found if n is not None and name == run_dir_name_for(n))


def _holds_directory(path: Path) -> bool:
    """``path`` is a directory with a directory in it (not a hidden one)."""
    try:
        with os.scandir(path) as entries:
            return any(e.is_dir() and not e.name.startswith(".") for e in entries)
    except OSError:
        return False


def next_aside(dir_: Path, name: str) -> Path:
    """``{dir_}/.failed/{name}_attempt_{K}`` with the first unused K (judge slots)."""
    attempt = 1
    while (dir_ / ".failed" / f"{name}_attempt_{attempt}").exists():
        attempt += 1
    return dir_ / ".failed" / f"{name}_attempt_{attempt}"


