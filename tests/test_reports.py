"""Experiment reports: rebuilt from run files alone, equal to ProjectScylla's originals.

Covers the fixture round trip (delete every report, rebuild, same numbers), hand-checked
aggregates (no passes, one run, ties, missing runs), PNG plots, markdown links, the
standard-mode suite report, and the Prefect flow with its artifact read back.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image

from conftest import FIXTURE, PYTHON, REPO_ROOT
from experiment_infra.layout import ExperimentPaths, SuiteRunPaths
from experiment_infra.reports.grading import grade_for
from experiment_infra.records import (
    BestSubtest,
    ExperimentConfig,
    ExperimentReport,
    ExperimentResult,
    GitProvenance,
    ManifestCase,
    RunRecord,
    RunReport,
    RunResult,
    SubtestReport,
    SuiteManifest,
    TierComparison,
    TierReport,
    TierResult,
    load_record,
    write_record,
)
from experiment_infra.reports import (
    ReportError,
    build_reports,
    experiment_result,
    rebuild_reports,
    subtest_result,
    tier_result,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIERS = ["T0", "T1", "T2", "T3", "T4", "T5", "T6"]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


# ------------------------------------------------------------------ helpers


def report_files(root: Path) -> list[Path]:
    """Every report file ProjectScylla wrote, at every level."""
    paths = ExperimentPaths(root)
    found = [paths.result, paths.report_json, paths.report_md, paths.summary_md, paths.tier_comparison]
    for tier in TIERS:
        t = paths.tier(tier)
        found += [t.result, t.report_json, t.report_md, t.summary_md, t.best_subtest]
        for sub in paths.subtests_on_disk(tier):
            s = paths.subtest(tier, sub)
            found += [s.report_json, s.report_md]
            for n in s.runs_on_disk():
                found += [s.run(n).report_json, s.run(n).report_md]
    return found


def broken_links(md_file: Path, root: Path) -> list[str]:
    bad = []
    for target in LINK.findall(md_file.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        resolved = (md_file.parent / target.split("#")[0]).resolve()
        if not resolved.exists() or not resolved.is_relative_to(root.resolve()):
            bad.append(f"{md_file.relative_to(root)} -> {target}")
    return bad


def assert_png(data: bytes) -> None:
    import matplotlib.image

    assert data[:8] == PNG_SIGNATURE
    with Image.open(io.BytesIO(data)) as img:
        img.verify()
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "PNG" and img.width > 200 and img.height > 200
    assert matplotlib.image.imread(io.BytesIO(data), format="png").ndim == 3


# ----------------------------------------------------- fixture: rebuild == original


def test_rebuild_from_run_files_gives_back_the_fixtures_numbers(scylla_copy: Path) -> None:
    deleted = [p for p in report_files(scylla_copy) if p.exists()]
    assert len(deleted) == 5 + 7 * 5 + 7 * 2 + 7 * 2  # every report file of the fixture
    for p in deleted:
        p.unlink()

    written = rebuild_reports(scylla_copy)
    assert set(deleted) <= set(written)

    orig = load_record(FIXTURE / "result.json", ExperimentResult)
    new = load_record(scylla_copy / "result.json", ExperimentResult)
    assert (new.best_overall_tier, new.best_overall_subtest, new.frontier_cop_tier) == ("T5", "01", "T5")
    assert new.frontier_cop == orig.frontier_cop == 0.06531415
    assert new.total_cost == orig.total_cost
    assert new.token_stats == orig.token_stats
    assert new.missing_runs == []

    same_subtest = ["pass_rate", "mean_score", "median_score", "std_dev_score", "mean_cost", "total_cost",
                    "token_stats", "consistency", "grade_distribution", "modal_grade", "min_grade", "max_grade",
                    "selected_as_best", "runs"]
    for tier in TIERS:
        o, n = orig.tier_results[tier], new.tier_results[tier]
        for key in ["best_subtest", "best_subtest_score", "tiebreaker_needed", "total_cost", "cost_of_pass", "token_stats"]:
            assert getattr(n, key) == getattr(o, key), (tier, key)
        assert n.subtest_results.keys() == o.subtest_results.keys()
        for sub in o.subtest_results:
            for key in same_subtest:
                assert getattr(n.subtest_results[sub], key) == getattr(o.subtest_results[sub], key), (tier, sub, key)
        # The tier file holds the same as the experiment's entry for it.
        assert load_record(scylla_copy / tier / "result.json", TierResult) == n

        o_rep = load_record(FIXTURE / tier / "report.json", TierReport)
        n_rep = load_record(scylla_copy / tier / "report.json", TierReport)
        assert n_rep.summary.model_dump(exclude={"total_duration"}) == o_rep.summary.model_dump(exclude={"total_duration"})
        assert (n_rep.best, n_rep.children, n_rep.token_stats) == (o_rep.best, o_rep.children, o_rep.token_stats)
        assert load_record(scylla_copy / tier / "best_subtest.json", BestSubtest) == load_record(
            FIXTURE / tier / "best_subtest.json", BestSubtest)

        for sub in o.subtest_results:
            o_sub = load_record(FIXTURE / tier / sub / "report.json", SubtestReport)
            n_sub = load_record(scylla_copy / tier / sub / "report.json", SubtestReport)
            assert (n_sub.summary, n_sub.children, n_sub.token_stats) == (o_sub.summary, o_sub.children, o_sub.token_stats)
            o_run = load_record(FIXTURE / tier / sub / "run_01" / "report.json", RunReport)
            n_run = load_record(scylla_copy / tier / sub / "run_01" / "report.json", RunReport)
            assert n_run.model_dump(exclude={"generated_at"}) == o_run.model_dump(exclude={"generated_at"})

    o_cmp = load_record(FIXTURE / "tier_comparison.json", TierComparison).root
    n_cmp = load_record(scylla_copy / "tier_comparison.json", TierComparison).root
    for tier in TIERS:
        assert n_cmp[tier].model_dump(exclude={"cost_of_pass"}) == o_cmp[tier].model_dump(exclude={"cost_of_pass"})

    o_exp = load_record(FIXTURE / "report.json", ExperimentReport)
    n_exp = load_record(scylla_copy / "report.json", ExperimentReport)
    keep = {"total_tiers", "best_tier", "best_subtest", "frontier_cop", "total_cost"}
    assert n_exp.summary.model_dump(include=keep) == o_exp.summary.model_dump(include=keep)
    assert n_exp.best == o_exp.best
    assert sorted(n_exp.children, key=lambda c: c.tier) == sorted(o_exp.children, key=lambda c: c.tier)


def test_wall_clock_values_come_from_run_timing_files(scylla_copy: Path) -> None:
    """Not in run_result.json: derived from timing files, inside the runner's own wall clock."""
    rebuild_reports(scylla_copy)
    orig = load_record(FIXTURE / "result.json", ExperimentResult)
    new = load_record(scylla_copy / "result.json", ExperimentResult)
    started, completed = datetime.fromisoformat(new.started_at), datetime.fromisoformat(new.completed_at)
    assert datetime.fromisoformat(orig.started_at) <= started < completed <= datetime.fromisoformat(orig.completed_at)
    assert new.total_duration_seconds == pytest.approx((completed - started).total_seconds())
    for tier in TIERS:
        longest_run = max(r.duration_seconds for s in new.tier_results[tier].subtest_results.values() for r in s.runs)
        assert longest_run <= new.tier_results[tier].total_duration <= orig.tier_results[tier].total_duration


