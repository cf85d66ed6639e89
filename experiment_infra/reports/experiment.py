"""Every report file of an agent-evaluation experiment, built from its run files.

Nothing is read from an earlier report: each report is a function of the run files,
so deleting all of them and rebuilding gives the same numbers back.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..status.expected import ExpectedRuns
from ..layout import ExperimentPaths
from ..records import (
    ExperimentReport,
    ExperimentReportBest,
    ExperimentReportChild,
    ExperimentReportSummary,
    RunReport,
    SubtestReport,
    SubtestReportChild,
    SubtestReportSummary,
    TierComparison,
    TierComparisonEntry,
    TierReport,
    TierReportBest,
    TierReportChild,
    TierReportSummary,
    TierResult,
    BestSubtest,
    ExperimentResult,
    utc_now_iso,
)
from . import markdown as md
from . import plot_worker
from .aggregate import Aggregates, ReportError, TierAggregate, aggregate_experiment, aggregate_tier, experiment_inputs
from .bundle import ReportBundle, current_bytes, report_json

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _rel(target: Path, base: Path) -> str:
    """ProjectScylla's ``"./T0/report.json"`` style for links stored inside JSON (``"../..."``
    for a run outside its subtest's home: split layout, not yet in completed/)."""
    rel = Path(os.path.relpath(target, base)).as_posix()
    return rel if rel.startswith("../") else "./" + rel


def _plots(paths: ExperimentPaths, result: ExperimentResult, bundle: ReportBundle) -> None:
    """The four plots. They are functions of ``result`` alone: when the experiment's
    result.json already holds exactly this result and every plot is a PNG on disk,
    those are the plots; otherwise they are drawn, in a helper process, while the
    other reports are built and written here."""
    where = {name: getattr(paths, name) for name in plot_worker.PLOTS}
    on_disk = current_bytes(paths.result)
    if on_disk is not None and on_disk == bundle.serialized.setdefault(paths.result, report_json(result)):
        found = {path: current_bytes(path) for path in where.values()}
        if all(data is not None and data.startswith(PNG_SIGNATURE) for data in found.values()):
            bundle.images.update(found)  # type: ignore[arg-type]
            return
    job = plot_worker.start(result)
    bundle.later_paths = list(where.values())
    bundle.images_later = lambda: {where[name]: data for name, data in job.result().items()}


def _tier_files(
    bundle: ReportBundle, paths: ExperimentPaths, tier_name: str, tier: TierResult, selection: BestSubtest | None,
    expected: ExpectedRuns | None, now: str,
) -> None:
    """The report files of one tier: its runs', its subtests' and its own."""
    tier_paths = paths.tier(tier_name)
    for sub_name, sub in tier.subtest_results.items():
        sub_paths = paths.subtest(tier_name, sub_name)
        # A run's own reports go where the run is (split layout: in_progress/ or the top too):
        # written at its home, they would make a second, empty copy of it in completed/.
        run_dirs = {run.run_number: paths.run_found(tier_name, sub_name, run.run_number) for run in sub.runs}
        for run in sub.runs:
            run_paths = run_dirs[run.run_number]
            bundle.records[run_paths.report_json] = RunReport(
                run_number=run.run_number, score=run.judge_score, grade=run.judge_grade,
                passed=run.judge_passed, cost_usd=run.cost_usd, duration_seconds=run.duration_seconds,
                generated_at=now,
            )
            bundle.texts[run_paths.report_md] = md.run_markdown(tier_name, sub_name, run, run_paths, now)
        bundle.records[sub_paths.report_json] = SubtestReport(
            subtest_id=sub_name,
            tier_id=tier_name,
            summary=SubtestReportSummary(
                total_runs=len(sub.runs), passed=sum(1 for r in sub.runs if r.judge_passed),
                pass_rate=sub.pass_rate, mean_score=sub.mean_score, median_score=sub.median_score,
                std_dev=sub.std_dev_score, total_cost=sub.total_cost, consistency=sub.consistency,
                grade_distribution=sub.grade_distribution, modal_grade=sub.modal_grade,
                min_grade=sub.min_grade, max_grade=sub.max_grade,
            ),
            token_stats=sub.token_stats,
            children=[
                SubtestReportChild(run_number=r.run_number, score=r.judge_score, passed=r.judge_passed,
                                   report=_rel(run_dirs[r.run_number].report_json, sub_paths.dir))
                for r in sub.runs
            ],
            generated_at=now,
            missing_runs=sub.missing_runs,
        )
        bundle.texts[sub_paths.report_md] = md.subtest_markdown(
            sub, paths, now, expected.unexpected_in(tier_name, sub_name) if expected else ()
        )
    best_report = paths.subtest(tier_name, tier.best_subtest).report_json if tier.best_subtest else None
    bundle.records[tier_paths.result] = tier
    bundle.records[tier_paths.report_json] = TierReport(
        tier=tier_name,
        summary=TierReportSummary(
            total_subtests=len(tier.subtest_results), best_subtest=tier.best_subtest,
            best_score=tier.best_subtest_score, total_cost=tier.total_cost,
            total_duration=tier.total_duration, tiebreaker_needed=tier.tiebreaker_needed,
        ),
        token_stats=tier.token_stats,
        best=TierReportBest(subtest=tier.best_subtest, score=tier.best_subtest_score,
                            report=_rel(best_report, tier_paths.dir) if best_report else None),
        children=[
            TierReportChild(id=n, score=s.mean_score, pass_rate=s.pass_rate, cost=s.total_cost,
                            selected=s.selected_as_best,
                            report=_rel(paths.subtest(tier_name, n).report_json, tier_paths.dir))
            for n, s in tier.subtest_results.items()
        ],
        generated_at=now,
    )
    if selection is not None:
        bundle.records[tier_paths.best_subtest] = selection
    bundle.texts[tier_paths.report_md] = md.tier_markdown(tier, paths, now)
    bundle.texts[tier_paths.summary_md] = md.tier_summary_markdown(tier, paths)


