"""Recovery on the variants of ProjectScylla's layout (issue 15): what older and current
versions write must read as what it is, never as damage that plans a paid rerun."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
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

    from experiment_cli.recover import main

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


PATH_KEYS = {"workspace_path", "logs_path", "command_log_path"}


def test_consensus_from_fewer_valid_judges_says_so_and_keeps_its_criteria(prefect_harness, scylla_copy: Path, capsys) -> None:
    from conftest import FIXTURE

    from experiment_cli.recover import main

    p = run_paths(scylla_copy)
    edit_json(p.judge_slot(3).judgment, is_valid=False)  # a heuristic fallback: the slot failed
    p.consensus.unlink()
    p.run_result.unlink()
    untouched = run_paths(scylla_copy, "T2", "01", 1)
    untouched.run_result.unlink()  # a fully judged run of the fixture's (older) writer
    main([str(scylla_copy), "--agents-only"])  # regenerate; no judge rerun
    capsys.readouterr()

    judgments = [json.loads(p.judge_slot(n).judgment.read_text()) for n in (1, 2, 3)]
    consensus = json.loads(p.consensus.read_text())
    assert consensus["is_valid"] is False  # 2 of the panel's 3 judges
    assert consensus["score"] == (judgments[0]["score"] + judgments[1]["score"]) / 2
    assert consensus["criteria_scores"] == judgments[0]["criteria_scores"] and consensus["criteria_scores"]
    result = json.loads(p.run_result.read_text())
    assert result["criteria_scores"] == judgments[0]["criteria_scores"]
    assert [(j["judge_number"], j["is_valid"]) for j in result["judges"]] == [(1, True), (2, True), (3, False)]
    assert [j["criteria_scores"] for j in result["judges"][:2]] == [judgments[0]["criteria_scores"], judgments[1]["criteria_scores"]]
    assert result["judges"][2]["score"] == 0.0 and "fallback" in result["judges"][2]["reasoning"]

    # The run whose writer predates those fields regenerates exactly as it was written.
    before = json.loads(run_paths(FIXTURE, "T2", "01", 1).run_result.read_text())
    after = json.loads(untouched.run_result.read_text())
    assert {k: v for k, v in after.items() if k not in PATH_KEYS} == {k: v for k, v in before.items() if k not in PATH_KEYS}


def test_tier_that_never_started_is_missing_work(prefect_harness, scylla_copy: Path, capsys) -> None:
    import shutil

    from experiment_cli.recover import main

    shutil.rmtree(scylla_copy / "T5")  # in tiers_to_run; its subtests never got a directory
    checkpoint = scylla_copy / "checkpoint.json"  # and no checkpoint names them (see test_scylla_checkpoint_subtests)
    data = json.loads(checkpoint.read_text())
    del data["completed_runs"]["T5"]
    checkpoint.write_text(json.dumps(data))
    doc = json_survey(scylla_copy)
    assert [m["tier"] for m in doc["missing_tiers"]] == ["T5"] and doc["counts"]["missing_tiers"] == 1
    dry = recover_cli(str(scylla_copy), "--dry-run")
    assert dry.returncode == 0  # a dry run that ran
    assert "nothing to do" not in dry.stdout and "missing: tier T5 is in tiers_to_run" in dry.stdout
    assert "T5" not in json.dumps(json_survey(scylla_copy, "--tier", "T0")["missing_tiers"])
    # A real recovery cannot name those runs, so it cannot do them: it says so and exits 1.
    assert main([str(scylla_copy)]) == 1
    out = capsys.readouterr().out
    assert "nothing to do" not in out and "still needing work: 1" in out and "T5  missing  tier T5" in out
    assert main([str(scylla_copy), "--tier", "T0"]) == 0


def test_a_regenerated_panel_timing_is_when_the_last_judge_ended(scylla_copy: Path) -> None:
    """judge/timing.json says when judging ended (the reports' end of the run), never when
    a recovery rebuilt it."""
    from conftest import FIXTURE

    from experiment_infra.records import JudgeTiming, load_record
    from experiment_infra.recovery.regenerate import regenerate_run

    p = run_paths(scylla_copy)
    p.judge_timing.unlink()
    p.run_result.unlink()
    regenerate_run(p, json.loads((scylla_copy / "config" / "experiment.json").read_text())["judge_models"])
    rebuilt, original = load_record(p.judge_timing, JudgeTiming), load_record(run_paths(FIXTURE).judge_timing, JudgeTiming)
    slots = [load_record(p.judge_slot(i).timing, JudgeTiming) for i in (1, 2, 3)]
    assert rebuilt.judge_duration_seconds == pytest.approx(sum(t.judge_duration_seconds for t in slots))
    assert rebuilt.measured_at == max(t.measured_at for t in slots)  # ProjectScylla's own is written a moment after it
    assert abs((rebuilt.measured - original.measured).total_seconds()) < 1
