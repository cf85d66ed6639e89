"""How a recovery survey is shown: dry-run text, the ``--json`` document, table rows.

The JSON document's shape is documented in docs/recovery.md ("--json"); scripts and CI
depend on it, so keys are only ever added, never renamed.
"""

from __future__ import annotations

from typing import Any, Sequence

from ..files.atomic import json_bytes
from .survey import (
    ExperimentSurvey,
    Mode,
    RunWork,
    SuiteRunSurvey,
    Survey,
)

JSON_SCHEMA_VERSION = 1


def _counts_line(label: str, counts: dict[str, int]) -> str:
    return f"{label:<7} " + ", ".join(f"{name} {n}" for name, n in counts.items())


def _filters_text(survey: Survey) -> str:
    shown = {k: v for k, v in survey.selection.as_dict().items() if v not in (None, False)}
    if not shown:
        return "none"
    return ", ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in shown.items())


def _columns(rows: list[list[str]]) -> list[str]:
    """Left-aligned columns for every field but the last two (reason, action)."""
    fixed = len(rows[0]) - 2
    widths = [max(len(r[i]) for r in rows) for i in range(fixed)]
    return ["  ".join(r[i].ljust(widths[i]) for i in range(fixed)) + f"  {r[-2]}  => {r[-1]}" for r in rows]


def render_text(survey: Survey, *, verbose: bool = False) -> str:
    """Counts per status, then one line per run needing work (every selected run if ``verbose``)."""
    if isinstance(survey, SuiteRunSurvey):
        return _render_suite_run(survey, verbose)
    return _render_experiment(survey, verbose)


def _render_experiment(s: ExperimentSurvey, verbose: bool) -> str:
    lines = [
        f"experiment {s.exp.dir} (agent evaluation, {s.config.experiment_id})",
        f"expected runs: {s.expected}; selected: {len(s.runs)} (filters: {_filters_text(s)})",
        _counts_line("runs:", s.run_counts()),
        _counts_line("judges:", s.judge_counts()),
    ]
    acts = s.action_counts()
    planned = s.planned
    switch = "--agents-only" if s.selection.agents_only else "--judges-only" if s.selection.judges_only else None
    left_out = ""
    if acts["excluded"]:
        # Without a switch, what is left out is left out by a filter (e.g. --status results
        # on a run whose judges must rerun first): the run's line below says what it needs.
        left_out = f"; {acts['excluded']} left out by {switch}" if switch else f"; {acts['excluded']} need(s) work these filters leave out"
    lines.append(
        f"work:   {len(planned)} run(s): {acts['regenerate']} regenerate, {acts['agent_reruns']} agent rerun(s), "
        f"{acts['judge_reruns']} judge rerun(s)" + left_out
    )
    lines += [f"note:   {n}" for n in s.notes]
    lines += [f"missing: {m.reason}" for m in s.missing_tiers]
    todo = [r for r in s.runs if r.needs_work or verbose]
    if not any(r.needs_work for r in s.runs) and not s.missing_tiers:
        lines.append("nothing to do: every selected run is complete")
    if not todo:
        return "\n".join(lines)
    rows = [["tier", "subtest", "run", "status", "reason", "action"]]
    rows += [[r.tier, r.subtest, f"{r.run:02d}", r.status.value, r.problem, r.action] for r in todo]
    lines.append("")
    lines += _columns(rows)
    return "\n".join(lines)


def _render_suite_run(s: SuiteRunSurvey, verbose: bool) -> str:
    lines = [
        f"{'log' if s.mode is Mode.INSPECT else 'run'} directory {s.run.dir} "
        f"({s.mode.value} mode, experiment {s.manifest.experiment_name})",
        f"expected cases: {s.expected}; selected: {len(s.cases)} (filters: {_filters_text(s)})",
        _counts_line("cases:", s.case_counts()),
        f"work:   {len(s.planned)} case(s) rerun through run_suite"
        + ("" if s.mode is Mode.INSPECT else f" --resume {s.run.dir}"),
    ]
    lines += [f"note:   {n}" for n in s.notes]
    todo = [c for c in s.cases if c.needs_work or verbose]
    if not s.planned:
        lines.append("nothing to do: every selected case is complete")
    if not todo:
        return "\n".join(lines)
    if s.mode is Mode.INSPECT:
        rows = [["variant", "status", "reason", "action"]]
        rows += [[c.variant, c.status.value, c.reason, c.action] for c in todo]
    else:  # each attempt's failure class, oldest first ("lost, exit"), from the run records
        rows = [["variant", "status", "failures", "reason", "action"]]
        rows += [[c.variant, c.status.value, c.failures_text, c.reason, c.action] for c in todo]
    lines.append("")
    lines += _columns(rows)
    return "\n".join(lines)


