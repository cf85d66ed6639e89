"""Recovery classification (Prefect-free): a copy of the ProjectScylla fixture damaged one
way per test, classified through the same survey the dry run prints."""

from __future__ import annotations

import gc
import json
import os
import shutil
from pathlib import Path
from typing import Callable

import pytest
from recover_helpers import DELETE, OTHER, edit_json, recover_cli, run_paths, tree_hash, truncate

from experiment_infra.layout import AgentRunPaths
from experiment_infra.recovery.survey import RecoveryInputError, Selection, survey
from experiment_infra.records import JudgeCommand, write_record
from experiment_infra.status.rules import JudgeStatus, RunStatus

LABEL = "T1/01/run_01"


def by_label(exp_dir: Path, **filters: object):
    s = survey(exp_dir, Selection.build(**filters))  # type: ignore[arg-type]
    return s, {r.label: r for r in s.runs}


def clear_dir(path: Path) -> None:
    for child in path.iterdir():
        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()


def fallback(p: AgentRunPaths) -> None:
    edit_json(p.judge_slot(2).judgment, is_valid=False)


def judge_exit_1(p: AgentRunPaths) -> None:
    write_record(
        p.judge_slot(2).command_log,
        JudgeCommand(model="m", command=["judge"], cwd="/", started_at="t", ended_at="t", exit_code=1, reason="rate limited"),
    )


# (damage, run status, reason fragment, judge_02 status)
AGENT_CASES: dict[str, tuple[Callable[[AgentRunPaths], None], RunStatus, str, JudgeStatus]] = {
    "run dir deleted": (lambda p: shutil.rmtree(p.dir), RunStatus.MISSING, "does not exist", JudgeStatus.AGENT_FAILED),
    "agent dir deleted": (lambda p: shutil.rmtree(p.agent_dir), RunStatus.MISSING, "no agent files", JudgeStatus.AGENT_FAILED),
    "agent dir empty": (lambda p: clear_dir(p.agent_dir), RunStatus.MISSING, "no agent files", JudgeStatus.AGENT_FAILED),
    "agent result deleted": (lambda p: p.agent_result.unlink(), RunStatus.RESULTS, "agent/result.json missing", JudgeStatus.COMPLETE),
    "run_result deleted": (lambda p: p.run_result.unlink(), RunStatus.RESULTS, "run_result.json missing", JudgeStatus.COMPLETE),
    "consensus deleted": (lambda p: p.consensus.unlink(), RunStatus.RESULTS, "judge/result.json missing", JudgeStatus.COMPLETE),
    "run_result corrupt": (lambda p: p.run_result.write_text("{not json"), RunStatus.RESULTS, "not valid JSON", JudgeStatus.COMPLETE),
    "run_result truncated": (lambda p: truncate(p.run_result), RunStatus.RESULTS, "not valid JSON", JudgeStatus.COMPLETE),
    "run_result empty": (lambda p: p.run_result.write_text(""), RunStatus.RESULTS, "is empty", JudgeStatus.COMPLETE),
    "agent result lacks a field": (
        lambda p: edit_json(p.agent_result, exit_code=DELETE), RunStatus.RESULTS, "field exit_code", JudgeStatus.COMPLETE,
    ),
    "agent result not UTF-8": (
        lambda p: p.agent_result.write_bytes(b"\xff\xfe{}"), RunStatus.RESULTS, "not UTF-8", JudgeStatus.COMPLETE,
    ),
    "non-zero exit code": (
        lambda p: p.command_log.write_text(p.command_log.read_text().replace('"exit_code": 0', '"exit_code": 1')),
        RunStatus.FAILED, "exited with code 1", JudgeStatus.AGENT_FAILED,
    ),
    "empty output with stderr": (
        lambda p: p.output.write_text(""), RunStatus.FAILED, "stderr.log present", JudgeStatus.AGENT_FAILED,
    ),
    "blank output with stderr": (
        lambda p: p.output.write_text("  \n\n"), RunStatus.FAILED, "stderr.log present", JudgeStatus.AGENT_FAILED,
    ),
    "no output, no stderr": (
        lambda p: (p.output.unlink(), p.agent_stderr.unlink()), RunStatus.PARTIAL, "output.txt is missing", JudgeStatus.AGENT_FAILED,
    ),
    # The agent's duration is also in run_result.json and command_log.json (issue 15: a run
    # whose result files are valid is never rerun); only with neither is the run unfinished.
    "timing corrupt": (lambda p: truncate(p.agent_timing), RunStatus.COMPLETED, "result files are valid", JudgeStatus.COMPLETE),
    "timing empty": (lambda p: p.agent_timing.write_text(""), RunStatus.COMPLETED, "result files are valid", JudgeStatus.COMPLETE),
    "timing, run_result and durations gone": (
        lambda p: (p.agent_timing.unlink(), p.run_result.unlink(),
                   p.command_log.write_text(p.command_log.read_text().replace('"duration_seconds"', '"was_duration"'))),
        RunStatus.PARTIAL, "timing.json missing", JudgeStatus.AGENT_FAILED,
    ),
    "command log truncated": (
        lambda p: truncate(p.command_log), RunStatus.PARTIAL, "command_log.json invalid", JudgeStatus.AGENT_FAILED,
    ),
    "command log without commands": (
        lambda p: edit_json(p.command_log, commands=[]), RunStatus.PARTIAL, "command_log.json invalid", JudgeStatus.AGENT_FAILED,
    ),
    "run dir is a symlink": (
        lambda p: (shutil.rmtree(p.dir), p.dir.symlink_to(run_paths(p.dir.parents[2], *OTHER).dir)),
        RunStatus.MISSING, "symlink", JudgeStatus.AGENT_FAILED,
    ),
}


