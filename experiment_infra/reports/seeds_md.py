"""Markdown of metrics summarized over seeds (a suite run's report, and ``compare``)."""

from __future__ import annotations

from collections.abc import Sequence

from .stats import Summary
from .md_format import NONE, table
from .params import Condition

__all__ = ["interval_text", "number", "over_seeds_section", "summary_text"]

SEEDS_NOTE = (
    "Cases that differ only in `seed` are grouped: mean, sample standard deviation (SD), n "
    "(completed cases) and the 95% interval of the mean (Student's t)."
)


def number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return NONE
    return format(value, "+.4g" if signed else ".4g")


def interval_text(low: float | None, high: float | None) -> str:
    return NONE if low is None or high is None else f"[{number(low)}, {number(high)}]"


def summary_text(s: Summary | None) -> str:
    """One cell: ``0.912`` for one value, ``0.912 ± 0.013 [0.88, 0.944] n=3`` for several."""
    if s is None:
        return NONE
    if s.n < 2:
        return number(s.mean)
    return f"{number(s.mean)} ± {number(s.sd)} {interval_text(s.low, s.high)} n={s.n}"


def over_seeds_section(conditions: Sequence[Condition], metrics: Sequence[str], limit: int | None = None) -> list[str]:
    """``## Over Seeds``: a table per metric, one row per condition; nothing when no
    condition ran more than one seed. ``limit``: at most that many rows per table."""
    if not any(len(set(map(repr, c.seeds))) > 1 for c in conditions) or not metrics:
        return []
    params = list(conditions[0].params)
    lines = ["## Over Seeds", "", SEEDS_NOTE, ""]
    shown = conditions if limit is None else conditions[:limit]
    for metric in metrics:
        rows = []
        for c in shown:
            s = c.summary(metric)
            rows.append([
                c.label, *(c.params[p] for p in params), len(c.variants),
                s.n if s else 0, number(s.mean if s else None), number(s.sd if s else None),
                interval_text(s.low, s.high) if s else NONE,
            ])
        lines += [f"### {metric}", "", *table(["Condition", *params, "Cases", "n", "Mean", "SD", "95% CI"], rows), ""]
    if len(shown) < len(conditions):
        lines += [f"*{len(shown)} of {len(conditions)} conditions shown; all are in the run's report.md.*", ""]
    return lines