def test_dry_run_lists_the_files_and_writes_nothing(scylla_copy: Path) -> None:
    for p in report_files(scylla_copy):
        p.unlink(missing_ok=True)
    before = sorted(p for p in scylla_copy.rglob("*"))
    would = rebuild_reports(scylla_copy, dry_run=True)
    assert sorted(p for p in scylla_copy.rglob("*")) == before
    assert would == rebuild_reports(scylla_copy)
    assert all(p.is_file() for p in would)


def test_every_link_in_every_generated_markdown_resolves(scylla_copy: Path) -> None:
    # The checker is not vacuous: ProjectScylla's own summary.md links ./tiers/..., which is absent.
    assert broken_links(scylla_copy / "summary.md", scylla_copy)
    written = rebuild_reports(scylla_copy)
    md_files = [p for p in written if p.suffix == ".md"]
    assert len(md_files) == 2 + 7 * 2 + 7 + 7
    assert [b for p in md_files for b in broken_links(p, scylla_copy)] == []
    summary = (scylla_copy / "summary.md").read_text()
    assert "(./T5/01/report.md)" in summary and "tiers/" not in summary
    report = (scylla_copy / "report.md").read_text()
    assert "![Cost vs score](./plots/cost_vs_score.png)" in report


def test_plots_are_valid_png_files(scylla_copy: Path) -> None:
    written = rebuild_reports(scylla_copy)
    paths = ExperimentPaths(scylla_copy)
    plots = [paths.score_distribution_plot, paths.pass_rate_plot, paths.cost_vs_score_plot, paths.judge_agreement_plot]
    assert set(plots) <= set(written)
    assert all(p.parent == paths.plots_dir for p in plots)
    for p in plots:
        assert_png(p.read_bytes())