@pytest.mark.parametrize("case", sorted(AGENT_CASES))
def test_run_status(scylla_copy: Path, case: str) -> None:
    damage, status, reason, judge = AGENT_CASES[case]
    damage(run_paths(scylla_copy))
    s, runs = by_label(scylla_copy)
    run = runs[LABEL]
    assert (run.status, run.judges[1].status) == (status, judge)
    assert reason in run.reason
    # Every other run is untouched and still complete.
    assert all(r.status is RunStatus.COMPLETED for label, r in runs.items() if label != LABEL)
    assert len(s.runs) == s.expected == 7


JUDGE_CASES: dict[str, tuple[Callable[[AgentRunPaths], None], JudgeStatus, str]] = {
    "slot deleted": (lambda p: shutil.rmtree(p.judge_slot(2).dir), JudgeStatus.MISSING, "no judge directory"),
    "slot empty": (lambda p: clear_dir(p.judge_slot(2).dir), JudgeStatus.MISSING, "empty"),
    "judgment deleted": (lambda p: p.judge_slot(2).judgment.unlink(), JudgeStatus.PARTIAL, "no judgment.json"),
    "judgment corrupt": (lambda p: p.judge_slot(2).judgment.write_text("{'score': 1}"), JudgeStatus.FAILED, "not valid JSON"),
    "judgment truncated": (lambda p: truncate(p.judge_slot(2).judgment), JudgeStatus.FAILED, "not valid JSON"),
    "judgment empty": (lambda p: p.judge_slot(2).judgment.write_text(""), JudgeStatus.FAILED, "empty"),
    "fallback judgment": (fallback, JudgeStatus.FAILED, "fallback"),
    "score out of range": (lambda p: edit_json(p.judge_slot(2).judgment, score=1.5), JudgeStatus.FAILED, "score"),
    "score not a number": (lambda p: edit_json(p.judge_slot(2).judgment, score="0.9"), JudgeStatus.FAILED, "score"),
    "passed not a boolean": (lambda p: edit_json(p.judge_slot(2).judgment, passed="yes"), JudgeStatus.FAILED, "passed"),
    "judge exited non-zero": (judge_exit_1, JudgeStatus.FAILED, "rate limited"),
    "judgment is a symlink": (
        lambda p: (p.judge_slot(2).judgment.unlink(), p.judge_slot(2).judgment.symlink_to(p.judge_slot(1).judgment)),
        JudgeStatus.FAILED, "symlink",
    ),
}


