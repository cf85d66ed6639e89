"""A judge slot ProjectScylla marked failed (timing.json ``"failed": true``, error.log,
stdout/stderr logs, no judgment.json) is ``failed``, and a limit is named as such (issue 29).

The files are those ProjectScylla's ``_save_judge_failure`` writes (stage_finalization.py at
b1b5ea8d); the errors are those of its tests (test_judge_runner.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from recover_helpers import recover_cli, run_paths


def fail_slot(exp: Path, slot: int, error: str, tier: str = "T1") -> None:
    d = run_paths(exp, tier, "01", 1).judge_slot(slot).dir
    shutil.rmtree(d)
    d.mkdir()
    (d / "timing.json").write_text(json.dumps(
        {"judge_duration_seconds": 0.0, "measured_at": "2026-04-02T10:00:00+00:00", "failed": True, "error": error},
        indent=2))
    (d / "error.log").write_text(f"Judge failed: {error}\n")
    (d / "stdout.log").write_text("I think the work looks fine overall.")
    (d / "stderr.log").write_text("")


def survey(exp: Path, *args: str) -> dict:
    done = recover_cli(str(exp), "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_failed_slot_is_failed_and_selected_by_status_failed(scylla_copy: Path) -> None:
    fail_slot(scylla_copy, 2, "Judge response does not contain valid JSON")
    doc = survey(scylla_copy, "--status", "failed")
    [run] = doc["runs"]
    assert (run["tier"], run["subtest"], run["run"]) == ("T1", "01", 1)
    judge = run["judges"][1]
    assert judge["status"] == "failed"
    assert judge["reason"] == "judge failed: Judge response does not contain valid JSON"
    assert run["action"].startswith("rerun judge 02")
    assert doc["counts"]["judges"]["partial"] == 0


def test_a_slot_that_failed_on_a_limit_reads_rate_limited(scylla_copy: Path) -> None:
    error = "Claude CLI failed (exit 1): You've hit your limit \u00b7 resets Apr 3, 6am (America/Los_Angeles)"
    fail_slot(scylla_copy, 3, error)
    run = survey(scylla_copy)["runs"][1]
    judge = run["judges"][2]
    assert judge["status"] == "failed" and judge["reason"].startswith("rate limited: judge: ")
    assert "hit your limit" in judge["reason"]