def test_prewarmed_plot_helpers_share_the_plots_and_draw_the_same_bytes(scylla_copy: Path) -> None:
    from experiment_infra.reports import plot_worker

    rebuild_reports(scylla_copy)
    result = load_record(ExperimentPaths(scylla_copy).result, ExperimentResult)
    here = plot_worker.draw_all(result)
    plot_worker.prewarm()
    helpers = list(plot_worker._prewarmed)
    assert len(helpers) == min(2, os.cpu_count() or 1)
    shared = plot_worker.start(result).result()
    assert shared == here  # the same four PNGs, whichever process drew which
    assert all(p.poll() is not None for p in helpers)  # each helper drew its share and exited
    groups = plot_worker.share_out(list(plot_worker.PLOTS), 2)
    assert sorted(n for g in groups for n in g) == sorted(plot_worker.PLOTS) and len(groups) == 2


def test_cost_vs_score_labels_do_not_print_over_each_other(scylla_copy: Path) -> None:
    from matplotlib.text import Annotation

    from experiment_infra.reports.aggregate import aggregate_experiment
    from experiment_infra.reports.plots import cost_vs_score_figure

    fig = cost_vs_score_figure(aggregate_experiment(scylla_copy).result)
    renderer = fig.canvas.get_renderer()
    labels = [t for t in fig.axes[0].texts if isinstance(t, Annotation)]
    assert {t.get_text().split("/")[0] for t in labels} >= {"T0", "T1"}  # the fixture's tiers share a best point
    boxes = [t.get_window_extent(renderer) for t in labels]
    assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a.overlaps(b)]


# ------------------------------------------------------ hand-checked aggregates


def make_run(root: Path, tier: str, subtest: str, n: int, score: float, passed: bool, cost: float) -> None:
    """A complete run: the fixture's T0/00/run_01 files with run_result.json rewritten."""
    run_dir = ExperimentPaths(root).run(tier, subtest, n).dir
    shutil.copytree(FIXTURE / "T0" / "00" / "run_01", run_dir, ignore=shutil.ignore_patterns("report.*", "workspace"))
    for p in [run_dir, *run_dir.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)
    base = load_record(run_dir / "run_result.json", RunResult)
    write_record(run_dir / "run_result.json", base.model_copy(update={
        "run_number": n, "judge_score": score, "judge_passed": passed, "judge_grade": grade_for(score), "cost_usd": cost,
    }))


@pytest.fixture
def small_experiment(tmp_path: Path) -> Path:
    """T0: a tie (00 at 0.9 vs 01 at 0.88); T1: no passes; T2: mixed; missing runs in T0/00 and T1/01.

    runs_per_subtest is 3: T0/00 has run_01 complete, run_02 finished without result
    files (status ``results``) and no run_03; T1/01 has no run_03.
    """
    root = tmp_path / "exp"
    config = load_record(FIXTURE / "config" / "experiment.json", ExperimentConfig)
    write_record(ExperimentPaths(root).config,
                 config.model_copy(update={"tiers_to_run": ["T0", "T1", "T2"], "runs_per_subtest": 3}))
    make_run(root, "T0", "00", 1, 0.9, True, 0.2)
    make_run(root, "T0", "00", 2, 0.0, False, 9.0)
    (ExperimentPaths(root).run("T0", "00", 2).run_result).unlink()
    for n in (1, 2, 3):
        make_run(root, "T0", "01", n, 0.88, True, 0.5)
    make_run(root, "T1", "01", 1, 0.3, False, 0.1)
    make_run(root, "T1", "01", 2, 0.5, False, 0.3)
    for n, (score, passed, cost) in enumerate([(1.0, True, 0.1), (0.8, True, 0.2), (0.6, False, 0.3)], start=1):
        make_run(root, "T2", "01", n, score, passed, cost)
    return root