@pytest.mark.parametrize("case", sorted(JUDGE_CASES))
def test_judge_status(scylla_copy: Path, case: str) -> None:
    damage, status, reason = JUDGE_CASES[case]
    damage(run_paths(scylla_copy))
    _, runs = by_label(scylla_copy)
    run = runs[LABEL]
    assert run.status is RunStatus.COMPLETED  # the judge rules never change the agent side
    assert [j.status for j in run.judges] == [JudgeStatus.COMPLETE, status, JudgeStatus.COMPLETE]
    assert reason in run.judges[1].reason
    assert run.judge_slots == (2,) and not run.rerun_agent and not run.regenerate
    assert "judge 02" in run.action and "rebuild" in run.action


def test_pristine_fixture_needs_nothing(scylla_copy: Path) -> None:
    s, runs = by_label(scylla_copy)
    assert s.run_counts() == {"completed": 7, "results": 0, "failed": 0, "partial": 0, "missing": 0}
    assert s.judge_counts()["complete"] == 21 and not s.planned
    assert [j.model for j in runs[LABEL].judges] == ["claude-opus-4-5-20251101", "claude-sonnet-4-5-20250929", "claude-haiku-4-5"]


# ---------------------------------------------------------------- actions


def test_actions_per_status_and_switches(scylla_copy: Path) -> None:
    shutil.rmtree(run_paths(scylla_copy, "T0", "00", 1).dir)  # missing
    run_paths(scylla_copy, "T1", "01", 1).run_result.unlink()  # results
    fallback(run_paths(scylla_copy, "T2", "01", 1))  # judge failed
    _, runs = by_label(scylla_copy)
    assert runs["T0/00/run_01"].rerun_agent and runs["T0/00/run_01"].judge_slots == (1, 2, 3)
    assert runs["T1/01/run_01"].regenerate and not runs["T1/01/run_01"].rerun_agent
    assert runs["T2/01/run_01"].judge_slots == (2,)

    _, agents = by_label(scylla_copy, agents_only=True)
    assert agents["T0/00/run_01"].rerun_agent and agents["T0/00/run_01"].judge_slots == ()
    assert agents["T1/01/run_01"].regenerate
    assert not agents["T2/01/run_01"].planned and "--agents-only" in agents["T2/01/run_01"].action

    _, judges = by_label(scylla_copy, judges_only=True)
    assert not judges["T0/00/run_01"].planned and "--judges-only" in judges["T0/00/run_01"].action
    assert not judges["T1/01/run_01"].planned
    assert judges["T2/01/run_01"].judge_slots == (2,)


def test_results_run_with_a_bad_judge_is_rebuilt_after_the_judge(scylla_copy: Path) -> None:
    p = run_paths(scylla_copy)
    p.run_result.unlink()
    shutil.rmtree(p.judge_slot(3).dir)
    _, runs = by_label(scylla_copy)
    run = runs[LABEL]
    assert run.status is RunStatus.RESULTS and run.judge_slots == (3,) and not run.regenerate


def test_results_run_with_no_valid_judgment_is_not_regenerated(scylla_copy: Path) -> None:
    p = run_paths(scylla_copy)
    p.run_result.unlink()
    for slot in (1, 2, 3):
        edit_json(p.judge_slot(slot).judgment, is_valid=False)
    _, agents = by_label(scylla_copy, agents_only=True)
    assert not agents[LABEL].planned and "no valid judgment" in agents[LABEL].action


# ---------------------------------------------------------------- filters


def damage_three(exp: Path) -> None:
    shutil.rmtree(run_paths(exp, "T0", "00", 1).dir)  # missing
    run_paths(exp, "T1", "01", 1).run_result.unlink()  # results
    fallback(run_paths(exp, "T2", "01", 1))  # judge failed
    run_paths(exp, "T3", "01", 1).output.write_text("")  # failed (stderr present)


def labels(exp: Path, **filters: object) -> list[str]:
    return sorted(by_label(exp, **filters)[1])