# ------------------------------------------------------------------------ JSON


def _run_entries(runs: Sequence[RunWork]) -> list[dict[str, Any]]:
    """One entry per run. Runs classified alike share one tuple of judge classifications
    (status_batch builds each distinct one once), so each such tuple's list is built once
    and shared too: ten thousand runs cost a few distinct lists, not thirty thousand dicts.
    The document is only ever serialized, never changed, so the sharing is safe. Statuses
    stay enum members (text enums): both JSON writers write their values, and reading
    ``.value`` was a fifth of this function's time."""
    judge_lists: dict[int, list[dict[str, Any]]] = {}
    entries = []
    for r in runs:
        judges = judge_lists.get(id(r.judges))
        if judges is None:
            judges = judge_lists[id(r.judges)] = [
                {"slot": j.slot, "model": j.model, "status": j.status, "reason": j.reason} for j in r.judges
            ]
        entries.append({
            "tier": r.tier,
            "subtest": r.subtest,
            "run": r.run,
            "status": r.status,
            "reason": r.reason,
            "needs_work": r.needs_work,
            "action": r.action,
            "judges": judges,
        })
    return entries


def survey_document(survey: Survey) -> dict[str, Any]:
    """The ``--json`` document (see docs/recovery.md)."""
    if isinstance(survey, SuiteRunSurvey):
        return {
            "version": JSON_SCHEMA_VERSION,
            "mode": survey.mode.value,
            "directory": str(survey.run.dir),
            "experiment": survey.manifest.experiment_name,
            "filters": survey.selection.as_dict(),
            "expected": survey.expected,
            "selected": len(survey.cases),
            "counts": {"cases": survey.case_counts(), "needing_work": len(survey.planned)},
            "notes": list(survey.notes),
            "cases": [
                {"variant": c.variant, "status": c.status.value, "reason": c.reason,
                 "needs_work": c.needs_work, "action": c.action,
                 "failure": c.failure, "failures": list(c.failures)}
                for c in survey.cases
            ],
        }
    return {
        "version": JSON_SCHEMA_VERSION,
        "mode": Mode.AGENT_EVAL.value,
        "directory": str(survey.exp.dir),
        "experiment": survey.config.experiment_id,
        "filters": survey.selection.as_dict(),
        "expected": survey.expected,
        "selected": len(survey.runs),
        "counts": {
            "runs": survey.run_counts(),
            "judges": survey.judge_counts(),
            "needing_work": len(survey.needing_work),
            "actions": survey.action_counts(),
            "missing_tiers": len(survey.missing_tiers),
        },
        "notes": list(survey.notes),
        "missing_tiers": [{"tier": m.tier, "reason": m.reason} for m in survey.missing_tiers],
        "runs": _run_entries(survey.runs),
    }


def render_json(survey: Survey) -> str:
    return json_bytes(survey_document(survey), floats=False).decode("utf-8")  # names, counts, statuses only


# ------------------------------------------------------------------ artifact rows


def counts_of(survey: Survey) -> dict[str, int]:
    """Status -> number of selected runs (agent side) or cases."""
    if isinstance(survey, SuiteRunSurvey):
        return survey.case_counts()
    return survey.run_counts()


def before_after_rows(before: Survey, after: Survey) -> list[dict[str, Any]]:
    rows = []
    b, a = counts_of(before), counts_of(after)
    for name in b:
        rows.append({"kind": "run" if isinstance(before, ExperimentSurvey) else "case",
                     "status": name, "before": b[name], "after": a.get(name, 0)})
    if isinstance(before, ExperimentSurvey) and isinstance(after, ExperimentSurvey):
        jb, ja = before.judge_counts(), after.judge_counts()
        rows += [{"kind": "judge", "status": n, "before": jb[n], "after": ja.get(n, 0)} for n in jb]
    return rows


def still_needing_rows(after: Survey) -> list[dict[str, Any]]:
    if isinstance(after, SuiteRunSurvey):
        return [{"run": c.variant, "status": c.status.value, "reason": c.reason, "failures": c.failures_text}
                for c in after.planned]
    rows = [{"run": m.tier, "status": "missing", "reason": m.reason} for m in after.missing_tiers]
    return rows + [{"run": r.label, "status": r.status.value, "reason": r.problem} for r in after.runs if r.needs_work]
