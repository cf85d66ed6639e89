"""Aggregates of an agent-evaluation experiment, computed from its run files alone.

Definitions (they reproduce ProjectScylla's report files; see docs/reports.md):

- The expected runs are ``expected.expected_runs``'s, the recovery's own rule. A run
  counts only when ``status.classify_run`` says ``completed``; every other expected run
  is listed in ``missing_runs`` and left out, never counted as a zero. A run directory
  outside ``1..runs_per_subtest`` is not expected: named in the markdown, never counted.
- Subtest: pass rate = passed / completed runs; mean, median and sample standard
  deviation of the consensus score; consistency = max(0, 1 - std / mean) (0 when the
  mean is 0); mean and total cost; grade distribution, modal grade (ties: first seen
  in run order), min and max grade on the scale F < D < C < B < A < S.
- Tier: best subtest = highest mean score (ties on mean: higher pass rate, then lower
  mean cost, then name); any other subtest within 0.05 of it is a tie, noted in
  ``tiebreaker_needed`` and ``tied_subtests``; cost-of-pass = the best subtest's mean
  cost / its pass rate, infinite when nothing passed; total cost and tokens summed
  over its subtests; total duration = wall-clock span of its completed runs.
- Experiment: best tier = lowest finite cost-of-pass (first in ``tiers_to_run`` order
  on equal cost), its best subtest, the frontier cost-of-pass; totals summed over
  tiers; ``started_at``/``completed_at`` = first run start / last run end.

Run start and end come from the run's own timing files: start = agent
``timing.json`` ``measured_at`` minus the agent duration, end = judge ``timing.json``
``measured_at`` (else start + the run's duration). The runner's own wall clock
(workspace set-up before the agent, report writing after the judges) is in no run
file, so rebuilt durations are that much shorter than a live runner's.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from ..errors import ExperimentError
from ..status.expected import ExpectedRuns, expected_runs
from ..layout import AgentRunPaths, ExperimentPaths, run_label
from ..records import (
    AgentTiming,
    BestSubtest,
    ExperimentConfig,
    ExperimentResult,
    JudgeTiming,
    MissingRun,
    RunResult,
    SubtestResult,
    SubtestVote,
    TierResult,
    TokenStats,
    load_record,
    read_record,
)
from ..status.rules import RunStatus
from ..status.cache import StatusCache

GRADE_ORDER = ("F", "D", "C", "B", "A", "S")
TIE_THRESHOLD = 0.05


class ReportError(ExperimentError, ValueError):
    """An experiment or suite directory that reports cannot be built from."""


# ------------------------------------------------------------------ pure aggregates


def sum_tokens(stats: Iterable[TokenStats]) -> TokenStats:
    total = TokenStats()
    for s in stats:
        total = total + s
    return total


def subtest_result(
    tier: str,
    subtest: str,
    runs: list[RunResult],
    *,
    expected_runs: int | None = None,
    missing: list[MissingRun] | None = None,
) -> SubtestResult:
    """Aggregate one subtest's completed runs (statistics stay null when there are none)."""
    runs = sorted(runs, key=lambda r: r.run_number)
    base = SubtestResult(
        subtest_id=subtest,
        tier_id=tier,
        runs=runs,
        expected_runs=expected_runs,
        missing_runs=list(missing or []),
        token_stats=sum_tokens(r.token_stats for r in runs),
    )
    if not runs:
        return base
    scores = [r.judge_score for r in runs]
    costs = [r.cost_usd for r in runs]
    mean = statistics.mean(scores)
    std = statistics.stdev(scores) if len(scores) > 1 else 0.0
    grades = [r.judge_grade for r in runs if r.judge_grade]
    distribution: dict[str, int] = {}
    for g in grades:
        distribution[g] = distribution.get(g, 0) + 1
    ranked = sorted(GRADE_ORDER.index(g) for g in grades if g in GRADE_ORDER)
    return base.model_copy(
        update={
            "pass_rate": sum(1 for r in runs if r.judge_passed) / len(runs),
            "mean_score": mean,
            "median_score": statistics.median(scores),
            "std_dev_score": std,
            "mean_cost": statistics.mean(costs),
            "total_cost": sum(costs),
            "consistency": max(0.0, 1.0 - std / mean) if mean > 0 else 0.0,
            "grade_distribution": distribution or None,
            "modal_grade": max(distribution, key=distribution.__getitem__) if distribution else None,
            "min_grade": GRADE_ORDER[ranked[0]] if ranked else None,
            "max_grade": GRADE_ORDER[ranked[-1]] if ranked else None,
        }
    )


def cost_of_pass(subtest: SubtestResult | None) -> float | None:
    """Mean cost / pass rate; ``inf`` when nothing passed; None when nothing completed."""
    if subtest is None or subtest.pass_rate is None or subtest.mean_cost is None:
        return None
    if subtest.pass_rate <= 0:
        return float("inf")
    return subtest.mean_cost / subtest.pass_rate