def test_filters_combine(scylla_copy: Path) -> None:
    damage_three(scylla_copy)
    assert labels(scylla_copy, statuses=["missing"]) == ["T0/00/run_01"]
    assert labels(scylla_copy, statuses=["results"]) == ["T1/01/run_01"]
    assert labels(scylla_copy, statuses=["failed"]) == ["T2/01/run_01", "T3/01/run_01"]  # a run or a judge
    assert labels(scylla_copy, statuses=["agent_failed"]) == ["T0/00/run_01", "T3/01/run_01"]
    assert labels(scylla_copy, statuses=["missing", "results"]) == ["T0/00/run_01", "T1/01/run_01"]
    assert labels(scylla_copy, tiers=["T1", "T2"]) == ["T1/01/run_01", "T2/01/run_01"]
    assert labels(scylla_copy, tiers=["T1", "T2"], statuses=["failed"]) == ["T2/01/run_01"]
    assert labels(scylla_copy, subtests=["00"]) == ["T0/00/run_01"]
    assert labels(scylla_copy, subtests=["01"], statuses=["missing"]) == []
    assert labels(scylla_copy, runs="1", tiers=["T5"]) == ["T5/01/run_01"]
    assert len(labels(scylla_copy, statuses=["completed"])) == 4


def test_status_filter_picks_which_slots_rerun(scylla_copy: Path) -> None:
    p = run_paths(scylla_copy)
    fallback(p)
    shutil.rmtree(p.judge_slot(3).dir)
    assert by_label(scylla_copy)[1][LABEL].judge_slots == (2, 3)
    assert by_label(scylla_copy, statuses=["failed"])[1][LABEL].judge_slots == (2,)
    assert by_label(scylla_copy, statuses=["missing"])[1][LABEL].judge_slots == (3,)


@pytest.mark.parametrize(
    "filters, message",
    [
        ({"statuses": ["done"]}, "valid statuses are completed, results, failed, partial, missing, complete, agent_failed"),
        ({"tiers": ["T9"]}, "--tier T9: not in tiers_to_run"),
        ({"subtests": ["99"]}, "--subtest 99: no such subtest"),
        ({"runs": "2"}, "runs_per_subtest is 1"),
        ({"runs": "1,x"}, "--runs: 'x' is not a run number"),
        ({"runs": "0"}, "--runs: '0'"),
        ({"agents_only": True, "judges_only": True}, "exclude each other"),
    ],
)
def test_bad_filters_are_refused(scylla_copy: Path, filters: dict, message: str) -> None:
    with pytest.raises(RecoveryInputError, match="^.*$") as err:
        survey(scylla_copy, Selection.build(**filters))
    assert message in str(err.value) and "\n" not in str(err.value)


# ------------------------------------------------------------- command line


def test_dry_run_prints_work_and_writes_nothing(scylla_copy: Path, tmp_path: Path) -> None:
    damage_three(scylla_copy)
    before = tree_hash(scylla_copy)
    prefect_home = tmp_path / "never-created"
    result = recover_cli(str(scylla_copy), "--dry-run", env={"PREFECT_HOME": str(prefect_home)})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "runs:   completed 4, results 1, failed 1, partial 0, missing 1" in out
    assert "judges: complete 14, missing 0, failed 1, partial 0, agent_failed 6" in out
    lines = [line for line in out.splitlines() if line.startswith("T")]
    assert len(lines) == 4  # one line per run needing work, nothing for the complete ones
    assert lines[0].split()[:4] == ["T0", "00", "01", "missing"] and lines[0].endswith(
        "=> rerun agent, then judges 01, 02, 03 and rebuild run_result.json"
    )
    assert lines[1].split()[:4] == ["T1", "01", "01", "results"] and "run_result.json missing" in lines[1]
    assert lines[1].endswith("=> regenerate result files")
    assert "judge_02 failed: judgment is a heuristic fallback" in lines[2] and lines[2].endswith(
        "=> rerun judge 02, then rebuild consensus and run_result.json"
    )
    assert lines[3].split()[:4] == ["T3", "01", "01", "failed"]
    assert tree_hash(scylla_copy) == before
    assert not prefect_home.exists()  # Prefect was never imported, let alone started


