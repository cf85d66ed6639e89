"""A comparison of runs of one experiment: per metric, each condition's value in each
run (summarized over seeds), its difference against a baseline run and, where both
runs ran the same seeds, a paired t-test over the seeds.

A condition is what the suite varied: the config fields that differ between the cases
of any of the runs (``output_dir`` and ``seed`` aside). Fields every case of a run shares
are the run's settings; where those differ between runs (a changed default, a field the
config class gained) they are listed in the header, and do not split the conditions.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..reports.params import PER_CASE, SEED, Condition, group_by_condition, label_of, shown_value, varying_fields
from ..reports.stats import PAIRED_TEST, Summary, paired_t_test
from .runs import CompareError, LoadedRun

COST_OF_PASS = "cost_of_pass"

__all__ = ["Comparison", "Diff", "MetricTable", "Row", "RunColumn", "build_comparison", "choose_baseline"]


@dataclass(frozen=True)
class RunColumn:
    label: str  # A, B, C ... in age order
    name: str
    path: str
    commit: str  # short sha, with -dirty
    sha: str
    dirty: bool
    branch: str | None
    created_at: str
    cases: int
    completed: int
    baseline: bool


@dataclass(frozen=True)
class Diff:
    """One run's condition against the baseline's: ``effect`` = its mean - the baseline's."""

    effect: float
    test: str | None  # PAIRED_TEST, or None where no test was possible
    pairs: int
    low: float | None
    high: float | None
    p_value: float | None
    note: str  # why there is no test or no p-value ("" when there is)


@dataclass(frozen=True)
class Row:
    label: str
    params: dict[str, str]
    cells: list[Summary | None]  # per run; None: not in that run, or no completed case
    present: list[bool]  # the condition is in that run's suite
    diffs: list[Diff | None]  # per run; None for the baseline and where either side has no value


@dataclass(frozen=True)
class MetricTable:
    metric: str
    rows: list[Row]


@dataclass(frozen=True)
class Comparison:
    experiment: str
    runs: list[RunColumn]
    baseline: int
    fields: list[str]
    settings: list[tuple[str, list[str]]] = field(default_factory=list)  # run-level values that differ
    tables: list[MetricTable] = field(default_factory=list)
    partial: list[tuple[str, list[str]]] = field(default_factory=list)  # condition -> labels of runs holding it


def _label(i: int) -> str:
    return chr(ord("A") + i) if i < 26 else f"R{i + 1}"


def choose_baseline(runs: Sequence[LoadedRun], baseline: str | None) -> int:
    """The baseline's index: the oldest run, or the one ``baseline`` names (its directory
    name or path)."""
    if baseline is None:
        return 0
    for i, run in enumerate(runs):
        if baseline in (run.name, str(run.path)) or os.path.realpath(baseline) == os.path.realpath(run.path):
            return i
    names = ", ".join(r.name for r in runs)
    raise CompareError(f"--baseline {baseline}: not among the runs compared ({names}); name one of them")


def _metrics(runs: Sequence[LoadedRun], wanted: Sequence[str]) -> list[str]:
    found = [r.metric_names() for r in runs]
    measured = [(r, m) for r, m in zip(runs, found) if m]
    if len(measured) < 2:
        raise CompareError(
            "no metric in common: fewer than two of the runs have a completed case with metrics.json "
            f"({', '.join(f'{r.name}: {len(m)} metrics' for r, m in zip(runs, found))})"
        )
    common = set.intersection(*(m for _, m in measured))
    for name in wanted:
        lacking = [r.name for r, m in measured if name not in m]
        if lacking:
            raise CompareError(
                f"--metric {name}: not recorded by {', '.join(lacking)}; metrics in common: {', '.join(sorted(common)) or 'none'}"
            )
    if wanted:
        return list(dict.fromkeys(wanted))
    if not common:
        listed = "; ".join(f"{r.name}: {', '.join(sorted(m))}" for r, m in measured)
        raise CompareError(f"no metric in common between the runs ({listed})")
    return sorted(common)


def _settings(runs: Sequence[LoadedRun], fields: Sequence[str]) -> list[tuple[str, list[str]]]:
    """Config fields every case of a run shares whose value differs between runs."""
    names: dict[str, None] = {}
    for run in runs:
        for case in run.cases:
            names.update(dict.fromkeys(case.config))
    out = []
    for name in names:
        if name in fields or name == SEED or name in PER_CASE:
            continue
        values = [shown_value(run.cases[0].config, name) if run.cases else "(no cases)" for run in runs]
        if len(set(values)) > 1:
            out.append((name, values))
    return out


def _same_seeds(a: Condition, b: Condition) -> bool:
    return sorted(map(repr, a.seeds)) == sorted(map(repr, b.seeds))


