"""Expected runs: recovery and the reports name the same runs (one rule, ``experiment_infra.status.expected``).

A deleted subtest is still expected (this project's manifest records it), so the dry run
plans its runs and the reports list them as missing; a stray run directory beyond
``runs_per_subtest`` is named by both and counted by neither.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from recover_helpers import edit_json, recover_cli

from experiment_infra.layout import ExperimentPaths
from experiment_infra.records import (
    AgentEvalManifest,
    ConditionRecord,
    ExperimentResult,
    GitProvenance,
    SubtestReport,
    load_record,
    write_record,
)
from experiment_infra.reports import rebuild_reports


def _record_conditions(exp_dir: Path) -> list[tuple[str, str]]:
    """Write this project's manifest naming every condition on disk (as a run of ours would)."""
    exp = ExperimentPaths(exp_dir)
    config = json.loads(exp.config.read_text())
    conditions = [(t, s) for t in config["tiers_to_run"] for s in exp.subtests_on_disk(t)]
    manifest = AgentEvalManifest(
        experiment_name="x", experiment_id=config["experiment_id"], created_at="t",
        git=GitProvenance(sha="0" * 40, short="0000000"), task_repo="r", task_commit="c",
        conditions=[ConditionRecord(tier=t, subtest=s, model="m") for t, s in conditions],
        runs_per_subtest=config["runs_per_subtest"], judge_models=config["judge_models"],
        agent_command=["a"], judge_command=["j"], agent_timeout_seconds=1, judge_timeout_seconds=1,
    )
    write_record(exp.manifest, manifest)
    return conditions


def test_a_deleted_subtest_is_missing_to_recovery_and_to_the_reports(scylla_copy: Path) -> None:
    exp = ExperimentPaths(scylla_copy)
    edit_json(exp.config, runs_per_subtest=2)
    conditions = _record_conditions(scylla_copy)
    shutil.rmtree(exp.subtest("T1", "01").dir)
    stray_tier, stray_sub = "T2", exp.subtests_on_disk("T2")[0]
    shutil.copytree(exp.run(stray_tier, stray_sub, 1).dir, exp.run(stray_tier, stray_sub, 3).dir)  # a complete run_03

    dry = recover_cli(str(scylla_copy), "--dry-run", "--json")
    doc = json.loads(dry.stdout)
    planned = {(r["tier"], r["subtest"], r["run"]): r["status"] for r in doc["runs"] if r["status"] != "completed"}

    rebuild_reports(scylla_copy)
    result = load_record(exp.result, ExperimentResult)
    reported = {(m.tier, m.subtest, m.run_number): m.status for m in result.missing_runs}

    # The same runs, with the same statuses: both halves of the deleted subtest, every run_02.
    assert reported == planned
    assert reported[("T1", "01", 1)] == reported[("T1", "01", 2)] == "missing"
    assert set(reported) == {("T1", "01", 1)} | {(t, s, 2) for t, s in conditions}
    assert doc["expected"] == 2 * len(conditions)
    sub_report = load_record(exp.subtest("T1", "01").report_json, SubtestReport)
    assert [m.run_number for m in sub_report.missing_runs] == [1, 2]

    # The stray run_03: not planned, not aggregated, but named by both.
    stray = f"{stray_tier}/{stray_sub}/run_03"
    assert (stray_tier, stray_sub, 3) not in {(r["tier"], r["subtest"], r["run"]) for r in doc["runs"]}
    assert any(stray in n and "runs_per_subtest" in n for n in doc["notes"])
    subtest = result.tier_results[stray_tier].subtest_results[stray_sub]
    assert [r.run_number for r in subtest.runs] == [1] and subtest.expected_runs == 2
    assert load_record(exp.subtest(stray_tier, stray_sub).report_json, SubtestReport).summary.total_runs == 1
    for md in (exp.report_md, exp.subtest(stray_tier, stray_sub).report_md):
        text = md.read_text()
        assert "Runs Not Expected" in text and stray in text