def test_recovery_with_nothing_to_do_starts_no_prefect(scylla_copy: Path, tmp_path: Path) -> None:
    """Nothing planned, nothing executed: the answer comes from the files, as a dry run's
    does, even with a Prefect server that would not answer."""
    home = tmp_path / "never-created"
    env = {"PREFECT_HOME": str(home), "PREFECT_API_URL": "http://127.0.0.1:9/api"}  # nothing listens on port 9
    done = recover_cli(str(scylla_copy), env=env)
    assert done.returncode == 0, done.stderr
    assert "nothing to do: every selected run is complete" in done.stdout and done.stderr == ""

    shutil.rmtree(run_paths(scylla_copy, "T1", "01", 1).dir / "agent")
    before = tree_hash(scylla_copy)
    left_out = recover_cli(str(scylla_copy), "--judges-only", env=env)
    assert left_out.returncode == 1, left_out.stderr  # a selected run still needs work
    assert "1 left out by --judges-only" in left_out.stdout
    assert "still needing work: 1" in left_out.stdout and "T1/01/run_01  missing  no agent files" in left_out.stdout
    assert tree_hash(scylla_copy) == before and not home.exists()

    # With work to do, the same command does need the server, and says so.
    refused = recover_cli(str(scylla_copy), env=env)
    assert refused.returncode == 2 and refused.stderr.startswith("error: PREFECT_API_URL=http://127.0.0.1:9/api does not answer")


def test_json_document(scylla_copy: Path, tmp_path: Path) -> None:
    damage_three(scylla_copy)
    before = tree_hash(scylla_copy)
    result = recover_cli(str(scylla_copy), "--json", env={"PREFECT_HOME": str(tmp_path / "never-created")})
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert result.stdout == json.dumps(doc, indent=2, ensure_ascii=False) + "\n"  # the text every JSON file here has
    assert tree_hash(scylla_copy) == before and not (tmp_path / "never-created").exists()
    assert doc["mode"] == "agent_eval" and doc["experiment"] == "test-001"
    assert doc["directory"] == str(scylla_copy.resolve())
    assert doc["expected"] == doc["selected"] == len(doc["runs"]) == 7
    assert doc["counts"]["runs"] == {"completed": 4, "results": 1, "failed": 1, "partial": 0, "missing": 1}
    assert doc["counts"]["judges"] == {"complete": 14, "missing": 0, "failed": 1, "partial": 0, "agent_failed": 6}
    assert doc["counts"]["needing_work"] == 4
    assert doc["counts"]["actions"] == {"regenerate": 1, "agent_reruns": 2, "judge_reruns": 1, "excluded": 0}
    run = next(r for r in doc["runs"] if (r["tier"], r["subtest"], r["run"]) == ("T2", "01", 1))
    assert set(run) == {"tier", "subtest", "run", "status", "reason", "needs_work", "action", "judges"}
    assert run["status"] == "completed" and run["needs_work"] is True
    assert run["judges"][1] == {
        "slot": 2, "model": "claude-sonnet-4-5-20250929", "status": "failed", "reason": "judgment is a heuristic fallback",
    }
    filtered = json.loads(recover_cli(str(scylla_copy), "--json", "--status", "missing", "--tier", "T0").stdout)
    assert [(r["tier"], r["status"]) for r in filtered["runs"]] == [("T0", "missing")]
    assert filtered["filters"]["statuses"] == ["missing"] and filtered["filters"]["tiers"] == ["T0"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--status", "bogus"], "valid statuses are completed, results"),
        (["--runs", "1,,3"], "--runs"),
        (["--agents-only", "--judges-only"], "not allowed with argument"),
        (["-p", "0"], "positive integer"),
    ],
)
def test_command_line_bad_input(scylla_copy: Path, args: list[str], message: str) -> None:
    result = recover_cli(str(scylla_copy), "--dry-run", *args)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and message in result.stderr and result.stderr.count("\n") == 1


