"""Subtests that were never created are missing work when ProjectScylla's checkpoint.json
names them (issue 29; ProjectScylla's test_scan_empty_experiment expects 3 missing runs of
a subtest whose directory does not exist)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from recover_helpers import recover_cli

from experiment_infra.agent_eval.experiment import load_spec
from experiment_infra.layout import ExperimentPaths


def survey(exp: Path) -> dict:
    done = recover_cli(str(exp), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_subtest_only_the_checkpoint_names_is_missing_work(scylla_copy: Path) -> None:
    config = scylla_copy / "config" / "experiment.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "runs_per_subtest": 3}))
    shutil.rmtree(scylla_copy / "T0")  # killed before its directory existed
    checkpoint = scylla_copy / "checkpoint.json"
    data = json.loads(checkpoint.read_text())
    data["run_states"] = {"T1": {"02": {"1": "pending"}}}  # v3.x: a subtest started, no directory yet
    checkpoint.write_text(json.dumps(data, indent=2))

    doc = survey(scylla_copy)
    assert doc["missing_tiers"] == []  # T0's subtest is known: its runs can be named and planned
    t0 = [r for r in doc["runs"] if r["tier"] == "T0"]
    assert [(r["subtest"], r["run"], r["status"]) for r in t0] == [("00", 1, "missing"), ("00", 2, "missing"), ("00", 3, "missing")]
    assert all(r["action"].startswith("rerun agent") for r in t0)
    t1_02 = [r for r in doc["runs"] if (r["tier"], r["subtest"]) == ("T1", "02")]
    assert [r["status"] for r in t1_02] == ["missing"] * 3
    # A recovery can run them: the experiment's spec has those conditions.
    spec = load_spec(ExperimentPaths(scylla_copy), agent_command=["true"], judge_command=["true"])
    assert {("T0", "00"), ("T1", "02")} <= {c.key for c in spec.conditions}


def test_an_unusable_checkpoint_is_said_and_changes_nothing(scylla_copy: Path) -> None:
    (scylla_copy / "checkpoint.json").write_text("{not json")
    doc = survey(scylla_copy)
    assert doc["expected"] == 7 and any("checkpoint.json is unusable" in n for n in doc["notes"])