def build_tier_reports(experiment_dir: Path, tier: str) -> tuple[TierAggregate, ReportBundle]:
    """One tier's aggregates and its report files alone: a batch of a recovery, built
    beside the other tiers' (``build_experiment_reports(done=...)`` then adds the rest)."""
    inputs = experiment_inputs(experiment_dir)
    if tier not in inputs.expected.tiers:
        raise ReportError(f"{inputs.paths.config}: tier {tier!r} is not one of tiers_to_run {list(inputs.expected.tiers)}")
    agg = aggregate_tier(inputs, tier)
    bundle = ReportBundle(kind="agent_eval", root=inputs.paths.dir, title=f"Tier {tier} reports", summary_markdown="")
    _tier_files(bundle, inputs.paths, tier, agg.result, agg.selection, inputs.expected, utc_now_iso())
    return agg, bundle


def build_experiment_reports(experiment_dir: Path, done: Mapping[str, TierAggregate] | None = None) -> ReportBundle:
    """Every report file of the experiment; of the tiers in ``done`` (their files built
    and written by their own batch, ``build_tier_reports``) only the aggregates are used."""
    done = done or {}
    agg: Aggregates = aggregate_experiment(experiment_dir, done)
    paths, result, config, expected = agg.paths, agg.result, agg.config, agg.expected
    now = utc_now_iso()
    bundle = ReportBundle(
        kind="agent_eval",
        root=paths.dir,
        title=f"Experiment report: {config.experiment_id}",
        summary_markdown="\n".join(md.summary_table(result)),
    )
    _plots(paths, result, bundle)  # first: they are drawn while the rest is built
    plot_files = [getattr(paths, name) for name in plot_worker.PLOTS]
    for tier_name, tier in result.tier_results.items():
        if tier_name not in done:
            _tier_files(bundle, paths, tier_name, tier, agg.selections.get(tier_name), expected, now)

    best_tier = result.best_overall_tier
    bundle.records[paths.result] = result
    bundle.records[paths.report_json] = ExperimentReport(
        experiment_id=config.experiment_id,
        summary=ExperimentReportSummary(
            total_tiers=len(result.tier_results), best_tier=best_tier, best_subtest=result.best_overall_subtest,
            frontier_cop=result.frontier_cop, total_cost=result.total_cost,
            total_duration=result.total_duration_seconds, started_at=result.started_at,
            completed_at=result.completed_at,
        ),
        token_stats=result.token_stats,
        best=ExperimentReportBest(tier=best_tier, subtest=result.best_overall_subtest,
                                  report=_rel(paths.tier(best_tier).report_json, paths.dir) if best_tier else None),
        children=[
            ExperimentReportChild(tier=n, best_subtest=t.best_subtest, best_score=t.best_subtest_score,
                                  cost=t.total_cost, report=_rel(paths.tier(n).report_json, paths.dir))
            for n, t in result.tier_results.items()
        ],
        generated_at=now,
    )
    bundle.records[paths.tier_comparison] = TierComparison(
        {
            n: TierComparisonEntry(best_subtest=t.best_subtest, best_score=t.best_subtest_score,
                                   total_cost=t.total_cost, tiebreaker_needed=t.tiebreaker_needed,
                                   cost_of_pass=t.cost_of_pass)
            for n, t in result.tier_results.items()
        }
    )
    bundle.texts[paths.report_md] = md.experiment_markdown(
        result, config, paths, plot_files, now, expected.unexpected if expected else ()
    )
    bundle.texts[paths.summary_md] = md.experiment_summary_markdown(result, paths)
    return bundle
