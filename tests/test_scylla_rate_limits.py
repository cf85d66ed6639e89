"""Rate limits are a reason of their own (issue 29): a run or judge slot that hit one reads
``failed`` with a reason starting "rate limited", and ``--status rate_limited`` selects
them. The signals are ProjectScylla's (scripts/reset_rate_limited_runs.py and
scylla/e2e/rate_limit.py at b1b5ea8d), with its tests' messages."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from recover_helpers import edit_json, recover_cli, run_paths
from test_scylla_failed_slots import fail_slot

from experiment_infra.status.limits import rate_limit_in, retry_after_seconds


def survey(exp: Path, *args: str) -> dict:
    done = recover_cli(str(exp), "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def failed_agent(exp: Path, tier: str, subtest: str, *, stdout: str, cost: float, tokens: int, stderr: str = "") -> None:
    p = run_paths(exp, tier, subtest, 1)
    p.command_log.write_text(p.command_log.read_text().replace('"exit_code": 0', '"exit_code": 1'))
    edit_json(p.agent_result, exit_code=1, stdout=stdout, stderr=stderr, cost_usd=cost, api_calls=1,
              token_stats={"input_tokens": tokens, "output_tokens": tokens, "cache_creation_tokens": 0, "cache_read_tokens": 0})


def test_agent_and_judge_limits_read_rate_limited_and_are_selected(scylla_copy: Path) -> None:
    # api_error_status 429 in the agent's JSON (reset_rate_limited_runs.is_rate_limited_agent)
    failed_agent(scylla_copy, "T1", "01", cost=0.01, tokens=10, stdout=json.dumps(
        {"type": "result", "is_error": True, "api_error_status": 429, "result": "API Error: 429 rate_limit_error"}))
    # exit 1, no cost, no tokens: its crash signature of a limit
    failed_agent(scylla_copy, "T2", "01", stdout="", cost=0.0, tokens=0)
    # an ordinary failure: not a limit
    failed_agent(scylla_copy, "T3", "01", stdout="Traceback: boom", cost=0.2, tokens=500)
    # every judge hit "You've hit your limit" (test_all_judges_rate_limited_raises_rate_limit_error)
    for slot in (1, 2, 3):
        fail_slot(scylla_copy, slot,
                  "Claude CLI failed (exit 1): You've hit your limit \u00b7 resets Apr 3, 6am (America/Los_Angeles)", tier="T4")

    doc = survey(scylla_copy)
    runs = {r["tier"]: r for r in doc["runs"]}
    assert runs["T1"]["status"] == "failed" and runs["T1"]["reason"].startswith("rate limited: agent: API Error: 429")
    assert runs["T2"]["status"] == "failed" and runs["T2"]["reason"].startswith("rate limited: agent exited with code 1")
    assert runs["T3"]["status"] == "failed" and not runs["T3"]["reason"].startswith("rate limited")
    assert all(j["reason"].startswith("rate limited: judge:") for j in runs["T4"]["judges"])
    assert doc["counts"]["runs"]["failed"] == 3  # still failed: rate_limited is a reason, not a status

    limited = survey(scylla_copy, "--status", "rate_limited")
    assert [r["tier"] for r in limited["runs"]] == ["T1", "T2", "T4"]
    t4 = next(r for r in limited["runs"] if r["tier"] == "T4")
    assert t4["action"].startswith("rerun judges 01, 02, 03")


def test_what_counts_as_a_limit_and_how_long_it_asks_to_wait() -> None:
    assert rate_limit_in("HTTP 429 Too Many Requests") and rate_limit_in("Weekly usage limit reached")
    assert not rate_limit_in("Judge response does not contain valid JSON")
    assert retry_after_seconds("Retry-After: 30") == pytest.approx(33.0)
    noon_utc = datetime(2026, 4, 2, 12, 0, tzinfo=timezone.utc)  # 05:00 in Los Angeles
    assert retry_after_seconds("resets 6am (America/Los_Angeles)", now=noon_utc) == pytest.approx(3600 * 1.1)
    assert retry_after_seconds("no hint here") is None


def test_our_judge_that_hits_a_limit_reads_rate_limited(tmp_path: Path, git_repo: Path) -> None:
    from test_agent_eval import run_all, start

    from experiment_infra.status.rules import JudgeStatus, classify_judge

    exp, spec = start(tmp_path, git_repo, judge_models=["j-1.0", "fake-limit"])
    assert run_all(exp, spec) == [JudgeStatus.COMPLETE, JudgeStatus.FAILED]
    slot = classify_judge(exp.run("T0", "00", 1).judge_slot(2), "fake-limit")
    assert slot.reason.startswith("rate limited: judge: You've hit your limit")


def test_a_recovery_waits_for_the_limit_runs_one_at_a_time_and_holds_a_far_one(
    prefect_harness, scylla_copy: Path, monkeypatch, capsys
) -> None:
    import shlex

    from agent_eval_helpers import FAKE_JUDGE

    from experiment_cli.recover import main

    monkeypatch.setenv("EXPERIMENT_JUDGE_COMMAND", shlex.join(FAKE_JUDGE))
    near = ["T1", "T2"]
    for tier in near:
        for slot in (1, 2, 3):
            fail_slot(scylla_copy, slot, "Claude CLI failed (exit 1): 429 Too Many Requests. Retry-After: 1", tier=tier)
    failed_at = max(run_paths(scylla_copy, t, "01", 1).judge_slot(s).timing.stat().st_mtime for t in near for s in (1, 2, 3))
    far = "Claude CLI failed (exit 1): You've hit your limit \u00b7 resets 6am (America/Los_Angeles)"
    if 4 <= datetime.now(ZoneInfo("America/Los_Angeles")).hour < 6:
        far = far.replace("6am", "11pm")  # at least 15 minutes off, whenever the test runs
    for slot in (1, 2, 3):
        fail_slot(scylla_copy, slot, far, tier="T4")

    assert main([str(scylla_copy)]) == 1  # T4 is left for a later recovery
    out = capsys.readouterr().out
    assert "still needing work: 1" in out and "T4" in out
    spans = []
    for tier in near:
        p = run_paths(scylla_copy, tier, "01", 1)
        logs = [json.loads(p.judge_slot(s).command_log.read_text()) for s in (1, 2, 3)]
        assert all(json.loads(p.judge_slot(s).judgment.read_text())["score"] >= 0 for s in (1, 2, 3))
        starts = [datetime.fromisoformat(l["started_at"]).timestamp() for l in logs]
        ends = [datetime.fromisoformat(l["ended_at"]).timestamp() for l in logs]
        assert min(starts) >= failed_at + 1.0  # not before the Retry-After its failure gave
        spans.append((min(starts), max(ends)))
    (a_start, a_end), (b_start, b_end) = sorted(spans)
    assert a_end <= b_start  # one run after the other, never a burst into the limit
    t4 = run_paths(scylla_copy, "T4", "01", 1)
    assert json.loads(t4.judge_slot(1).timing.read_text())["failed"] is True  # held, untouched