def test_command_line_bad_directory(tmp_path: Path) -> None:
    missing = recover_cli(str(tmp_path / "nope"), "--dry-run")
    assert (missing.returncode, missing.stderr) == (2, f"error: {tmp_path / 'nope'}: no such directory\n")
    plain = recover_cli(str(tmp_path))
    assert plain.returncode == 2 and "no config/experiment.json" in plain.stderr and plain.stderr.count("\n") == 1
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "experiment.json").write_text('{"experiment_id": "x"}')
    bad = recover_cli(str(tmp_path), "--json")  # with --json the error is the one JSON document on stdout
    doc = json.loads(bad.stdout)
    assert bad.returncode == doc["exit_code"] == 2 and set(doc) == {"error", "exit_code"} and not bad.stderr
    assert "experiment.json lacks the required field tiers_to_run" in doc["error"]


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "no such directory"),  # the directory below does not exist
        (["--status", "bogus"], "valid statuses are"),
        (["--runs"], "expected one argument"),
        (["--bogus-flag"], "unrecognized arguments"),
        (["--agents-only", "--judges-only"], "not allowed with argument"),
    ],
)
def test_json_errors_are_one_json_document_on_stdout(scylla_copy: Path, tmp_path: Path, args: list[str], message: str) -> None:
    target = tmp_path / "nope" if not args else scylla_copy
    for json_flag in ("--json", "--js"):  # argparse accepts abbreviations; so does the error path
        result = recover_cli(str(target), json_flag, *args)
        doc = json.loads(result.stdout)  # exactly one document: json.loads refuses trailing text
        assert set(doc) == {"error", "exit_code"} and message in doc["error"], doc
        assert result.returncode == doc["exit_code"] == 2 and result.stderr == ""


def test_reasons_read_as_sentences(scylla_copy: Path) -> None:
    p = run_paths(scylla_copy)
    edit_json(p.judge_slot(2).judgment, criteria_scores=[1, 2])
    edit_json(p.run_result, exit_code="zero")
    edit_json(p.agent_result, exit_code=DELETE)
    doc = json.loads(recover_cli(str(scylla_copy), "--json").stdout)
    run = next(r for r in doc["runs"] if (r["tier"], r["subtest"], r["run"]) == ("T1", "01", 1))
    assert "judgment.json field criteria_scores should be a JSON object, but it is [1, 2]" in run["judges"][1]["reason"]
    assert run["reason"] == (
        "agent finished but agent/result.json lacks the required field exit_code; "
        'run_result.json field exit_code should be a whole number, but it is "zero"'
    )
    text = json.dumps(doc)
    assert "Input should" not in text and "valid dictionary" not in text and "Field required" not in text


def test_left_out_line_only_with_a_switch(scylla_copy: Path) -> None:
    p = run_paths(scylla_copy)
    p.run_result.unlink()
    for slot in (1, 2, 3):
        edit_json(p.judge_slot(slot).judgment, is_valid=False)  # its judges must rerun before it can be rebuilt
    plain = recover_cli(str(scylla_copy), "--dry-run", "--status", "results")
    assert plain.returncode == 0 and "--agents-only" not in plain.stdout and "--judges-only" not in plain.stdout
    assert "1 need(s) work these filters leave out" in plain.stdout
    switched = recover_cli(str(scylla_copy), "--dry-run", "--agents-only")
    assert "; 1 left out by --agents-only" in switched.stdout and "--judges-only" not in switched.stdout