def _diff(base: Condition, other: Condition, metric: str, b: Summary, o: Summary, same_seeds: bool) -> Diff:
    effect = o.mean - b.mean
    if not same_seeds:
        return Diff(effect, None, 0, None, None, None, "seeds differ: no paired test")
    left, right = base.values.get(metric, {}), other.values.get(metric, {})
    seeds = [s for s in left if s in right]
    if not seeds:
        return Diff(effect, None, 0, None, None, None, "no seed completed in both runs: no paired test")
    test = paired_t_test([left[s] for s in seeds], [right[s] for s in seeds])
    note = "" if test.p_value is not None else f"n/a: {test.n} pair"
    return Diff(test.effect, PAIRED_TEST, test.n, test.low, test.high, test.p_value, note)


def build_comparison(runs: Sequence[LoadedRun], baseline: str | None = None, metrics: Sequence[str] = ()) -> Comparison:
    if len(runs) < 2:
        raise CompareError("compare needs two or more runs")
    base_i = choose_baseline(runs, baseline)
    agent_eval = all(r.mode == "agent_eval" for r in runs)
    plain = [m for m in metrics if not (agent_eval and m == COST_OF_PASS)]
    names = _metrics(runs, plain) if plain or not metrics else []
    with_cop = agent_eval and (not metrics or COST_OF_PASS in metrics)
    fields: dict[str, None] = {}
    for run in runs:
        fields.update(dict.fromkeys(f for f in varying_fields(c.config for c in run.cases) if f != SEED))
    condition_fields = list(fields)
    grouped = [
        group_by_condition(((c.variant, c.config, c.metrics) for c in run.cases), condition_fields) for run in runs
    ]
    keys: dict[tuple[str, ...], Condition] = {}
    for groups in [grouped[base_i], *grouped]:
        for key, cond in groups.items():
            keys.setdefault(key, cond)
    columns = [
        RunColumn(
            _label(i), r.name, str(r.path), r.commit, r.git.sha, r.git.dirty, r.git.branch, r.created_at,
            len(r.cases), sum(1 for c in r.cases if c.metrics is not None), i == base_i,
        )
        for i, r in enumerate(runs)
    ]
    conditions = {key: [g.get(key) for g in grouped] for key in keys}
    same = {
        key: [c is not None and conds[base_i] is not None and _same_seeds(conds[base_i], c) for c in conds]  # type: ignore[arg-type]
        for key, conds in conditions.items()
    }
    tables = []
    for metric in names:
        rows = []
        for key, first in keys.items():
            conds = conditions[key]
            cells = [c.summary(metric) if c is not None else None for c in conds]
            diffs: list[Diff | None] = []
            for i, (c, s) in enumerate(zip(conds, cells)):
                b, bs = conds[base_i], cells[base_i]
                ok = i != base_i and c is not None and s is not None and b is not None and bs is not None
                diffs.append(_diff(b, c, metric, bs, s, same[key][i]) if ok else None)  # type: ignore[arg-type]
            label = _row_label([c for c in conds if c is not None])
            rows.append(Row(label, first.params, cells, [c is not None for c in conds], diffs))
        tables.append(MetricTable(metric, rows))
    if with_cop:
        tables.append(_cost_of_pass(keys, conditions, base_i))
    partial = []
    for key in keys:
        holders = [columns[i].label for i, g in enumerate(grouped) if key in g]
        if len(holders) < len(runs):
            partial.append((_row_label([g[key] for g in grouped if key in g]), holders))
    return Comparison(
        runs[0].experiment, columns, base_i, condition_fields, _settings(runs, condition_fields), tables,
        partial,
    )


def _cost_of_pass(keys: dict[tuple[str, ...], Condition], conditions: dict[tuple[str, ...], list[Condition | None]],
                  base_i: int) -> MetricTable:
    """Mean cost / pass rate per condition and run (infinite when nothing passed): a ratio
    of two means, so its difference against the baseline comes with no test."""
    rows = []
    for key, first in keys.items():
        conds = conditions[key]
        cells: list[Summary | None] = []
        for c in conds:
            cost, passed = (c.summary("cost_usd"), c.summary("pass_rate")) if c is not None else (None, None)
            if cost is None or passed is None:
                cells.append(None)
            else:
                cop = cost.mean / passed.mean if passed.mean > 0 else math.inf
                cells.append(Summary(passed.n, cop, None, None, None))
        base = cells[base_i]
        diffs: list[Diff | None] = [
            Diff(s.mean - base.mean, None, 0, None, None, None, "a ratio: no test")
            if i != base_i and s is not None and base is not None and math.isfinite(s.mean - base.mean) else None
            for i, s in enumerate(cells)
        ]
        rows.append(Row(_row_label([c for c in conds if c is not None]), first.params, cells,
                        [c is not None for c in conds], diffs))
    return MetricTable(COST_OF_PASS, rows)


def _row_label(conds: Sequence[Condition]) -> str:
    return label_of([v for c in conds for v in c.variants])
