"""Which runs an agent-evaluation experiment expects: the one rule recovery and reports share.

Expected = every tier of ``tiers_to_run`` × every subtest of that tier (its directories
on disk, plus any this project's ``config/manifest.json`` records, so a subtest that was
deleted or never created is still expected) × runs ``1..runs_per_subtest``.

A run directory outside ``1..runs_per_subtest`` (a stray ``run_03`` when
``runs_per_subtest`` is 2) is not expected: it is named in ``unexpected``, so both users
can say it is there, and neither plans work for it nor counts it in an aggregate. Were
the two users to decide this separately, a recovery would call an experiment whole
while its report left runs out (or the other way round).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .layout import ExperimentPaths, UnsafeNameError, check_name, run_label
from .records import AgentEvalManifest, ExperimentConfig, read_record

__all__ = ["ExpectedRuns", "UnexpectedRun", "expected_runs"]


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
    subtests: dict[str, tuple[str, ...]] = {}
    unexpected: list[UnexpectedRun] = []
    wanted = range(1, config.runs_per_subtest + 1)
    for tier in config.tiers_to_run:
        on_disk = exp.subtests_on_disk(tier)
        names = set(on_disk)
        for name in recorded.get(tier, ()):
            try:
                names.add(check_name("subtest", name))
            except UnsafeNameError:
                notes.append(f"{exp.manifest}: subtest {name!r} of tier {tier} is not a safe name; ignored")
        subtests[tier] = tuple(sorted(names))
        for subtest in on_disk:
            unexpected += (
                UnexpectedRun(tier, subtest, n) for n in sorted(exp.runs_found(tier, subtest)) if n not in wanted
            )
    return ExpectedRuns(tuple(config.tiers_to_run), subtests, config.runs_per_subtest, tuple(unexpected), tuple(notes))