def select_best(subtests: dict[str, SubtestResult]) -> tuple[BestSubtest | None, list[str]]:
    """The tier's best subtest by mean score, and the subtests tied with it (within 0.05)."""
    measured = [s for s in subtests.values() if s.mean_score is not None]
    if not measured:
        return None, []
    ranked = sorted(
        measured,
        key=lambda s: (-(s.mean_score or 0.0), -(s.pass_rate or 0.0), s.mean_cost or 0.0, s.subtest_id),
    )
    best = ranked[0]
    if len(ranked) == 1:
        vote = SubtestVote(
            subtest_id=best.subtest_id, score=best.mean_score, confidence=1.0, reasoning="Only sub-test in tier"
        )
        return BestSubtest(winning_subtest=best.subtest_id, winning_score=best.mean_score, votes=[vote], margin=1.0), []
    votes = [
        SubtestVote(
            subtest_id=s.subtest_id,
            score=s.mean_score,
            confidence=s.consistency if s.consistency is not None else 0.0,
            reasoning=f"Pass rate: {s.pass_rate:.1%}, Mean score: {s.mean_score:.3f}, "
            f"Consistency: {s.consistency:.3f}",
        )
        for s in ranked
    ]
    tied = [s.subtest_id for s in ranked[1:] if best.mean_score - s.mean_score < TIE_THRESHOLD]
    margin = best.mean_score - ranked[1].mean_score
    selection = BestSubtest(
        winning_subtest=best.subtest_id,
        winning_score=best.mean_score,
        votes=votes,
        margin=margin,
        tiebreaker_needed=bool(tied),
    )
    return selection, tied


@dataclass(frozen=True)
class RunSpan:
    start: datetime
    end: datetime


def wall_clock(spans: Iterable[RunSpan]) -> tuple[datetime, datetime] | None:
    spans = list(spans)
    if not spans:
        return None
    return min(s.start for s in spans), max(s.end for s in spans)


def tier_result(tier: str, subtests: dict[str, SubtestResult], spans: Iterable[RunSpan] = ()) -> tuple[
    TierResult, BestSubtest | None
]:
    selection, tied = select_best(subtests)
    marked = {}
    for name, s in subtests.items():
        chosen = selection is not None and name == selection.winning_subtest
        reason = ""
        if chosen:
            reason = f"Highest mean score ({s.mean_score:.3f})"
            if tied:
                reason += f"; within {TIE_THRESHOLD} of {', '.join(tied)}"
        marked[name] = s.model_copy(update={"selected_as_best": chosen, "selection_reason": reason})
    best = marked[selection.winning_subtest] if selection else None
    span = wall_clock(spans)
    result = TierResult(
        tier_id=tier,
        subtest_results=marked,
        best_subtest=best.subtest_id if best else None,
        best_subtest_score=best.mean_score if best else None,
        tiebreaker_needed=bool(tied),
        tied_subtests=tied,
        total_cost=sum(s.total_cost for s in marked.values()),
        total_duration=(span[1] - span[0]).total_seconds() if span else 0.0,
        cost_of_pass=cost_of_pass(best),
        token_stats=sum_tokens(s.token_stats for s in marked.values()),
    )
    return result, selection


def frontier(tiers: dict[str, TierResult]) -> tuple[str | None, float | None]:
    """The tier with the lowest finite cost-of-pass, and that cost (``inf`` if none passed)."""
    best_tier, best_cop = None, None
    for name, t in tiers.items():
        cop = cost_of_pass(t.subtest_results.get(t.best_subtest)) if t.best_subtest else None
        if cop is None:
            continue
        if best_cop is None or cop < best_cop:
            best_tier, best_cop = (name if cop != float("inf") else None), cop
    return best_tier, best_cop


def experiment_result(
    config: ExperimentConfig,
    tiers: dict[str, TierResult],
    spans: Iterable[RunSpan] = (),
    missing: list[MissingRun] | None = None,
) -> ExperimentResult:
    best_tier, best_cop = frontier(tiers)
    span = wall_clock(spans)
    return ExperimentResult(
        config=config,
        tier_results=tiers,
        best_overall_tier=best_tier,
        best_overall_subtest=tiers[best_tier].best_subtest if best_tier else None,
        frontier_cop=best_cop,
        frontier_cop_tier=best_tier,
        total_cost=sum(t.total_cost for t in tiers.values()),
        total_duration_seconds=(span[1] - span[0]).total_seconds() if span else 0.0,
        token_stats=sum_tokens(t.token_stats for t in tiers.values()),
        started_at=span[0].isoformat() if span else None,
        completed_at=span[1].isoformat() if span else None,
        missing_runs=list(missing or []),
    )


