"""The nightly walk's account: one row per experiment directory under a results root.

Prefect-free, so ``python flows/nightly.py ROOT --dry-run`` answers from the files
alone; the ``nightly_recovery`` flow fills in the rows of the directories it recovers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .walk import RootItem

__all__ = ["NightlyRow", "NightlySummary", "row_without_recovery", "dry_run_summary"]


def directories(n: int) -> str:
    """"1 experiment directory", "3 experiment directories"."""
    return f"{n} experiment {'directory' if n == 1 else 'directories'}"


@dataclass(frozen=True)
class NightlyRow:
    directory: str
    mode: str
    needing_work: int
    planned: int
    outcome: str  # nothing to do | would recover | recovered | failed | skipped | locked
    detail: str


@dataclass(frozen=True)
class NightlySummary:
    results_root: str
    dry_run: bool
    rows: tuple[NightlyRow, ...]

    @property
    def failed(self) -> list[NightlyRow]:
        return [r for r in self.rows if r.outcome == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def with_work(self) -> list[NightlyRow]:
        return [r for r in self.rows if r.planned and r.outcome not in ("skipped", "locked")]

    def headline(self) -> str:
        if not self.rows:
            return f"nothing to do: no experiment directories under {self.results_root}"
        if not self.with_work:
            skipped = sum(1 for r in self.rows if r.outcome in ("skipped", "locked"))
            extra = f" ({skipped} skipped)" if skipped else ""
            return f"nothing to do: {directories(len(self.rows))} under {self.results_root}, none needs recovery{extra}"
        counts: dict[str, int] = {}
        for r in self.rows:
            counts[r.outcome] = counts.get(r.outcome, 0) + 1
        return f"{self.results_root}: {directories(len(self.rows))}: " + ", ".join(
            f"{n} {k}" for k, n in sorted(counts.items())
        )

    def format(self) -> str:
        lines = [self.headline() + (" (dry run: nothing written)" if self.dry_run else "")]
        for r in self.rows:
            lines.append(f"  {r.outcome:<14} {r.mode:<10} {r.directory}  {r.detail}")
        return "\n".join(lines)


def row_without_recovery(item: RootItem, dry_run: bool) -> NightlyRow | None:
    """The row of a directory that is not recovered tonight (skipped, complete, or a dry run); None otherwise."""
    base = dict(
        directory=str(item.found.directory), mode=item.found.mode.value, needing_work=item.needing_work, planned=item.planned
    )
    if item.skipped:
        return NightlyRow(**base, outcome="locked" if item.locked else "skipped", detail=item.skipped)
    if not item.has_work:
        # Not "complete" when a tier never started: no recovery can run it, the experiment must.
        parts = [f"{item.needing_work} run(s) need work the filters leave out"] if item.needing_work else []
        parts += [f"tier {t} never started (run the experiment again for it)" for t in item.never_started]
        return NightlyRow(**base, outcome="nothing to do", detail="; ".join(parts) or "complete")
    if dry_run:
        return NightlyRow(**base, outcome="would recover", detail=item.work)
    return None


def dry_run_summary(results_root: str | Path, items: list[RootItem]) -> NightlySummary:
    root = str(Path(results_root).expanduser().resolve())
    return NightlySummary(root, True, tuple(row for item in items if (row := row_without_recovery(item, True))))
