"""The comparison as a picture: a panel per metric, each condition's mean in each run
(with its 95% interval where it ran several seeds), the runs side by side."""

from __future__ import annotations

import math

from ..reports.plots import PALETTE, new_figure, png_bytes
from .build import Comparison

__all__ = ["comparison_plot"]

MAX_TICK_LABELS = 40  # beyond this the conditions are numbered, not named


def comparison_plot(c: Comparison) -> bytes:
    names = [t.metric for t in c.tables] or ["(no metrics)"]
    conditions = len(c.tables[0].rows) if c.tables else 0
    cols = min(2, len(names))
    rows = (len(names) + cols - 1) // cols
    width = min(max(5.0, 0.45 * conditions * max(1, len(c.runs)) ** 0.5 + 2), 24.0)
    fig = new_figure(figsize=(width * cols, 3.8 * rows))
    fig.suptitle(f"{c.experiment}: {len(c.runs)} runs (baseline {c.runs[c.baseline].label})")
    step = 0.6 / max(1, len(c.runs))
    for k, t in enumerate(c.tables):
        ax = fig.add_subplot(rows, cols, k + 1)
        for i, run in enumerate(c.runs):
            xs, ys, lows, highs = [], [], [], []
            for j, row in enumerate(t.rows):
                s = row.cells[i]
                if s is None or not math.isfinite(s.mean):  # cost-of-pass with no pass: infinite
                    continue
                xs.append(j - 0.3 + step * (i + 0.5))
                ys.append(s.mean)
                lows.append(s.mean - s.low if s.low is not None else 0.0)
                highs.append(s.high - s.mean if s.high is not None else 0.0)
            label = f"{run.label} {run.commit}" + (" (baseline)" if run.baseline else "")
            ax.errorbar(xs, ys, yerr=[lows, highs], fmt="o", ms=4, capsize=2, color=PALETTE[i % len(PALETTE)], label=label)
        if len(t.rows) <= MAX_TICK_LABELS:
            ax.set_xticks(range(len(t.rows)), [r.label for r in t.rows], rotation=30 if len(t.rows) > 4 else 0,
                          ha="right" if len(t.rows) > 4 else "center", fontsize=8)
        else:
            ax.set_xlabel(f"condition (1..{len(t.rows)}, in the table's order)")
        ax.set_title(t.metric, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return png_bytes(fig)