def test_closed_pipe_ends_quietly(scylla_copy: Path) -> None:
    import subprocess

    from conftest import PYTHON, REPO_ROOT

    damage_three(scylla_copy)
    for args in (["--dry-run", "-v"], ["--json"]):
        # The reader is gone before the first line is written (what `| head -1` does, at worst).
        proc = subprocess.Popen(
            [PYTHON, str(REPO_ROOT / "flows" / "recover.py"), str(scylla_copy), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        proc.stdout.close()
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 0, err
        assert err == "", err  # no BrokenPipeError traceback, no "Exception ignored" line


# --------------------------------------------------------------- expected runs


def test_expected_runs_come_from_config_and_disk(scylla_copy: Path) -> None:
    config = scylla_copy / "config" / "experiment.json"
    edit_json(config, runs_per_subtest=3, tiers_to_run=["T0", "T1", "T7"])
    (scylla_copy / "T1" / "02").mkdir()
    s, runs = by_label(scylla_copy)
    assert sorted(runs) == [
        "T0/00/run_01", "T0/00/run_02", "T0/00/run_03",
        "T1/01/run_01", "T1/01/run_02", "T1/01/run_03",
        "T1/02/run_01", "T1/02/run_02", "T1/02/run_03",
    ]
    assert runs["T0/00/run_02"].status is RunStatus.MISSING and runs["T0/00/run_02"].rerun_agent
    assert [m.tier for m in s.missing_tiers] == ["T7"]  # expected, never started: missing work


def test_manifest_subtests_are_expected_even_when_absent(scylla_copy: Path) -> None:
    from experiment_infra.records import AgentEvalManifest, ConditionRecord, GitProvenance

    manifest = AgentEvalManifest(
        experiment_name="x", experiment_id="test-001", created_at="t", git=GitProvenance(sha="0" * 40, short="0000000"),
        task_repo="r", task_commit="c", conditions=[ConditionRecord(tier="T6", subtest="05", model="m")],
        runs_per_subtest=1, judge_models=["j"], agent_command=["a"], judge_command=["j"],
        agent_timeout_seconds=1, judge_timeout_seconds=1,
    )
    write_record(scylla_copy / "config" / "manifest.json", manifest)
    _, runs = by_label(scylla_copy, tiers=["T6"])
    assert sorted(runs) == ["T6/01/run_01", "T6/05/run_01"]
    assert runs["T6/05/run_01"].status is RunStatus.MISSING


def test_unreadable_tree_entries_do_not_crash(scylla_copy: Path) -> None:
    p = run_paths(scylla_copy)
    p.run_result.unlink()
    os.mkfifo(p.run_result)  # a reader that opened it would hang
    (scylla_copy / "T2" / ".hidden").mkdir()
    _, runs = by_label(scylla_copy)
    assert runs[LABEL].status is RunStatus.RESULTS and "T2/.hidden/run_01" not in runs


def test_agent_rerun_of_an_experiment_without_its_prompt_is_refused(scylla_copy: Path) -> None:
    shutil.rmtree(run_paths(scylla_copy).dir)
    (scylla_copy / "prompt.md").unlink()
    before = tree_hash(scylla_copy)
    result = recover_cli(str(scylla_copy))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "prompt.md: missing, so agents of this experiment cannot be rerun" in result.stderr
    assert tree_hash(scylla_copy) == before


def test_a_recovery_runs_as_many_tasks_at_once_as_the_experiment_did(scylla_copy: Path) -> None:
    assert survey(scylla_copy, Selection()).default_parallelism == 6  # its parallel_subtests
    edit_json(scylla_copy / "config" / "experiment.json", parallel_subtests=None)
    assert survey(scylla_copy, Selection()).default_parallelism == 8


def test_a_survey_makes_no_reference_cycles(scylla_copy: Path) -> None:
    """A survey pauses the cyclic garbage collector while it runs (survey._collector_paused):
    free only while a survey, damaged files and worker processes included, leaves no garbage
    that only the collector could free."""
    from experiment_infra.layout import ExperimentPaths
    from experiment_infra.recovery.render import render_json, render_text
    from experiment_infra.recovery.survey import survey_experiment

    damages = [AGENT_CASES["agent result deleted"][0], AGENT_CASES["command log without commands"][0],
               JUDGE_CASES["judgment corrupt"][0], JUDGE_CASES["score not a number"][0], JUDGE_CASES["slot empty"][0]]
    for tier, damage in zip(("T1", "T2", "T3", "T4", "T5"), damages, strict=True):
        damage(run_paths(scylla_copy, tier, "01", 1))
    exp = ExperimentPaths(scylla_copy)
    survey(scylla_copy, Selection())  # first use builds the models' validators: not the survey's own garbage
    gc.collect()
    gc.disable()
    try:
        for s in (survey(scylla_copy, Selection()), survey_experiment(exp, Selection(), cache=None, workers=2)):
            assert {r.status for r in s.runs} >= {RunStatus.COMPLETED, RunStatus.RESULTS, RunStatus.PARTIAL}
            render_json(s), render_text(s, verbose=True)
        del s
        assert gc.collect() == 0
    finally:
        gc.enable()
    assert gc.isenabled()
