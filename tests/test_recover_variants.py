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
