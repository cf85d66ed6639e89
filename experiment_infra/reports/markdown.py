"""Markdown reports of an agent-evaluation experiment, readable in a terminal and on GitHub.

Tables follow ProjectScylla's report.md files. Every link is relative to the file it
is written in and points at a file that exists (or is written in the same rebuild):
``summary.md`` links ``./T0/00/report.md``, not ProjectScylla's non-existent
``./tiers/...``; optional files (criteria, rubric, task prompt, judgments) are
linked only when present.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..status.expected import UnexpectedRun
from ..layout import AgentRunPaths, ExperimentPaths
from ..records import (
    ExperimentConfig,
    ExperimentResult,
    RunResult,
    SubtestResult,
    TierResult,
)
from .md_format import (
    FOOTER, NONE, cop, link, missing_section, money, num, pct, run_duration, table, token_table, unexpected_section,
)

# ------------------------------------------------------------------- run level


def run_markdown(tier: str, subtest: str, run: RunResult, paths: AgentRunPaths, generated_at: str) -> str:
    ts = run.token_stats
    me = paths.report_md
    tokens = f"{ts.input_tokens + ts.cache_read_tokens:,} in ({ts.cache_read_tokens:,} cached) / {ts.output_tokens:,} out"
    if ts.cache_creation_tokens:
        tokens += f" / {ts.cache_creation_tokens:,} cache created"
    lines = [
        f"# Run Report: {tier}/{subtest}/{paths.dir.name}",
        "",
        f"**Generated**: {generated_at}",
        "",
        "## Summary",
        "",
        *table(
            ["Metric", "Value"],
            [
                ["Score", f"{run.judge_score:.3f}"],
                ["Grade", run.judge_grade],
                ["Status", "✓ PASS" if run.judge_passed else "✗ FAIL"],
                ["Cost", money(run.cost_usd)],
                ["Duration (Total)", f"{run.duration_seconds:.2f}s"],
                ["- Agent", f"{run.agent_duration_seconds:.2f}s"],
                ["- Judge", f"{run.judge_duration_seconds:.2f}s"],
                ["Tokens", tokens],
                ["Exit Code", run.exit_code],
            ],
        ),
        "",
        "### Token Breakdown",
        "",
        *token_table(ts),
        "",
    ]
    if paths.task_prompt.is_file():
        lines += ["## Task", "", link(me, paths.task_prompt, "View task prompt"), ""]
    lines += [
        "## Judge Evaluation (Consensus)",
        "",
        *table(
            ["Metric", "Value"],
            [["Score", f"{run.judge_score:.3f}"], ["Grade", run.judge_grade], ["Passed", "✅" if run.judge_passed else "❌"]],
        ),
        "",
    ]
    if run.judges:
        lines += ["### Individual Judges", ""]
    for judge in run.judges:
        if not judge.valid:
            lines += [f"#### Judge {judge.judge_number}: {judge.model} (no valid judgment)", "", judge.reasoning or NONE, ""]
            continue
        lines += [
            f"#### Judge {judge.judge_number}: {judge.model}",
            "",
            *table(
                ["Metric", "Value"],
                [["Score", f"{judge.score:.3f}"], ["Passed", "✅" if judge.passed else "❌"], ["Grade", judge.grade or NONE]],
            ),
            "",
            f"**Reasoning:** {judge.reasoning or 'No reasoning provided'}",
            "",
        ]
        judgment = paths.judge_slot(judge.judge_number).judgment
        if judge.judge_number >= 1 and judgment.is_file():
            lines += ["- " + link(me, judgment, "View judgment"), ""]
    outputs = [(paths.output, "View agent output"), (paths.agent_result, "View agent result JSON"),
               (paths.run_result, "View run result JSON"), (paths.workspace, "Browse workspace")]
    present = [(p, text) for p, text in outputs if p.exists()]
    if present:
        lines += ["## Agent Output", "", *("- " + link(me, p, text) for p, text in present), ""]
    lines += ["---", "", FOOTER, ""]
    return "\n".join(lines)


# --------------------------------------------------------------- subtest level


def subtest_markdown(
    s: SubtestResult, paths: ExperimentPaths, generated_at: str, unexpected: Iterable[UnexpectedRun] = ()
) -> str:
    sub = paths.subtest(s.tier_id, s.subtest_id)
    me = sub.report_md
    best_run = max(s.runs, key=lambda r: r.judge_score).run_number if s.runs else None
    passed = sum(1 for r in s.runs if r.judge_passed)
    ts = s.token_stats
    rows = [
        [
            f"{r.run_number:02d}{'★' if r.run_number == best_run else ''}",
            f"{r.judge_score:.2f}",
            r.judge_grade,
            "✓" if r.judge_passed else "✗",
            f"{r.duration_seconds:.2f}s",
            money(r.cost_usd),
            f"{r.token_stats.input_tokens:,}",
            f"{r.token_stats.output_tokens:,}",
            f"{r.token_stats.cache_read_tokens:,}",
            f"{r.token_stats.cache_creation_tokens:,}",
        ]
        for r in s.runs
    ]
    distribution = ", ".join(f"{g}={n}" for g, n in (s.grade_distribution or {}).items()) or NONE
    lines = [
        f"# Subtest Report: {s.subtest_id}",
        "",
        f"**Tier**: {link(me, paths.tier(s.tier_id).report_md, s.tier_id)}",
        f"**Generated**: {generated_at}",
        "",
        "## Summary",
        "",
        *table(
            ["Metric", "Value"],
            [
                ["Total Runs", len(s.runs)],
                ["Expected Runs", s.expected_runs if s.expected_runs is not None else NONE],
                ["Passed", passed],
                ["Pass Rate", pct(s.pass_rate)],
                ["Mean Score", num(s.mean_score)],
                ["Median Score", num(s.median_score)],
                ["Std Dev", num(s.std_dev_score)],
                ["Total Cost", money(s.total_cost)],
                ["Consistency", num(s.consistency)],
            ],
        ),
        "",
        "## Runs Overview",
        "",
        *table(["Run", "Score", "Grade", "Pass", "Duration", "Cost", "In", "Out", "Cache R", "Cache W"], rows),
        "",
        "## Grade Statistics",
        "",
        f"**Distribution**: {distribution}",
        f"**Modal Grade**: {s.modal_grade or NONE}",
        f"**Grade Range**: {s.min_grade or NONE} - {s.max_grade or NONE}",
        "",
        *missing_section(s.missing_runs, me, paths),
        *unexpected_section(unexpected, me, paths, s.expected_runs or 0),
        "## Token Statistics (Total)",
        "",
        *token_table(ts),
        "",
    ]
    if s.runs:
        lines += ["## Run Reports", ""]
        lines += [f"- {link(me, sub.run(r.run_number).report_md, f'Run {r.run_number:02d}')}" for r in s.runs]
        lines.append("")
    lines += ["---", "", FOOTER, ""]
    return "\n".join(lines)


# ------------------------------------------------------------------ tier level


def tier_markdown(t: TierResult, paths: ExperimentPaths, generated_at: str) -> str:
    tier = paths.tier(t.tier_id)
    me = tier.report_md
    rows = [
        [
            link(me, paths.subtest(t.tier_id, name).report_md, name),
            num(s.mean_score, ".2f"),
            pct(s.pass_rate, 0),
            f"{run_duration(s):.2f}s",
            money(s.total_cost, 2),
            f"{s.token_stats.input_tokens:,}",
            f"{s.token_stats.output_tokens:,}",
            f"{s.token_stats.cache_read_tokens:,}",
            f"{s.token_stats.cache_creation_tokens:,}",
            "★" if s.selected_as_best else "",
        ]
        for name, s in sorted(t.subtest_results.items())
    ]
    ties = ", ".join(t.tied_subtests)
    lines = [
        f"# Tier Report: {t.tier_id}",
        "",
        f"**Generated**: {generated_at}",
        "",
        "## Summary",
        "",
        *table(
            ["Metric", "Value"],
            [
                ["Total Subtests", len(t.subtest_results)],
                ["Best Subtest", t.best_subtest or NONE],
                ["Best Score", num(t.best_subtest_score)],
                ["Cost-of-Pass", cop(t.cost_of_pass)],
                ["Total Cost", money(t.total_cost)],
                ["Duration", f"{t.total_duration:.1f}s"],
                ["Tiebreaker Needed", f"Yes (within 0.05: {ties})" if t.tiebreaker_needed else "No"],
            ],
        ),
        "",
        "## Subtests Overview",
        "",
        *table(["Subtest", "Score", "Pass", "Duration", "Cost", "In", "Out", "Cache R", "Cache W", "Best"], rows),
        "",
        *missing_section([m for s in t.subtest_results.values() for m in s.missing_runs], me, paths),
        "## Token Statistics (Total)",
        "",
        *token_table(t.token_stats),
        "",
        "## Subtest Reports",
        "",
        *(f"- {link(me, paths.subtest(t.tier_id, n).report_md, n)}" for n in sorted(t.subtest_results)),
        "",
        f"See also {link(me, tier.summary_md, 'the subtest summary')} and "
        f"{link(me, tier.best_subtest, 'best_subtest.json')}." if t.best_subtest else
        f"See also {link(me, tier.summary_md, 'the subtest summary')}.",
        "",
        "---",
        "",
        FOOTER,
        "",
    ]
    return "\n".join(lines)


def tier_summary_markdown(t: TierResult, paths: ExperimentPaths) -> str:
    me = paths.tier(t.tier_id).summary_md
    rows = [
        [
            name,
            num(max((r.judge_score for r in s.runs), default=None), ".2f"),
            pct(s.pass_rate),
            money(s.mean_cost),
            f"{len(s.runs)}/{s.expected_runs if s.expected_runs is not None else len(s.runs)}",
            link(me, paths.subtest(t.tier_id, name).report_md, "View"),
        ]
        for name, s in sorted(t.subtest_results.items())
    ]
    header = ["Subtest", "Best Score", "Pass Rate", "Avg Cost", "Runs", "Report"]
    return "\n".join([f"# {t.tier_id} Subtest Summary", "", *table(header, rows), "", FOOTER, ""])


# ------------------------------------------------------------ experiment level


def comparison_table(result: ExperimentResult) -> list[str]:
    """One row per tier: best subtest, its score and pass rate, tier cost, cost-of-pass, runs."""
    rows = []
    for name, t in result.tier_results.items():
        best = t.subtest_results.get(t.best_subtest) if t.best_subtest else None
        completed = sum(len(s.runs) for s in t.subtest_results.values())
        expected = sum(s.expected_runs or len(s.runs) for s in t.subtest_results.values())
        rows.append([
            f"**{name}**" if name == result.best_overall_tier else name,
            t.best_subtest or NONE,
            num(t.best_subtest_score),
            pct(best.pass_rate if best else None, 0),
            money(t.total_cost),
            cop(t.cost_of_pass),
            f"{completed}/{expected}",
        ])
    return table(["Tier", "Best subtest", "Mean score", "Pass", "Tier cost", "Cost-of-pass", "Runs"], rows)


def summary_table(result: ExperimentResult) -> list[str]:
    """Headline and per-tier comparison: the experiment's answer in a few lines."""
    headline = (
        f"**Best tier**: {result.best_overall_tier} (subtest {result.best_overall_subtest}), "
        f"frontier cost-of-pass {cop(result.frontier_cop)}"
        if result.best_overall_tier
        else f"**Best tier**: none (no tier passed; frontier cost-of-pass {cop(result.frontier_cop)})"
    )
    missing = len(result.missing_runs)
    return [
        headline,
        "",
        f"**Total cost**: {money(result.total_cost)} · **Missing runs**: {missing}",
        "",
        *comparison_table(result),
    ]