def test_hand_checked_aggregates(small_experiment: Path) -> None:
    written = rebuild_reports(small_experiment)
    result = load_record(small_experiment / "result.json", ExperimentResult)
    t0, t1, t2 = (result.tier_results[t] for t in ("T0", "T1", "T2"))

    # Missing runs are listed, not zeroed: T0/00 is run_01 alone (score 0.9, cost 0.2).
    s00 = t0.subtest_results["00"]
    assert [r.run_number for r in s00.runs] == [1]
    assert (s00.pass_rate, s00.mean_score, s00.total_cost, s00.expected_runs) == (1.0, 0.9, 0.2, 3)
    assert [(m.run_number, m.status) for m in s00.missing_runs] == [(2, "results"), (3, "missing")]
    assert [(m.tier, m.subtest, m.run_number) for m in result.missing_runs] == [
        ("T0", "00", 2), ("T0", "00", 3), ("T1", "01", 3)]
    sub_report = load_record(small_experiment / "T0" / "00" / "report.json", SubtestReport)
    assert (sub_report.summary.total_runs, sub_report.summary.passed) == (1, 1)
    assert [m.run_number for m in sub_report.missing_runs] == [2, 3]
    assert "| results |" in (small_experiment / "T0" / "00" / "report.md").read_text()

    # One run: no spread.
    assert (s00.std_dev_score, s00.consistency, s00.median_score) == (0.0, 1.0, 0.9)

    # Tie within 0.05: 00 (0.90) wins over 01 (0.88); noted, not hidden.
    assert (t0.best_subtest, t0.tiebreaker_needed, t0.tied_subtests) == ("00", True, ["01"])
    assert t0.cost_of_pass == 0.2
    best = load_record(small_experiment / "T0" / "best_subtest.json", BestSubtest)
    assert (best.winning_subtest, best.tiebreaker_needed) == ("00", True)
    assert best.margin == pytest.approx(0.02)
    assert [v.subtest_id for v in best.votes] == ["00", "01"]

    # No passes: cost-of-pass is infinite, written as "inf" (valid JSON), and never the frontier.
    s = t1.subtest_results["01"]
    assert (s.pass_rate, s.mean_score, s.mean_cost) == (0.0, pytest.approx(0.4), pytest.approx(0.2))
    assert s.std_dev_score == pytest.approx(math.sqrt(0.02))
    assert s.consistency == pytest.approx(1 - math.sqrt(0.02) / 0.4)
    raw = json.loads((small_experiment / "T1" / "result.json").read_text())
    assert raw["cost_of_pass"] == "inf" and float(raw["cost_of_pass"]) == math.inf
    assert json.loads((small_experiment / "tier_comparison.json").read_text())["T1"]["cost_of_pass"] == "inf"

    # Mixed: pass 2/3, mean 0.8, sample std 0.2, grades S/A/B, cost-of-pass 0.2 / (2/3).
    s = t2.subtest_results["01"]
    assert (s.pass_rate, s.mean_score, s.median_score) == (pytest.approx(2 / 3), pytest.approx(0.8), 0.8)
    assert (s.std_dev_score, s.consistency) == (pytest.approx(0.2), pytest.approx(0.75))
    assert (s.grade_distribution, s.modal_grade, s.min_grade, s.max_grade) == ({"S": 1, "A": 1, "B": 1}, "S", "B", "S")
    assert t2.cost_of_pass == pytest.approx(0.3)

    # Frontier: lowest cost-of-pass is T0 (0.2 < 0.3 < inf).
    assert (result.best_overall_tier, result.best_overall_subtest, result.frontier_cop) == ("T0", "00", 0.2)
    assert result.total_cost == pytest.approx(0.2 + 1.5 + 0.4 + 0.6)
    for p in written:
        if p.suffix == ".json":
            json.loads(p.read_text(), parse_constant=lambda c: pytest.fail(f"{p}: non-JSON constant {c}"))
        if p.suffix == ".md":
            assert broken_links(p, small_experiment) == []
        if p.suffix == ".png":
            assert_png(p.read_bytes())
    assert "∞ (no pass)" in (small_experiment / "report.md").read_text()


