"""Which runs an agent-evaluation experiment expects: the one rule recovery and reports share.

Expected = every tier of ``tiers_to_run`` × every subtest of that tier (its directories
on disk, plus any this project's ``config/manifest.json`` or ProjectScylla's
``checkpoint.json`` records, so a subtest that was deleted or never created is still
expected) × runs ``1..runs_per_subtest``.

A run directory outside ``1..runs_per_subtest`` (a stray ``run_03`` when
``runs_per_subtest`` is 2) is not expected: it is named in ``unexpected``, so both users
can say it is there, and neither plans work for it nor counts it in an aggregate. Were
the two users to decide this separately, a recovery would call an experiment whole
while its report left runs out (or the other way round).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import ExperimentError
from ..layout import AgentRunPaths, ExperimentPaths, UnsafeNameError, check_name, run_label
from ..records import AgentEvalManifest, ExperimentConfig, ScyllaCheckpoint, read_record

__all__ = ["ExpectedRuns", "OlderLayoutError", "UnexpectedRun", "expected_runs"]


class OlderLayoutError(ExperimentError, ValueError):
    """An experiment ProjectScylla wrote in a layout older than the one this project reads
    (before 2026-01-05): read as that layout, every run would look missing or unjudged,
    and a recovery would run again what is done. Refused, so nothing is changed."""


@dataclass(frozen=True)
class UnexpectedRun:
    """A run directory on disk whose number is outside ``1..runs_per_subtest``."""

    tier: str
    subtest: str
    run_number: int

    @property
    def label(self) -> str:
        return run_label(self.tier, self.subtest, self.run_number)


@dataclass(frozen=True)
class ExpectedRuns:
    """The expected runs of one experiment, and what was found beside them."""

    tiers: tuple[str, ...]
    subtests: dict[str, tuple[str, ...]]  # per tier of ``tiers``, sorted
    runs_per_subtest: int
    unexpected: tuple[UnexpectedRun, ...] = ()
    notes: tuple[str, ...] = ()  # why an input was (partly) ignored, in words

    @property
    def run_numbers(self) -> range:
        return range(1, self.runs_per_subtest + 1)

    @property
    def total(self) -> int:
        return sum(len(names) for names in self.subtests.values()) * self.runs_per_subtest

    def __iter__(self) -> Iterator[tuple[str, str, int]]:
        """``(tier, subtest, run_number)`` of every expected run, in tier, subtest, run order."""
        for tier in self.tiers:
            for subtest in self.subtests[tier]:
                for number in self.run_numbers:
                    yield tier, subtest, number

    @property
    def empty_tiers(self) -> tuple[str, ...]:
        """Tiers with no subtest at all (none on disk, none recorded): runs nobody can name."""
        return tuple(t for t in self.tiers if not self.subtests[t])

    def unexpected_in(self, tier: str, subtest: str) -> tuple[UnexpectedRun, ...]:
        return tuple(u for u in self.unexpected if (u.tier, u.subtest) == (tier, subtest))

    @property
    def unexpected_note(self) -> str | None:
        """One line naming the run directories left alone, or None when there are none."""
        if not self.unexpected:
            return None
        names = ", ".join(u.label for u in self.unexpected[:5])
        more = f" and {len(self.unexpected) - 5} more" if len(self.unexpected) > 5 else ""
        return (
            f"{len(self.unexpected)} run directory(ies) outside runs_per_subtest "
            f"(1..{self.runs_per_subtest}): {names}{more}; not expected, so neither recovered nor counted in the reports"
        )


def expected_runs(exp: ExperimentPaths, config: ExperimentConfig) -> ExpectedRuns:
    """Every run ``config`` and the directory say the experiment expects (reads only)."""
    notes: list[str] = []
    recorded: dict[str, set[str]] = {}
    manifest = read_record(exp.manifest, AgentEvalManifest)
    if manifest.record is not None:
        for c in manifest.record.conditions:
            recorded.setdefault(c.tier, set()).add(c.subtest)
    elif manifest.exists:
        notes.append(f"{exp.manifest} is unusable ({manifest.problem}); expected subtests come from disk only")
    # ProjectScylla's checkpoint.json names the subtests it started, including one killed
    # before its directory existed: missing work, as ProjectScylla's own scan counts it.
    checkpoint = read_record(exp.checkpoint, ScyllaCheckpoint)
    if checkpoint.record is not None:
        for tier in config.tiers_to_run:
            recorded.setdefault(tier, set()).update(checkpoint.record.subtests(tier))
    elif checkpoint.exists:
        notes.append(f"{exp.checkpoint} is unusable ({checkpoint.problem}); the subtests it names are not expected")
    subtests: dict[str, tuple[str, ...]] = {}
    unexpected: list[UnexpectedRun] = []
    wanted = range(1, config.runs_per_subtest + 1)
    sample: list[AgentRunPaths] = []  # the first runs found: their files tell the layout
    for tier in config.tiers_to_run:
        on_disk = exp.subtests_on_disk(tier)
        names = set(on_disk)
        for name in recorded.get(tier, ()):
            try:
                names.add(check_name("subtest", name))
            except UnsafeNameError:
                notes.append(f"subtest {name!r} of tier {tier} (recorded in config/manifest.json or checkpoint.json) is not a safe name; ignored")
        subtests[tier] = tuple(sorted(names))
        for subtest in on_disk:
            found = exp.runs_found(tier, subtest)
            if len(sample) < LAYOUT_SAMPLE:  # a few runs of each subtest: one may have stopped whole
                sample += (found[n][0].run(n) for n in sorted(found)[:LAYOUT_RUNS_PER_SUBTEST])
            unexpected += (UnexpectedRun(tier, subtest, n) for n in sorted(found) if n not in wanted)
    _refuse_older_layouts(exp, config, sample)
    return ExpectedRuns(tuple(config.tiers_to_run), subtests, config.runs_per_subtest, tuple(unexpected), tuple(notes))


# Runs whose files may tell an experiment's layout, in tier, subtest, run order, the first
# few of each subtest: an empty or unfinished run tells nothing, and ProjectScylla runs
# subtests in parallel, so a subtest's first run need not be the experiment's first.
LAYOUT_SAMPLE = 64
LAYOUT_RUNS_PER_SUBTEST = 4


def _refuse_older_layouts(exp: ExperimentPaths, config: ExperimentConfig, runs: list[AgentRunPaths]) -> None:
    """``OlderLayoutError`` for an experiment in one of ProjectScylla's layouts before
    2026-01-05 (its history: tiers under ``tiers/`` until 2026-01-02; then each run's files
    directly in its directory; from 2026-01-04 ``agent/`` and ``judge/``, one judge's
    ``judge/judgment.json`` until judge slots ``judge/judge_NN/`` came late that day).
    The first of ``runs`` whose files tell the layout stands for the experiment (a few
    stats a run): a layout is not changed within one experiment, except when one begun on
    2026-01-04 was resumed later, and its first runs are then the old ones."""
    fix = "this project reads the layout ProjectScylla has written since (agent/ and judge/judge_NN/ in each run); nothing here was changed"
    if not runs:
        if (exp.dir / "tiers").is_dir() and any((exp.dir / "tiers" / t).is_dir() for t in config.tiers_to_run):
            raise OlderLayoutError(f"{exp.dir}: its tiers are under tiers/, as ProjectScylla wrote them before 2026-01-02; {fix}")
        return
    for run in runs:
        where = os.path.relpath(run.dir, exp.dir)
        has_agent_dir = run.agent_dir.is_dir()
        if not has_agent_dir:
            flat = [p.name for p in (run.dir / run.output.name, run.dir / run.command_log.name) if p.is_file()]
            if flat:
                raise OlderLayoutError(
                    f"{exp.dir}: {where} holds {' and '.join(flat)} itself, with no agent/ directory, "
                    f"as ProjectScylla wrote runs before 2026-01-04; {fix}"
                )
        if (run.judge_dir / run.judge_slot(1).judgment.name).is_file() and not run.judge_slot(1).dir.exists():
            raise OlderLayoutError(
                f"{exp.dir}: {where} has one judge's judge/judgment.json and no judge/judge_NN/ slots, "
                f"as ProjectScylla wrote runs on 2026-01-04; {fix}"
            )
        if has_agent_dir and any(run.judge_slot(i).judgment.is_file() for i in range(1, len(config.judge_models) + 1)):
            return  # agent/ and a judge slot's judgment: today's layout
