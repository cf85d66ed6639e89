"""PNG plots of an experiment's aggregates (matplotlib, Agg backend, no display needed).

Figures are built with ``matplotlib.figure.Figure`` and rendered by the Agg canvas
directly, never through pyplot's global state, so plotting is safe from worker
threads and never opens a window. Each function returns PNG bytes; the caller
decides whether to write them (a dry run writes nothing).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from typing import TYPE_CHECKING, Any

from ..records import ExperimentResult, cost_of_pass_value

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def new_figure(**kwargs: Any) -> Figure:
    # matplotlib is imported on first plot, not with the package: every case
    # subprocess imports experiment_infra and should not pay ~0.6 s for it.
    from matplotlib.figure import Figure as _Figure

    return _Figure(**kwargs)


def png_bytes(fig: Figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


def _spread(n: int, width: float = 0.25) -> list[float]:
    """Deterministic horizontal offsets so equal scores do not hide each other."""
    if n <= 1:
        return [0.0] * n
    return [-width + 2 * width * i / (n - 1) for i in range(n)]


def _score_limits(values: Sequence[float]) -> tuple[float, float]:
    """Zoom on the scores present (they often cluster near 1) but keep the [0, 1] scale's top."""
    low = min(values, default=0.0)
    return max(-0.02, min(low - 0.05, 0.9)), 1.02


def _no_data(ax, text: str) -> None:  # type: ignore[no-untyped-def]
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")


def score_distribution(result: ExperimentResult) -> bytes:
    tiers = list(result.tier_results)
    scores = [[r.judge_score for s in t.subtest_results.values() for r in s.runs] for t in result.tier_results.values()]
    fig = new_figure(figsize=(max(5.0, 0.9 * len(tiers) + 2), 4))
    ax = fig.add_subplot()
    positions = [i for i, s in enumerate(scores) if s]
    if positions:
        ax.boxplot([scores[i] for i in positions], positions=positions, widths=0.5, showfliers=False)
        for i in positions:
            ax.scatter([i + d for d in _spread(len(scores[i]))], scores[i], s=18, alpha=0.7,
                       color=PALETTE[i % len(PALETTE)], zorder=3)
    else:
        _no_data(ax, "no completed runs")
    ax.set_xticks(range(len(tiers)), tiers)
    ax.set_xlim(-0.7, max(len(tiers) - 0.3, 0.7))
    ax.set_ylim(*_score_limits([v for s in scores for v in s]))
    ax.set_xlabel("tier")
    ax.set_ylabel("consensus score (completed runs)")
    ax.set_title("Score distribution per tier")
    ax.grid(axis="y", alpha=0.3)
    return png_bytes(fig)


def pass_rate(result: ExperimentResult) -> bytes:
    tiers = list(result.tier_results)
    fig = new_figure(figsize=(max(5.0, 0.9 * len(tiers) + 2), 4))
    ax = fig.add_subplot()
    for i, t in enumerate(result.tier_results.values()):
        runs = [r for s in t.subtest_results.values() for r in s.runs]
        if not runs:
            ax.text(i, 0.02, "no runs", ha="center", rotation=90, color="grey", fontsize=8)
            continue
        passed = sum(1 for r in runs if r.judge_passed)
        ax.bar(i, passed / len(runs), color=PALETTE[i % len(PALETTE)], width=0.6)
        ax.text(i, passed / len(runs) + 0.02, f"{passed}/{len(runs)}", ha="center", fontsize=8)
    ax.set_xticks(range(len(tiers)), tiers)
    ax.set_ylim(0, 1.12)
    ax.set_xlabel("tier")
    ax.set_ylabel("pass rate (completed runs)")
    ax.set_title("Pass rate per tier")
    ax.grid(axis="y", alpha=0.3)
    return png_bytes(fig)


def _label_points(ax, labels: Sequence[tuple[str, float, float]], fontsize: int = 8) -> None:  # type: ignore[no-untyped-def]
    """Label each point beside it, on the first side where the label covers neither an
    earlier label nor another labelled point.

    Tiers often land close together (T0 and T1 of a dry run share cost and score), and
    labels drawn at one fixed offset printed over each other and over the markers.
    """
    from matplotlib.transforms import Bbox

    fig = ax.figure
    fig.canvas.draw()  # final limits, so data -> pixel positions hold
    renderer = fig.canvas.get_renderer()
    pad = 7.0  # pixels around a marker that a label must keep clear of
    taken: list[Any] = []
    for _, x, y in labels:
        px, py = ax.transData.transform((x, y))
        taken.append(Bbox.from_extents(px - pad, py - pad, px + pad, py + pad))
    step = fontsize * 1.3
    # Right, left, above-right, below-right, then further out on the right and left.
    sides = [(6, -4, "left"), (-6, -4, "right"), (6, step, "left"), (6, -step - 4, "left"),
             (-6, step, "right"), (-6, -step - 4, "right")]
    sides += [(dx, k * step * sign, ha) for k in range(2, 8) for sign in (1, -1) for dx, ha in ((6, "left"), (-6, "right"))]
    for text, x, y in labels:
        for dx, dy, ha in sides:
            label = ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=fontsize, ha=ha)
            box = label.get_window_extent(renderer)
            own = ax.transData.transform((x, y))
            clash = [b for b in taken if box.overlaps(b) and not b.contains(*own)]
            if not clash:
                break
            label.remove()
        else:  # crowded everywhere: keep the first side
            label = ax.annotate(text, (x, y), textcoords="offset points", xytext=sides[0][:2], fontsize=fontsize)
            box = label.get_window_extent(renderer)
        taken.append(box)


def cost_vs_score(result: ExperimentResult) -> bytes:
    """Every run (small dots), each tier's best subtest (large), the frontier tier starred."""
    return png_bytes(cost_vs_score_figure(result))