def test_nothing_passed_and_nothing_completed(small_experiment: Path) -> None:
    runs = [load_record(ExperimentPaths(small_experiment).run("T1", "01", n).run_result, RunResult) for n in (1, 2)]
    failing, _ = tier_result("T1", {"01": subtest_result("T1", "01", runs)})
    empty_sub = subtest_result("T9", "01", [], expected_runs=2)
    assert (empty_sub.pass_rate, empty_sub.mean_score, empty_sub.consistency) == (None, None, None)
    empty, selection = tier_result("T9", {"01": empty_sub})
    assert (empty.best_subtest, empty.cost_of_pass, selection) == (None, None, None)
    config = load_record(FIXTURE / "config" / "experiment.json", ExperimentConfig)
    result = experiment_result(config, {"T1": failing, "T9": empty})
    assert (result.best_overall_tier, result.best_overall_subtest, result.frontier_cop) == (None, None, "inf")
    assert json.loads(result.model_dump_json())["frontier_cop"] == "inf"


def test_not_a_report_directory_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="neither an agent-evaluation experiment"):
        rebuild_reports(tmp_path)
    bad = ExperimentPaths(tmp_path / "bad").config
    bad.parent.mkdir(parents=True)
    bad.write_text("{ not json")
    with pytest.raises(ReportError, match=r"experiment\.json: invalid: .*not valid JSON"):
        rebuild_reports(tmp_path / "bad")
    config = load_record(FIXTURE / "config" / "experiment.json", ExperimentConfig)
    write_record(bad, config.model_copy(update={"tiers_to_run": ["T0", "../outside"]}))
    with pytest.raises(ReportError, match="tiers_to_run: tier name '../outside' is not a safe directory name"):
        rebuild_reports(tmp_path / "bad")


# ------------------------------------------------------------- standard mode


def record(variant: str, exit_code: int | None, seconds: float | None, **extra: object) -> RunRecord:
    return RunRecord(variant_name=variant, command=[PYTHON, "entry.py"], cwd="/tmp", host="h", pid=1,
                     started_at="2026-01-01T00:00:00+00:00",
                     ended_at=None if exit_code is None else "2026-01-01T00:00:10+00:00",
                     exit_code=exit_code, duration_seconds=seconds, **extra)


@pytest.fixture
def suite_run(tmp_path: Path) -> Path:
    """Five cases: two completed with metrics, one failed (its metrics must not show), one partial, one missing."""
    paths = SuiteRunPaths(tmp_path / "results" / "demo" / "20260101_000000_abc1234")
    variants = ["fast", "slow", "broken", "killed", "never"]
    write_record(paths.manifest, SuiteManifest(
        experiment_name="demo", mode="standard", suite_file="suite_demo.py", entry_point="entry.py",
        config_class="entry:Config", created_at="2026-01-01T00:00:00+00:00",
        git=GitProvenance(sha="a" * 40, short="abc1234", branch="main"),
        cases=[ManifestCase(variant_name=v, config={"lr": 0.1}) for v in variants],
    ))
    for v in variants[:4]:
        write_record(paths.case(v).config, ManifestCase(variant_name=v, config={"lr": 0.1}))
    write_record(paths.case("fast").run_record, record("fast", 0, 12.0))
    paths.case("fast").metrics.write_text(json.dumps({"accuracy": 0.9, "loss": 0.3, "note": "text"}))
    write_record(paths.case("slow").run_record, record("slow", 0, None))  # duration from start/end: 10 s
    paths.case("slow").metrics.write_text(json.dumps({"accuracy": 0.7}))
    write_record(paths.case("broken").run_record, record("broken", 1, 3.0, reason="ValueError: boom"))
    paths.case("broken").metrics.write_text(json.dumps({"accuracy": 0.123456}))
    paths.case("broken").stderr.write_text("ValueError: boom\n")
    write_record(paths.case("killed").run_record, record("killed", None, None))
    return paths.dir


