"""Report of a standard-mode suite run: per-variant status, duration and metrics.

Metrics convention: an entry point may write ``{variant}/metrics.json``
(``layout.CasePaths.metrics``), a flat JSON object of numbers, e.g.
``{"accuracy": 0.91, "loss": 0.32}``. Finite numbers are reported; other values are
listed as ignored. Only ``completed`` cases contribute metrics and durations to the
table and plot; the others are listed with the status rule's reason, never as zeros.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..provenance.code_versions import code_label
from ..layout import SuiteRunPaths
from ..records import CaseMetrics, RunRecord, SuiteManifest, read_record, utc_now_iso
from ..status.rules import CaseStatus, classify_case
from ..status.attempts import attempt_failures, failures_text
from ..running.worker_devices import devices_label
from . import markdown as md
from .aggregate import ReportError
from .bundle import ReportBundle
from .params import SEED, group_by_condition, shown_value, varying_fields
from .plots import bar_panels
from .seeds_md import over_seeds_section

# A run's Prefect artifact shows at most this many cases (not-completed first); the
# full table is report.md. A 2,000-case table was a 2 MB event the server refused.
ARTIFACT_CASES = 50


@dataclass(frozen=True)
class CaseRow:
    variant: str
    status: CaseStatus
    reason: str
    duration: float | None
    attempt: int | None
    metrics: dict[str, float]
    ignored: list[str]
    metrics_problem: str | None
    config: dict[str, object]
    code: str = ""  # the code its last attempt ran (abc1234[-dirty]); "" before attempts named it
    devices: str = ""  # host and GPUs its last attempt held (worker_devices.devices_label); "" without GPUs
    failures: tuple[str | None, ...] = ()  # each attempt's failure class, oldest first (status.attempts)


def _duration(record: RunRecord | None) -> float | None:
    if record is None or record.ended_at is None:
        return None
    if record.duration_seconds is not None:
        return record.duration_seconds
    try:
        return (datetime.fromisoformat(record.ended_at) - datetime.fromisoformat(record.started_at)).total_seconds()
    except ValueError:
        return None


def case_rows(paths: SuiteRunPaths, manifest: SuiteManifest) -> list[CaseRow]:
    rows = []
    for case in manifest.cases:
        case_paths = paths.case(case.variant_name)
        verdict = classify_case(case_paths)
        metrics = read_record(case_paths.metrics, CaseMetrics)
        numbers = metrics.record.numbers() if metrics.record else {}
        rows.append(
            CaseRow(
                variant=case.variant_name,
                status=verdict.status,
                reason=verdict.reason,
                duration=_duration(verdict.record),
                attempt=verdict.record.attempt if verdict.record else None,
                metrics=numbers,
                ignored=metrics.record.ignored() if metrics.record else [],
                metrics_problem=metrics.problem if metrics.exists and metrics.record is None else None,
                config=case.config,
                code=verdict.record.code.label if verdict.record and verdict.record.code else "",
                devices=devices_label(verdict.record.host, verdict.record.gpus) if verdict.record else "",
                failures=attempt_failures(case_paths, verdict.record),
            )
        )
    return rows


def _table(
    rows: list[CaseRow], metric_names: list[str], fields: list[str], paths: SuiteRunPaths, me: Path, with_code: bool = False
) -> list[str]:
    """One row per case: its status, each attempt's failure class (once some attempt failed), the
    config fields that differ between the cases, the code it ran (``with_code``), its metrics."""
    body = []
    with_devices = any(r.devices for r in rows)  # a run that handed GPUs out: where each case ran
    with_failures = any(r.failures for r in rows)  # "signal, -": attempt 1 was killed, attempt 2 completed
    for r in rows:
        config = paths.case(r.variant).config
        done = r.status is CaseStatus.COMPLETED
        body.append([
            md.link(me, config, r.variant) if config.is_file() else r.variant,
            r.status.value,
            f"{r.duration:.1f}s" if done and r.duration is not None else md.NONE,
            r.attempt if r.attempt is not None else md.NONE,
            *([failures_text(r.failures) if r.failures else md.NONE] if with_failures else []),
            *(shown_value(r.config, f) for f in fields),
            *([r.code or md.NONE] if with_code else []),
            *([r.devices or md.NONE] if with_devices else []),
            *(f"{r.metrics[m]:.6g}" if done and m in r.metrics else md.NONE for m in metric_names),
        ])
    head = ["Variant", "Status", "Duration", "Attempt", *(["Failures"] if with_failures else []), *fields, *(["Code"] if with_code else [])]
    return md.table([*head, *(["Devices"] if with_devices else []), *metric_names], body)


def load_manifest(run_dir: Path) -> SuiteManifest:
    paths = SuiteRunPaths(Path(run_dir))
    read = read_record(paths.manifest, SuiteManifest)
    if read.record is None:
        raise ReportError(f"{paths.manifest}: {read.problem}")
    if read.record.mode != "standard":
        raise ReportError(
            f"{paths.manifest}: mode is {read.record.mode!r}; per-case reports need a standard-mode run directory"
        )
    for case in read.record.cases:
        paths.case(case.variant_name)  # an unsafe name is bad input, reported before any work
    return read.record


def build_suite_reports(run_dir: Path) -> ReportBundle:
    paths = SuiteRunPaths(Path(run_dir))
    manifest = load_manifest(paths.dir)
    rows = case_rows(paths, manifest)
    metric_names = sorted({m for r in rows if r.status is CaseStatus.COMPLETED for m in r.metrics})
    me = paths.report_md
    counts = {s: sum(1 for r in rows if r.status is s) for s in CaseStatus}
    status_line = " · ".join(f"{s.value} {n}" for s, n in counts.items())
    fields = varying_fields(r.config for r in rows)
    # Which case ran on which code, once the run has run on more than one.
    with_code = len(manifest.code_versions) > 1 or len({r.code for r in rows if r.code}) > 1
    table = _table(rows, metric_names, fields, paths, me, with_code)
    conditions = group_by_condition(
        ((r.variant, r.config, r.metrics if r.status is CaseStatus.COMPLETED else None) for r in rows),
        [f for f in fields if f != SEED],
    )
    head = [f"**Cases**: {len(rows)} ({status_line})", ""]
    seeds = over_seeds_section(list(conditions.values()), metric_names)
    summary_lines = [*head, *table, "", *seeds]
    if len(rows) > ARTIFACT_CASES:
        # The artifact stays small (the server refuses an event over 1.5 MB): the seed
        # summaries and the cases that need a look, capped; the file has them all.
        shown = sorted(rows, key=lambda r: r.status is CaseStatus.COMPLETED)[:ARTIFACT_CASES]
        summary_lines = [
            *head, *over_seeds_section(list(conditions.values()), metric_names, limit=ARTIFACT_CASES),
            f"The first {ARTIFACT_CASES} of {len(rows)} cases (not completed first); "
            f"every case is in `{me.name}` of the run directory.", "",
            *_table(shown, metric_names, fields, paths, me, with_code),
        ]
    summary = "\n".join(summary_lines)

    git = manifest.git
    lines = [
        f"# Suite Report: {manifest.experiment_name}",
        "",
        f"**Run directory**: `{paths.dir.name}`",
        f"**Git**: {git.short}{' (dirty)' if git.dirty else ''}" + (f" on {git.branch}" if git.branch else ""),
        *(
            ["**Code versions**: " + ", ".join(
                f"{i} `{code_label(v)}` ({v.recorded_at})" for i, v in enumerate(manifest.code_versions, 1)
            )]
            if len(manifest.code_versions) > 1 else []
        ),
        f"**Created**: {manifest.created_at}",
        f"**Generated**: {utc_now_iso()}",
        "",
        *head,
        *table,
        "",
        *seeds,
    ]
    not_done = [r for r in rows if r.status is not CaseStatus.COMPLETED]
    if not_done:
        body = []
        for r in not_done:
            case = paths.case(r.variant)
            logs = [md.link(me, p, p.name) for p in (case.stderr, case.stdout) if p.is_file()]
            body.append([r.variant, r.status.value, r.reason, ", ".join(logs) or md.NONE])
        lines += ["## Not Completed (left out of the plot)", "", *md.table(["Variant", "Status", "Reason", "Logs"], body), ""]
    notes = [f"- `{r.variant}`: metrics.json {r.metrics_problem}" for r in rows if r.metrics_problem]
    notes += [f"- `{r.variant}`: non-numeric metrics ignored: {', '.join(r.ignored)}" for r in rows if r.ignored]
    if notes:
        lines += ["## Metrics Notes", "", *notes, ""]
    lines += ["## Plot", "", "!" + md.link(me, paths.metrics_plot, "metrics"), ""]
    if paths.manifest.is_file():
        lines += [f"Suite as run: {md.link(me, paths.manifest, 'manifest.json')}", ""]
    lines += ["---", "", "*Generated by experiment_infra from run records and metrics.json files*", ""]

    labels = [r.variant for r in rows]
    panels: dict[str, list[float | None]] = {
        "duration (s)": [r.duration if r.status is CaseStatus.COMPLETED else None for r in rows]
    }
    for m in metric_names:
        panels[m] = [r.metrics.get(m) if r.status is CaseStatus.COMPLETED else None for r in rows]
    bundle = ReportBundle(
        kind="standard",
        root=paths.dir,
        title=f"Suite report: {manifest.experiment_name} / {paths.dir.name}",
        summary_markdown=summary,
    )
    bundle.images[paths.metrics_plot] = bar_panels(f"{manifest.experiment_name}: completed cases", labels, panels)
    bundle.texts[paths.report_md] = "\n".join(lines)
    return bundle
