"""Report files rebuilt from ``run_result.json`` files (``experiment_infra/reports/``)."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, RootModel

from .agent_eval import ExperimentConfig, RunResult, TokenStats
from .base import _Open

# Report files rebuilt from run_result.json files (experiment_infra/reports/). They
# keep ProjectScylla's keys and meanings so tools built on its reports keep working;
# keys this project adds (missing runs, tied subtests) are extra keys, never renames.
#
# Cost-of-pass values: a number; the string "inf" when runs completed and none passed
# (JSON has no infinity, and float("inf") reads the string back); null when there
# was nothing to measure (no completed run).

INFINITE = "inf"


def _inf_as_text(v: float | str | None) -> float | str | None:
    if isinstance(v, float) and math.isinf(v) and v > 0:
        return INFINITE
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError(f"cost-of-pass must be a number, \"{INFINITE}\" or null, got {v}")
    return v


CostOfPass = Annotated[float | Literal["inf"] | None, AfterValidator(_inf_as_text)]


def cost_of_pass_value(v: float | str | None) -> float | None:
    """A report's cost-of-pass as a float (``math.inf`` for ``"inf"``), None when unmeasured."""
    return math.inf if v == INFINITE else (None if v is None else float(v))


class MissingRun(_Open):
    """An expected run left out of the aggregates because it is not ``completed``."""

    tier: str
    subtest: str
    run_number: int
    status: str
    reason: str


class SubtestResult(_Open):
    """One entry of ``T*/result.json`` ``subtest_results``: the subtest's completed runs aggregated.

    The statistics are null when no run completed (never zero: a missing run is not a 0 score).
    """

    subtest_id: str
    tier_id: str
    runs: list[RunResult]
    pass_rate: float | None = None
    mean_score: float | None = None
    median_score: float | None = None
    std_dev_score: float | None = None
    mean_cost: float | None = None
    total_cost: float = 0.0
    token_stats: TokenStats = TokenStats()
    consistency: float | None = None
    grade_distribution: dict[str, int] | None = None
    modal_grade: str | None = None
    min_grade: str | None = None
    max_grade: str | None = None
    selected_as_best: bool = False
    selection_reason: str = ""
    rate_limit_info: dict[str, Any] | None = None
    expected_runs: int | None = None
    missing_runs: list[MissingRun] = []


class TierResult(_Open):
    """``T*/result.json`` (and each entry of the experiment's ``tier_results``)."""

    tier_id: str
    subtest_results: dict[str, SubtestResult]
    best_subtest: str | None = None
    best_subtest_score: float | None = None
    inherited_from: dict[str, Any] | None = None
    tiebreaker_needed: bool = False
    total_cost: float = 0.0
    total_duration: float = 0.0
    cost_of_pass: CostOfPass = None
    token_stats: TokenStats = TokenStats()
    tied_subtests: list[str] = []


class ExperimentResult(_Open):
    """The experiment's ``result.json``."""

    config: ExperimentConfig
    tier_results: dict[str, TierResult]
    best_overall_tier: str | None = None
    best_overall_subtest: str | None = None
    frontier_cop: CostOfPass = None
    frontier_cop_tier: str | None = None
    total_cost: float = 0.0
    total_duration_seconds: float = 0.0
    token_stats: TokenStats = TokenStats()
    started_at: str | None = None
    completed_at: str | None = None
    missing_runs: list[MissingRun] = []


class SubtestReportSummary(_Open):
    total_runs: int
    passed: int
    pass_rate: float | None = None
    mean_score: float | None = None
    median_score: float | None = None
    std_dev: float | None = None
    total_cost: float = 0.0
    consistency: float | None = None
    grade_distribution: dict[str, int] | None = None
    modal_grade: str | None = None
    min_grade: str | None = None
    max_grade: str | None = None


class SubtestReportChild(_Open):
    run_number: int
    score: float
    passed: bool
    report: str


class SubtestReport(_Open):
    """``T*/{subtest}/report.json``."""

    subtest_id: str
    tier_id: str
    summary: SubtestReportSummary
    token_stats: TokenStats
    children: list[SubtestReportChild]
    generated_at: str | None = None
    missing_runs: list[MissingRun] = []


class TierReportSummary(_Open):
    total_subtests: int
    best_subtest: str | None = None
    best_score: float | None = None
    total_cost: float = 0.0
    total_duration: float = 0.0
    tiebreaker_needed: bool = False


class TierReportBest(_Open):
    subtest: str | None = None
    score: float | None = None
    report: str | None = None


class TierReportChild(_Open):
    id: str
    score: float | None = None
    pass_rate: float | None = None
    cost: float = 0.0
    selected: bool = False
    report: str


class TierReport(_Open):
    """``T*/report.json``."""

    tier: str
    summary: TierReportSummary
    token_stats: TokenStats
    best: TierReportBest
    children: list[TierReportChild]
    generated_at: str | None = None


class ExperimentReportSummary(_Open):
    total_tiers: int
    best_tier: str | None = None
    best_subtest: str | None = None
    frontier_cop: CostOfPass = None
    total_cost: float = 0.0
    total_duration: float = 0.0
    started_at: str | None = None
    completed_at: str | None = None


class ExperimentReportBest(_Open):
    tier: str | None = None
    subtest: str | None = None
    report: str | None = None


class ExperimentReportChild(_Open):
    tier: str
    best_subtest: str | None = None
    best_score: float | None = None
    cost: float = 0.0
    report: str


class ExperimentReport(_Open):
    """The experiment's ``report.json``."""

    experiment_id: str
    summary: ExperimentReportSummary
    token_stats: TokenStats
    best: ExperimentReportBest
    children: list[ExperimentReportChild]
    generated_at: str | None = None


class TierComparisonEntry(_Open):
    best_subtest: str | None = None
    best_score: float | None = None
    total_cost: float = 0.0
    tiebreaker_needed: bool = False
    cost_of_pass: CostOfPass = None


class TierComparison(RootModel[dict[str, TierComparisonEntry]]):
    """``tier_comparison.json``: one entry per tier."""


class SubtestVote(_Open):
    subtest_id: str
    score: float
    confidence: float
    reasoning: str


class BestSubtest(_Open):
    """``T*/best_subtest.json``: how the tier's best subtest was chosen."""

    winning_subtest: str
    winning_score: float
    votes: list[SubtestVote]
    margin: float
    tiebreaker_needed: bool = False
    tiebreaker_result: SubtestVote | None = None


