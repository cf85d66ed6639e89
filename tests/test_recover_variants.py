"""Recovery on the variants of ProjectScylla's layout (issue 15): what older and current
versions write must read as what it is, never as damage that plans a paid rerun."""

from __future__ import annotations

import json
from pathlib import Path

from recover_helpers import edit_json, recover_cli, run_paths

LABEL = "T1/01/run_01"


def json_survey(exp_dir: Path, *args: str) -> dict:
    done = recover_cli(str(exp_dir), "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def run_entry(doc: dict, label: str = LABEL) -> dict:
    return next(r for r in doc["runs"] if f"{r['tier']}/{r['subtest']}/run_{r['run']:02d}" == label)


def test_judgment_with_null_criteria_scores_is_a_valid_judgment(scylla_copy: Path) -> None:
    """ProjectScylla writes "criteria_scores": null when a judge returned no criteria."""
    p = run_paths(scylla_copy)
    edit_json(p.judge_slot(2).judgment, criteria_scores=None)
    run = run_entry(json_survey(scylla_copy))
    assert [j["status"] for j in run["judges"]] == ["complete", "complete", "complete"]
    assert run["status"] == "completed" and run["needs_work"] is False
    # With its run_result.json gone, the run is regenerated from all three judges: no judge rerun.
    p.run_result.unlink()
    run = run_entry(json_survey(scylla_copy))
    assert run["status"] == "results" and run["action"] == "regenerate result files"


def without_timing_files(p) -> None:
    """A run as ProjectScylla wrote it before 2026-01-10: no agent, judge or slot timing.json."""
    p.agent_timing.unlink()
    p.judge_timing.unlink()
    for slot in (1, 2, 3):
        p.judge_slot(slot).timing.unlink()


def test_run_without_timing_files_is_complete_and_never_rerun(scylla_copy: Path) -> None:
    without_timing_files(run_paths(scylla_copy))
    doc = json_survey(scylla_copy)
    run = run_entry(doc)
    assert run["status"] == "completed" and run["needs_work"] is False and run["action"] == "none"
    assert doc["counts"]["actions"]["agent_reruns"] == 0
    text = recover_cli(str(scylla_copy), "--dry-run")
    assert text.returncode == 0 and "nothing to do" in text.stdout


def test_run_without_timing_files_is_regenerated_from_its_command_log(prefect_harness, scylla_copy: Path, capsys) -> None:
    from conftest import FIXTURE

    from experiment_infra.recovery_cli import main

    p = run_paths(scylla_copy)
    without_timing_files(p)
    p.run_result.unlink()
    p.agent_result.unlink()
    run = run_entry(json_survey(scylla_copy))
    assert run["status"] == "results" and run["action"] == "regenerate result files"
    assert main([str(scylla_copy), "--status", "results"]) == 0
    assert "1 of 1 planned run(s) done" in capsys.readouterr().out
    original = json.loads(run_paths(FIXTURE).run_result.read_text())
    regenerated = json.loads(p.run_result.read_text())
    # The agent's duration comes from command_log.json; no judge timing exists, so none is invented.
    assert regenerated["agent_duration_seconds"] == original["agent_duration_seconds"]
    assert regenerated["judge_score"] == original["judge_score"] and regenerated["cost_usd"] == original["cost_usd"]
    assert not p.agent_timing.exists() and not p.judge_timing.exists()
    assert run_entry(json_survey(scylla_copy))["status"] == "completed"
