"""A comparison as a reader wants it: markdown tables (the terminal, the Prefect UI), one
CSV row per metric, condition and run, and a JSON document."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from ..reports.md_format import NONE, table
from ..reports.seeds_md import interval_text, number, summary_text
from ..reports.stats import PAIRED_TEST, Summary
from .build import Comparison, Diff, Row

__all__ = ["to_csv", "to_json", "to_markdown"]


def _p(p: float | None) -> str:
    return NONE if p is None else ("p<0.0001" if p < 1e-4 else f"p={p:.2g}")


def diff_text(d: Diff | None) -> str:
    if d is None:
        return NONE
    if d.p_value is None:
        return f"{number(d.effect, signed=True)} ({d.note})"
    return f"{number(d.effect, signed=True)} {interval_text(d.low, d.high)} {_p(d.p_value)}"


def _header(c: Comparison) -> list[str]:
    rows = [
        [
            f"{r.label} (baseline)" if r.baseline else r.label, f"`{r.name}`", f"`{r.sha[:12]}`",
            "yes" if r.dirty else "no", r.branch or NONE, r.created_at, f"{r.completed}/{r.cases}",
        ]
        for r in c.runs
    ]
    lines = [
        f"# Compare: {c.experiment} ({len(c.runs)} runs, baseline {c.runs[c.baseline].label})",
        "",
        *table(["Run", "Directory", "Commit", "Dirty", "Branch", "Created", "Completed"], rows),
        "",
    ]
    if c.settings:
        lines += ["Settings that differ between runs (every case of a run shares them):", ""]
        lines += [f"- `{name}`: " + ", ".join(f"{r.label} {v}" for r, v in zip(c.runs, values)) for name, values in c.settings]
        lines.append("")
    fields = ", ".join(f"`{f}`" for f in c.fields) or "none (one condition)"
    lines += [
        f"Conditions: the config fields that differ between cases ({fields}); cases that differ only in `seed` "
        "are grouped: mean ± SD [95% interval] n. "
        f"Δ: difference of means against {c.runs[c.baseline].label}, with its 95% interval and p-value from a "
        f"{PAIRED_TEST} over the seeds both runs completed (pairs matched by seed); n/a below 2 pairs.",
        "",
    ]
    return lines


def to_markdown(c: Comparison, limit: int | None = None) -> str:
    """Every metric's table; ``limit``: at most that many conditions per table (an artifact)."""
    lines = _header(c)
    others = [r for r in c.runs if not r.baseline]
    base = c.runs[c.baseline].label
    head = ["Variant", *c.fields, *(r.label for r in c.runs), *(f"Δ {r.label}−{base}" for r in others)]
    for t in c.tables:
        shown = t.rows if limit is None else t.rows[:limit]
        body = []
        for row in shown:
            cells = [summary_text(s) if present else "(not in run)" for s, present in zip(row.cells, row.present)]
            diffs = [diff_text(d) for d, r in zip(row.diffs, c.runs) if not r.baseline]
            body.append([row.label, *(row.params[f] for f in c.fields), *cells, *diffs])
        lines += [f"## {t.metric}", "", *table(head, body), ""]
        if len(shown) < len(t.rows):
            lines += [f"*{len(shown)} of {len(t.rows)} conditions shown; `--csv FILE` or `--json` holds them all.*", ""]
    if c.partial:
        lines += ["## Variants in only some runs", ""]
        shown_partial = c.partial if limit is None else c.partial[:limit]
        lines += [f"- `{label}`: in {', '.join(holders)} only" for label, holders in shown_partial]
        if len(shown_partial) < len(c.partial):
            lines.append(f"- ... and {len(c.partial) - len(shown_partial)} more")
        lines.append("")
    return "\n".join(lines)


def _num(value: float | None) -> float | str | None:
    """JSON has no infinity: an infinite cost-of-pass is the string "inf", as in result.json."""
    return value if value is None or math.isfinite(value) else str(value)


def _summary_dict(s: Summary | None) -> dict[str, Any] | None:
    return None if s is None else {"n": s.n, "mean": _num(s.mean), "sd": s.sd, "ci_low": s.low, "ci_high": s.high}


def _diff_dict(d: Diff | None) -> dict[str, Any] | None:
    if d is None:
        return None
    return {"effect": d.effect, "ci_low": d.low, "ci_high": d.high, "p_value": d.p_value, "test": d.test,
            "pairs": d.pairs, "note": d.note}


def _row_dict(c: Comparison, row: Row) -> dict[str, Any]:
    return {
        "variant": row.label,
        "params": row.params,
        "runs": {r.label: _summary_dict(s) if p else None for r, s, p in zip(c.runs, row.cells, row.present)},
        "missing_in": [r.label for r, p in zip(c.runs, row.present) if not p],
        "diffs": {r.label: _diff_dict(d) for r, d in zip(c.runs, row.diffs) if not r.baseline},
    }


def to_json(c: Comparison) -> str:
    doc = {
        "experiment": c.experiment,
        "baseline": c.runs[c.baseline].label,
        "runs": [r.__dict__ for r in c.runs],
        "fields": c.fields,
        "settings": {name: dict(zip((r.label for r in c.runs), values)) for name, values in c.settings},
        "test": PAIRED_TEST,
        "metrics": {t.metric: [_row_dict(c, row) for row in t.rows] for t in c.tables},
        "only_in_some_runs": [{"variant": label, "runs": holders} for label, holders in c.partial],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)


CSV_COLUMNS = [
    "metric", "variant", "run", "run_dir", "commit", "dirty", "baseline", "present", "n", "mean", "sd",
    "ci_low", "ci_high", "diff", "diff_ci_low", "diff_ci_high", "p_value", "test", "note",
]


def to_csv(c: Comparison) -> str:
    """One row per metric, condition and run; the condition's fields after ``variant``
    (``param_<field>`` where a field has the name of one of the other columns)."""
    out = io.StringIO()
    names = {f: f"param_{f}" if f in CSV_COLUMNS else f for f in c.fields}
    columns = CSV_COLUMNS[:2] + list(names.values()) + CSV_COLUMNS[2:]
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    for t in c.tables:
        for row in t.rows:
            for r, s, present, d in zip(c.runs, row.cells, row.present, row.diffs):
                writer.writerow({
                    "metric": t.metric, "variant": row.label, **{names[f]: v for f, v in row.params.items()}, "run": r.label, "run_dir": r.path,
                    "commit": r.sha, "dirty": r.dirty, "baseline": r.baseline, "present": present,
                    "n": s.n if s else 0, "mean": s.mean if s else "", "sd": _blank(s.sd if s else None),
                    "ci_low": _blank(s.low if s else None), "ci_high": _blank(s.high if s else None),
                    "diff": d.effect if d else "", "diff_ci_low": _blank(d.low if d else None),
                    "diff_ci_high": _blank(d.high if d else None), "p_value": _blank(d.p_value if d else None),
                    "test": (d.test or "") if d else "", "note": d.note if d else "",
                })
    return out.getvalue()


def _blank(value: float | None) -> Any:
    return "" if value is None else value