# --------------------------------------------------------------------- from disk


def run_span(paths: AgentRunPaths, run: RunResult) -> RunSpan | None:
    """When the run's agent started and its last judge finished, from its timing files."""
    agent = read_record(paths.agent_timing, AgentTiming).record
    agent_end = agent.measured if agent else None
    if agent is None or agent_end is None:
        return None
    start = agent_end - timedelta(seconds=agent.agent_duration_seconds)
    judge = read_record(paths.judge_timing, JudgeTiming).record
    end = judge.measured if judge else None
    if end is None or end < start:
        end = start + timedelta(seconds=run.duration_seconds)
    return RunSpan(start, end)


@dataclass(frozen=True)
class TierAggregate:
    """One tier's aggregates: what its own report files and the experiment's need (plain
    values and records: a tier's reports may be built in a helper process)."""

    result: TierResult
    selection: BestSubtest | None
    spans: list[RunSpan]
    missing: list[MissingRun]


@dataclass
class Aggregates:
    """Everything the report writers need, read once from the experiment directory."""

    paths: ExperimentPaths
    config: ExperimentConfig
    result: ExperimentResult
    selections: dict[str, BestSubtest] = field(default_factory=dict)
    expected: ExpectedRuns | None = None  # which runs count; its ``unexpected`` ones are named, never aggregated


def load_config(experiment_dir: Path) -> ExperimentConfig:
    paths = ExperimentPaths(Path(experiment_dir))
    read = read_record(paths.config, ExperimentConfig)
    if read.record is None:
        raise ReportError(f"{paths.config}: {read.problem} (not an agent-evaluation experiment directory?)")
    return read.record


@dataclass(frozen=True)
class ExperimentInputs:
    """What aggregating any tier of an experiment starts from."""

    paths: ExperimentPaths
    config: ExperimentConfig
    expected: ExpectedRuns
    cache: StatusCache


def experiment_inputs(experiment_dir: Path) -> ExperimentInputs:
    """Classification goes through the recovery's status cache (read, never written
    here): a run whose files did not change since it was classified is not read again."""
    paths = ExperimentPaths(Path(experiment_dir))
    config = load_config(paths.dir)
    cache = StatusCache.load(paths.status_cache, list(config.judge_models))
    return ExperimentInputs(paths, config, expected_runs(paths, config), cache)  # the recovery's rule of expected runs


def aggregate_tier(inputs: ExperimentInputs, tier: str) -> TierAggregate:
    """Classify every expected run of ``tier``, read the completed ones and aggregate them."""
    paths, expected = inputs.paths, inputs.expected
    subtests: dict[str, SubtestResult] = {}
    spans: list[RunSpan] = []
    all_missing: list[MissingRun] = []
    for subtest in expected.subtests[tier]:
        # Each run where it is (split layout: completed/, else in_progress/ or the top), as the survey reads it.
        found = paths.runs_found(tier, subtest) if paths.split else {}
        home = (paths.subtest(tier, subtest),)
        runs, missing = [], []
        for number in expected.run_numbers:
            run_paths = found.get(number, home)[0].run(number)
            verdict = inputs.cache.classify(run_label(tier, subtest, number), run_paths)
            if verdict.status is not RunStatus.COMPLETED:
                missing.append(MissingRun(tier=tier, subtest=subtest, run_number=number,
                                          status=verdict.status.value, reason=verdict.reason))
                continue
            run = load_record(run_paths.run_result, RunResult)
            runs.append(run)
            span = run_span(run_paths, run)
            if span is not None:
                spans.append(span)
        subtests[subtest] = subtest_result(tier, subtest, runs, expected_runs=expected.runs_per_subtest, missing=missing)
        all_missing.extend(missing)
    result, selection = tier_result(tier, subtests, spans)
    return TierAggregate(result, selection, spans, all_missing)


def aggregate_experiment(experiment_dir: Path, done: Mapping[str, TierAggregate] | None = None) -> Aggregates:
    """Every tier's aggregates (those in ``done`` as given: already aggregated elsewhere)
    and the experiment's from them."""
    inputs = experiment_inputs(experiment_dir)
    done = done or {}
    tiers: dict[str, TierResult] = {}
    selections: dict[str, BestSubtest] = {}
    all_spans: list[RunSpan] = []
    all_missing: list[MissingRun] = []
    for tier in inputs.expected.tiers:
        agg = done.get(tier) or aggregate_tier(inputs, tier)
        tiers[tier] = agg.result
        if agg.selection is not None:
            selections[tier] = agg.selection
        all_spans.extend(agg.spans)
        all_missing.extend(agg.missing)
    result = experiment_result(inputs.config, tiers, all_spans, all_missing)
    return Aggregates(
        paths=inputs.paths, config=inputs.config, result=result, selections=selections, expected=inputs.expected
    )