def test_standard_suite_report_table_and_plot(suite_run: Path) -> None:
    paths = SuiteRunPaths(suite_run)
    written = rebuild_reports(suite_run)
    assert written == sorted([paths.report_md, paths.metrics_plot])
    text = paths.report_md.read_text()
    assert "| Variant | Status | Duration | Attempt | accuracy | loss |" in text
    assert "| [fast](./fast/config.json) | completed | 12.0s | 1 | 0.9 | 0.3 |" in text
    assert "| [slow](./slow/config.json) | completed | 10.0s | 1 | 0.7 | — |" in text
    assert "| [broken](./broken/config.json) | failed | — | 1 | — | — |" in text
    assert "0.123456" not in text  # a failed case's metrics are not reported as results
    assert "| broken | failed | attempt 1: ValueError: boom | [stderr.log](./broken/stderr.log) |" in text
    assert "| never | missing |" in text and "| killed | partial |" in text
    assert "non-numeric metrics ignored: note" in text
    assert "completed 2 · failed 1 · partial 1 · missing 1" in text
    assert broken_links(paths.report_md, suite_run) == []
    assert_png(paths.metrics_plot.read_bytes())


def test_inspect_manifest_is_refused_with_one_line(suite_run: Path) -> None:
    paths = SuiteRunPaths(suite_run)
    manifest = load_record(paths.manifest, SuiteManifest)
    write_record(paths.manifest, manifest.model_copy(update={"mode": "inspect"}))
    with pytest.raises(ReportError, match="mode is 'inspect'"):
        build_reports(suite_run)


# ------------------------------------------------------------------ Prefect flow


def read_artifact(flow_run_id: object) -> object:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    assert len(found) == 1
    return found[0]


def test_report_flow_publishes_summary_and_plots(prefect_harness: None, scylla_copy: Path) -> None:
    from flows.report import artifact_key, report

    state = report(str(scylla_copy), return_state=True)
    assert state.is_completed()
    written = [Path(p) for p in state.result()]
    assert ExperimentPaths(scylla_copy).cost_vs_score_plot in written
    artifact = read_artifact(state.state_details.flow_run_id)
    assert artifact.type == "markdown" and artifact.key == artifact_key(scylla_copy) == "report-scylla-dryrun"
    body = artifact.data
    assert "**Best tier**: T5 (subtest 01), frontier cost-of-pass $0.0653" in body
    assert "| **T5** | 01 | 0.983 | 100% | $0.0653 | $0.0653 | 1/1 |" in body
    images = re.findall(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", body)
    assert len(images) == 4
    for data in images:
        assert_png(base64.b64decode(data))


def test_report_flow_dry_run_on_a_suite_run_writes_nothing(prefect_harness: None, suite_run: Path) -> None:
    from flows.report import report

    before = sorted(suite_run.rglob("*"))
    state = report(str(suite_run), dry_run=True, return_state=True)
    assert state.is_completed()
    assert [Path(p).name for p in state.result()] == ["metrics.png", "report.md"]
    assert sorted(suite_run.rglob("*")) == before
    body = read_artifact(state.state_details.flow_run_id).data
    assert "Dry run: nothing written" in body
    assert "| fast | completed | 12.0s | 1 | 0.9 | 0.3 |" in body  # relative links dropped: no files in the UI
    assert "completed 2 · failed 1" in body
    assert len(re.findall(r"data:image/png;base64,", body)) == 1


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for args in ([str(tmp_path / "absent")], [str(tmp_path)], []):
        proc = subprocess.run([PYTHON, str(REPO_ROOT / "flows" / "report.py"), *args],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr


def test_cli_rebuilds_against_a_running_server(prefect_harness: None, scylla_copy: Path) -> None:
    from prefect.settings import PREFECT_API_URL

    for p in report_files(scylla_copy):
        p.unlink(missing_ok=True)
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    proc = subprocess.run([PYTHON, str(REPO_ROOT / "flows" / "report.py"), str(scylla_copy)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=REPO_ROOT.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    listed = [Path(line) for line in proc.stdout.splitlines()]
    assert ExperimentPaths(scylla_copy).result in listed and all(p.is_file() for p in listed)
    assert load_record(ExperimentPaths(scylla_copy).result, ExperimentResult).best_overall_tier == "T5"