def cost_vs_score_figure(result: ExperimentResult) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = new_figure(figsize=(6.5, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    any_run = False
    labels: list[tuple[str, float, float]] = []
    for i, (name, t) in enumerate(result.tier_results.items()):
        color = PALETTE[i % len(PALETTE)]
        runs = [r for s in t.subtest_results.values() for r in s.runs]
        if runs:
            any_run = True
            ax.scatter([r.cost_usd for r in runs], [r.judge_score for r in runs], s=14, alpha=0.4, color=color)
        best = t.subtest_results.get(t.best_subtest) if t.best_subtest else None
        if best is None or best.mean_cost is None:
            continue
        is_frontier = name == result.best_overall_tier
        ax.scatter([best.mean_cost], [best.mean_score], s=260 if is_frontier else 60, color=color,
                   marker="*" if is_frontier else "o", edgecolor="black", linewidths=0.6, zorder=4, label=name)
        labels.append((f"{name}/{best.subtest_id}", best.mean_cost, best.mean_score))
    frontier = cost_of_pass_value(result.frontier_cop)
    if result.best_overall_tier and frontier is not None:
        ax.axvline(frontier, color="black", linestyle="--", linewidth=0.8)
        ax.set_title(f"Cost vs score — frontier {result.best_overall_tier}: cost-of-pass ${frontier:.4f}")
    else:
        ax.set_title("Cost vs score — no tier passed (cost-of-pass infinite)")
    if not any_run:
        _no_data(ax, "no completed runs")
    else:
        ax.legend(fontsize=8, title="tier best subtest", title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.set_xlabel("cost per run (USD); dashed: frontier cost-of-pass")
    ax.set_ylabel("consensus score")
    ax.set_ylim(*_score_limits([r.judge_score for t in result.tier_results.values()
                                for s in t.subtest_results.values() for r in s.runs]))
    ax.grid(alpha=0.3)
    _label_points(ax, labels)
    return fig


def judge_agreement(result: ExperimentResult) -> bytes:
    """Each judge's score against the panel's consensus score, one point per run."""
    by_model: dict[str, list[tuple[float, float]]] = {}
    for t in result.tier_results.values():
        for s in t.subtest_results.values():
            for r in s.runs:
                for j in (j for j in r.judges if j.valid):  # a failed judge's 0 is no score
                    by_model.setdefault(j.model, []).append((r.judge_score, j.score))
    fig = new_figure(figsize=(6, 5))
    ax = fig.add_subplot()
    ax.plot([], [], color="grey", linewidth=0.8, linestyle="--", label="agreement (y = x)")
    for i, (model, points) in enumerate(sorted(by_model.items())):
        mad = sum(abs(j - c) for c, j in points) / len(points)
        ax.scatter([c for c, _ in points], [j for _, j in points], s=22, alpha=0.75,
                   color=PALETTE[i % len(PALETTE)], label=f"{model} (mean |Δ| {mad:.3f}, n={len(points)})")
    if not by_model:
        _no_data(ax, "no judge scores in completed runs")
    low, high = _score_limits([v for points in by_model.values() for pair in points for v in pair])
    ax.plot([low, high], [low, high], color="grey", linewidth=0.8, linestyle="--")
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_aspect("equal")
    ax.set_xlabel("consensus score")
    ax.set_ylabel("judge score")
    ax.set_title("Judge agreement")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    ax.grid(alpha=0.3)
    return png_bytes(fig)


MAX_BARS = 60  # beyond this a bar per label is unreadable (and the figure enormous)


def bar_panels(title: str, labels: Sequence[str], panels: dict[str, list[float | None]]) -> bytes:
    """One bar chart per metric over the same labels (standard-mode suites); None = no value.
    Over ``MAX_BARS`` labels, each panel is a histogram of the values instead."""
    if len(labels) > MAX_BARS:
        return histogram_panels(title, panels)
    names = list(panels) or ["(no metrics)"]
    cols = min(3, len(names))
    rows = (len(names) + cols - 1) // cols
    fig = new_figure(figsize=(max(4.5, 0.6 * len(labels) + 2) * cols, 3.4 * rows))
    fig.suptitle(title)
    for k, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, k + 1)
        values = panels.get(name, [])
        present = [(i, v) for i, v in enumerate(values) if v is not None]
        if present:
            ax.bar([i for i, _ in present], [v for _, v in present],
                   color=[PALETTE[i % len(PALETTE)] for i, _ in present], width=0.6)
        else:
            _no_data(ax, "no values")
        for i, v in enumerate(values):
            if v is None:
                ax.text(i, 0, "n/a", ha="center", va="bottom", fontsize=7, color="grey")
        ax.set_xlim(-0.6, len(labels) - 0.4)
        ax.set_xticks(range(len(labels)), labels, rotation=30 if len(labels) > 4 else 0, ha="right" if len(labels) > 4 else "center")
        ax.set_title(name, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return png_bytes(fig)


def histogram_panels(title: str, panels: dict[str, list[float | None]]) -> bytes:
    """One histogram per metric: how the values of many cases are spread."""
    names = list(panels) or ["(no metrics)"]
    cols = min(3, len(names))
    rows = (len(names) + cols - 1) // cols
    fig = new_figure(figsize=(4.5 * cols, 3.4 * rows))
    fig.suptitle(title)
    for k, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, k + 1)
        values = [v for v in panels.get(name, []) if v is not None]
        if values:
            ax.hist(values, bins=min(40, max(5, len(values) // 10)), color=PALETTE[k % len(PALETTE)])
        else:
            _no_data(ax, "no values")
        ax.set_title(f"{name} ({len(values)} cases)", fontsize=10)
        ax.set_ylabel("cases")
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return png_bytes(fig)
