"""What a recovery leaves in the Prefect UI: a table of before/after counts and every
planned run's outcome, the flow run's tags, and a markdown summary."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from prefect.artifacts import create_table_artifact

from experiment_infra.recovery.outcome import RecoverySummary
from experiment_infra.recovery.render import before_after_rows, still_needing_rows
from experiment_infra.recovery.survey import ExperimentSurvey, Survey
from experiment_infra.reports.ui_limits import capped_lines, capped_rows
from flows.artifacts import artifact_key, experiment_tag, label_flow_run, publish_run_markdown, ui_only

__all__ = ["progress_key", "publish_recovery"]


def _table_key(directory: Path) -> str:
    # Artifact keys allow lowercase letters, digits and dashes only.
    slug = re.sub(r"[^a-z0-9]+", "-", f"{directory.parent.name}-{directory.name}".lower()).strip("-")
    return f"recover-{slug}"[:100]


def _outcome_rows(before: Survey, after: Survey, summary: RecoverySummary) -> list[dict[str, Any]]:
    """Every planned run's outcome (done, or not done and why), then the runs still needing
    work that were not planned, then any other step that did not get done (the reports)."""
    now = {r.label: r for r in after.runs} if isinstance(after, ExperimentSurvey) else {c.label: c for c in after.cases}
    not_done = dict(summary.not_done)
    planned = {r.label for r in before.planned}
    rows: list[dict[str, Any]] = []
    for r in before.planned:
        a = now.get(r.label)
        if r.label in not_done:
            rows.append({"item": r.label, "before": r.status.value, "after": "not done", "reason": not_done[r.label]})
        else:
            rows.append({"item": r.label, "before": r.status.value, "after": a.status.value if a else "", "reason": f"done: {r.action}"})
    rows += [
        {"item": r["run"], "before": "", "after": r["status"], "reason": r["reason"]}
        for r in still_needing_rows(after) if r["run"] not in planned
    ]
    rows += [{"item": label, "before": "", "after": "not done", "reason": why} for label, why in summary.not_done if label not in planned]
    return rows


def publish_recovery(before: Survey, after: Survey, summary: RecoverySummary) -> None:
    rows: list[dict[str, Any]] = [
        {"item": f"{r['kind']}s {r['status']}", "before": r["before"], "after": r["after"], "reason": ""}
        for r in before_after_rows(before, after)
    ]
    # A large recovery's table is a summary (the server refuses an event over 1.5 MB):
    # the counts, then the first outcomes; `recover --json` lists every run.
    rows += capped_rows(_outcome_rows(before, after, summary), f"`python flows/recover.py {summary.directory} --json`")
    directory = Path(summary.directory)
    ui_only(
        "the summary table artifact", create_table_artifact,
        table=rows,
        key=_table_key(directory),
        description=(
            f"Recovery of `{directory}`: {summary.planned - len(summary.not_done)} of {summary.planned} "
            f"planned run(s) done; {len(summary.remaining)} still need work"
        ),
    )
    name = experiment_tag(directory)  # the tag run_suite and report give this experiment too
    ui_only("the flow run's tags", label_flow_run, tags=[name, before.mode.value, "recover"])
    lines = [f"- {before.mode.value}: {summary.planned - len(summary.not_done)} of {summary.planned} planned run(s) done"]
    def counts(c: dict[str, int]) -> str:
        return ", ".join(f"{n} {status}" for status, n in c.items()) or "none"

    lines += [f"- before: {counts(summary.before)}", f"- after: {counts(summary.after)}"]
    lines += capped_lines([f"  - **{label}** not done: {why}" for label, why in summary.not_done], "the table artifact")
    key = artifact_key("recovery", directory.parent.name, directory.name)  # not "recover-": that is the table
    ui_only("the run's markdown artifact", publish_run_markdown, key, f"Recovery of {name}", directory, lines)


def progress_key(directory: Path) -> str:
    """The key of the recovery's live progress artifact (beside its table's)."""
    return f"progress-{_table_key(directory)}"