def experiment_markdown(
    result: ExperimentResult, config: ExperimentConfig, paths: ExperimentPaths, plots: list[Path], generated_at: str,
    unexpected: Iterable[UnexpectedRun] = (),
) -> str:
    me = paths.report_md
    tier_rows, best_rows = [], []
    for name, t in result.tier_results.items():
        ts = t.token_stats
        tier_rows.append([
            link(me, paths.tier(name).report_md, name), len(t.subtest_results), f"{t.total_duration:.1f}s",
            money(t.total_cost, 2), f"{ts.input_tokens:,}", f"{ts.output_tokens:,}",
            f"{ts.cache_read_tokens:,}", f"{ts.cache_creation_tokens:,}", cop(t.cost_of_pass, 2),
        ])
        best = t.subtest_results.get(t.best_subtest) if t.best_subtest else None
        if best is not None:
            best_rows.append([
                name, link(me, paths.subtest(name, best.subtest_id).report_md, best.subtest_id),
                num(t.best_subtest_score, ".2f"), pct(best.pass_rate, 0), money(best.total_cost, 2),
                f"{run_duration(best):.1f}s", ", ".join(t.tied_subtests) or NONE,
            ])
    files = [
        (paths.prompt, "Task prompt"), (paths.criteria, "Grading criteria"), (paths.rubric, "Grading rubric"),
        (paths.judge_prompt, "Judge prompt template"), (paths.config, "Experiment configuration"),
        (paths.result, "Full results data"), (paths.tier_comparison, "Tier comparison"),
        (paths.summary_md, "All subtests"),
    ]
    lines = [
        f"# E2E Experiment Report: {config.experiment_id}",
        "",
        f"**Generated**: {generated_at}",
        f"**Duration**: {result.total_duration_seconds:.1f}s (first run start to last run end)",
        f"**Total Cost**: {money(result.total_cost)}",
        "",
        "## Summary",
        "",
        f"- **Best Tier**: {result.best_overall_tier or 'N/A'}",
        f"- **Best Sub-test**: {result.best_overall_subtest or 'N/A'}",
        f"- **Frontier CoP**: {cop(result.frontier_cop)}",
        f"- **Missing Runs**: {len(result.missing_runs)} (not completed; left out of every aggregate)",
        "",
        "## Tier Comparison",
        "",
        *comparison_table(result),
        "",
        "## Tier Summary",
        "",
        *table(["Tier", "Subtests", "Duration", "Cost", "In", "Out", "Cache R", "Cache W", "CoP"], tier_rows),
        "",
        "## Best Subtest per Tier",
        "",
        *table(["Tier", "Best", "Score", "Pass", "Cost", "Duration", "Ties (within 0.05)"], best_rows),
        "",
        *missing_section(result.missing_runs, me, paths),
        *unexpected_section(unexpected, me, paths, config.runs_per_subtest),
        "## Token Statistics (Total)",
        "",
        *token_table(result.token_stats),
        "",
    ]
    if plots:
        lines += ["## Plots", ""]
        for plot in plots:
            title = plot.stem.replace("_", " ").capitalize()
            lines += [f"### {title}", "", "!" + link(me, plot, title), ""]
    lines += [
        "## Configuration",
        "",
        f"- **Task Repo**: {f'<{config.task_repo}>' if config.task_repo else NONE}",
        f"- **Task Commit**: {config.task_commit or NONE}",
        f"- **Runs per Sub-test**: {config.runs_per_subtest}",
        f"- **Judge Models**: {', '.join(config.judge_models)}",
        "",
        "## Tier Reports",
        "",
        *(f"- {link(me, paths.tier(name).report_md, name)}" for name in result.tier_results),
        "",
        "## Files",
        "",
        *(f"- {link(me, p, p.name)} - {text}" for p, text in files if p.is_file() or p in (paths.result, paths.tier_comparison, paths.summary_md)),
        "",
        "---",
        "",
        FOOTER,
        "",
    ]
    return "\n".join(lines)


def experiment_summary_markdown(result: ExperimentResult, paths: ExperimentPaths) -> str:
    me = paths.summary_md
    rows = [
        [
            tier,
            name,
            num(max((r.judge_score for r in s.runs), default=None), ".2f"),
            pct(s.pass_rate),
            money(s.mean_cost),
            f"{len(s.runs)}/{s.expected_runs if s.expected_runs is not None else len(s.runs)}",
            link(me, paths.subtest(tier, name).report_md, "View"),
        ]
        for tier, t in result.tier_results.items()
        for name, s in sorted(t.subtest_results.items())
    ]
    header = ["Tier", "Subtest", "Best Score", "Pass Rate", "Avg Cost", "Runs", "Report"]
    return "\n".join(["# Experiment Summary: All Subtests", "", *table(header, rows), "", FOOTER, ""])
