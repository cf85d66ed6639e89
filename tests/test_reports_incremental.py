"""Incremental report rebuilds: a recovery that touched three runs rewrites only the report
files those runs feed (their run, subtest, tier and experiment files); a rebuild with
nothing changed rewrites nothing, so every ``generated_at`` stays what it was."""

from __future__ import annotations

import json
import os
from pathlib import Path

from recover_helpers import run_paths

from experiment_infra.layout import ExperimentPaths
from experiment_infra.reports import build_reports, rebuild_reports

TOUCHED = [("T1", "01", 1), ("T2", "01", 1), ("T3", "01", 1)]


def snapshot(root: Path) -> dict[Path, tuple[int, int, bytes]]:
    """Every report file of the experiment: (inode, mtime_ns, bytes). An atomic rewrite
    makes a new inode even when the bytes come out the same."""
    out = {}
    for p in build_reports(root).paths:
        st = os.stat(p)
        out[p] = (st.st_ino, st.st_mtime_ns, p.read_bytes())
    return out


def fed_by(root: Path, runs: list[tuple[str, str, int]]) -> set[Path]:
    """The report files these runs feed: their own, their subtests', tiers' and the experiment's."""
    exp = ExperimentPaths(root)
    files = {exp.result, exp.report_json, exp.report_md, exp.summary_md, exp.tier_comparison,
             exp.score_distribution_plot, exp.pass_rate_plot, exp.cost_vs_score_plot, exp.judge_agreement_plot}
    for tier, subtest, number in runs:
        t, s, r = exp.tier(tier), exp.subtest(tier, subtest), exp.run(tier, subtest, number)
        files |= {t.result, t.report_json, t.report_md, t.summary_md, t.best_subtest, s.report_json, s.report_md,
                  r.report_json, r.report_md}
    return files


def test_a_rebuild_with_nothing_changed_rewrites_nothing(scylla_copy: Path) -> None:
    first = rebuild_reports(scylla_copy)
    assert first  # the fixture's own reports differ from this project's
    before = snapshot(scylla_copy)
    stamp = json.loads(ExperimentPaths(scylla_copy).report_json.read_text())["generated_at"]
    assert rebuild_reports(scylla_copy, dry_run=True) == []
    assert rebuild_reports(scylla_copy) == []
    assert snapshot(scylla_copy) == before
    assert json.loads(ExperimentPaths(scylla_copy).report_json.read_text())["generated_at"] == stamp


def test_a_recovery_of_three_runs_rewrites_only_the_reports_they_feed(prefect_harness, scylla_copy: Path) -> None:
    from flows.recover import recover
    from flows.report import report

    for run in TOUCHED:  # three runs finished without their result files ...
        p = run_paths(scylla_copy, *run)
        for f in (p.agent_result, p.consensus, p.run_result):
            f.unlink()
    rebuild_reports(scylla_copy)  # ... when the reports were last built: they list them as missing
    before = snapshot(scylla_copy)

    state = recover(experiment_dir=str(scylla_copy), statuses=["results"], return_state=True)
    assert state.is_completed(), state.message
    after = snapshot(scylla_copy)
    rewritten = {p for p in after if before.get(p, (None, None, None))[:2] != after[p][:2]}
    feeds = fed_by(scylla_copy, TOUCHED)
    assert rewritten <= feeds, sorted(str(p.relative_to(scylla_copy)) for p in rewritten - feeds)
    exp = ExperimentPaths(scylla_copy)
    must = {exp.report_json, exp.result}
    for tier, subtest, number in TOUCHED:
        must |= {exp.run(tier, subtest, number).report_json, exp.subtest(tier, subtest).report_json,
                 exp.tier(tier).report_json}
    assert must <= rewritten
    untouched = [p for p in after if p not in feeds]
    assert len(untouched) == 4 * (2 + 2 + 5)  # the other four tiers' run, subtest and tier files
    assert all(before[p] == after[p] for p in untouched)
    assert json.loads(exp.report_json.read_text())["summary"]["best_tier"] == "T5"

    again = report(str(scylla_copy), return_state=True)
    assert again.is_completed() and again.result() == []  # nothing changed since: nothing written
    assert snapshot(scylla_copy) == after


def test_report_files_are_written_byte_for_byte_as_every_record_is() -> None:
    """The reports' fast JSON path writes what ``write_record`` writes, exponents and all."""
    from experiment_infra.records import RunReport, record_json
    from experiment_infra.reports.bundle import report_json

    for cost, duration in [(0.0653, 12.5), (1e-05, 3.0), (0.0, 1e17), (2.5e-9, float("inf")), (-0.0, 9999999999999998.0)]:
        record = RunReport(run_number=1, score=0.983, grade="A", passed=True, cost_usd=cost, duration_seconds=duration,
                           generated_at="2026-01-20T06:13:51.742325+00:00")
        assert report_json(record) == record_json(record).encode("utf-8"), (cost, duration)


def test_tiers_rebuilt_one_by_one_then_the_rest_equal_a_whole_rebuild(scylla_copy: Path, tmp_path: Path) -> None:
    """A recovery rebuilds each tier it touched in a batch of its own (``rebuild_tier``) and
    then the rest (``rebuild(done=...)``): the files come out as one whole rebuild's."""
    from conftest import copy_tree_writable

    from experiment_infra.reports.rebuild import rebuild, rebuild_tier

    whole = copy_tree_writable(scylla_copy, tmp_path / "whole")
    batched = copy_tree_writable(scylla_copy, tmp_path / "batched")
    for root in (whole, batched):
        for p in build_reports(root).paths:
            p.unlink(missing_ok=True)
    everything = rebuild(whole)
    tiers = [rebuild_tier(batched, tier) for tier in ("T1", "T3")]
    assert all(t.written and len(t.written) == t.total for t in tiers)  # every file of theirs was missing
    rest = rebuild(batched, done=tiers)
    assert rest.total == everything.total and len(rest.written) == len(everything.written)

    def content(root: Path) -> dict[Path, object]:
        out: dict[Path, object] = {}
        for p in build_reports(root).paths:
            rel = p.relative_to(root)
            if p.suffix == ".json":
                data = json.loads(p.read_text())
                if isinstance(data, dict):
                    data.pop("generated_at", None)
                out[rel] = data
            elif p.suffix == ".md":
                out[rel] = [line for line in p.read_text().splitlines() if not line.startswith("**Generated**")]
            else:
                out[rel] = p.read_bytes()
        return out

    assert content(batched) == content(whole)
    assert rest.artifact_markdown == everything.artifact_markdown.replace(str(whole), str(batched))
    assert rebuild_reports(batched) == []  # and nothing is left to write
