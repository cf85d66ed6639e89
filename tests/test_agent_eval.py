"""Agent-evaluation runs (core, no Prefect): the fake agent and judges in temporary git repos."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from agent_eval_helpers import FAKE_AGENT, FIXTURE_ONLY, OURS_ONLY, keys, make_suite, tree
from conftest import FIXTURE, git
from faults_helpers import alive

from experiment_infra.agent_eval import (
    DEFAULT_AGENT_COMMAND,
    REDACTED,
    AgentEvalError,
    Condition,
    TaskSpec,
    agent_argv,
    finish_run,
    load_spec,
    parse_judgment,
    plan_experiment,
    run_agent,
    run_judge,
    set_aside_run,
    start_experiment,
)
from experiment_infra.layout import ExperimentPaths
from experiment_infra.reports.grading import grade_for
from experiment_infra.records import (
    ProcessRecord,
    AgentEvalManifest,
    AgentResult,
    AgentTiming,
    CommandLog,
    Consensus,
    ExperimentConfig,
    JudgeCommand,
    JudgeTiming,
    Judgment,
    RunResult,
    load_record,
)
from experiment_infra.recovery.regenerate import regenerate_run
from experiment_infra.status.rules import JudgeStatus, RunStatus, classify_agent, classify_judge, classify_run

MODELS = {
    "agent/command_log.json": CommandLog, "agent/timing.json": AgentTiming, "agent/result.json": AgentResult,
    "judge/result.json": Consensus, "judge/timing.json": JudgeTiming, "run_result.json": RunResult,
    **{f"judge/judge_0{n}/judgment.json": Judgment for n in (1, 2, 3)},
    **{f"judge/judge_0{n}/timing.json": JudgeTiming for n in (1, 2, 3)},
    **{f"judge/judge_0{n}/command_log.json": JudgeCommand for n in (1, 2, 3)},
    "agent/process.json": ProcessRecord,
}


def start(tmp_path: Path, repo: Path, **overrides):
    suite = make_suite(tmp_path, repo, **overrides)
    plan = plan_experiment(suite, results_root=tmp_path / "results")
    start_experiment(plan, 1)
    return plan.exp, plan.spec


def run_all(exp: ExperimentPaths, spec, tier: str = "T0", subtest: str = "00", n: int = 1) -> list[JudgeStatus]:
    run_agent(exp, spec, tier, subtest, n)
    statuses = [run_judge(exp, spec, tier, subtest, n, i, m) for i, m in enumerate(spec.judge_models, start=1)]
    finish_run(exp, spec, tier, subtest, n)
    return statuses


def test_written_run_matches_the_fixture_file_for_file(tmp_path, git_repo):
    exp, spec = start(tmp_path, git_repo)
    assert run_all(exp, spec) == [JudgeStatus.COMPLETE] * 3
    ours_dir, theirs_dir = exp.run("T0", "00", 1).dir, FIXTURE / "T0" / "00" / "run_01"
    ours, theirs = tree(ours_dir), tree(theirs_dir)
    assert ours - OURS_ONLY == theirs - FIXTURE_ONLY
    assert FIXTURE_ONLY <= theirs and OURS_ONLY <= ours  # the exceptions are real files, not typos

    json_files = {f for f in ours if f.endswith(".json")}
    assert json_files == set(MODELS)
    for rel, model in MODELS.items():
        load_record(ours_dir / rel, model)
        if rel in theirs:
            load_record(theirs_dir / rel, model)  # the same models read ProjectScylla's files
            assert keys(theirs_dir / rel) <= keys(ours_dir / rel), rel
    assert classify_run(exp.run("T0", "00", 1), list(spec.judge_models)).status is RunStatus.COMPLETED
    assert (ours_dir / "workspace" / "hello.py").read_text() == 'print("Hello, World!")\n'  # a real change

    config = load_record(exp.config, ExperimentConfig)
    assert keys(FIXTURE / "config" / "experiment.json") <= keys(exp.config)
    assert (config.tiers_to_run, config.judge_models, config.models) == (["T0"], list(spec.judge_models), ["fake-sonnet"])
    assert config.task_commit == git(git_repo, "rev-parse", "HEAD")
    for name in ("prompt.md", "criteria.md", "rubric.yaml", "judge_prompt.md"):
        assert (exp.dir / name).is_file() and (FIXTURE / name).is_file()


def test_written_results_equal_regenerated_ones(tmp_path, git_repo):
    exp, spec = start(tmp_path, git_repo)
    run_all(exp, spec)
    paths = exp.run("T0", "00", 1)
    derived = [paths.agent_result, paths.consensus, paths.run_result]
    written = {p: p.read_text() for p in derived}
    for p in derived:
        shutil.move(p, tmp_path / p.name)
    regenerate_run(paths, list(spec.judge_models))
    assert {p: p.read_text() for p in derived} == written


def test_agent_result_parsed_from_claude_json(tmp_path, git_repo):
    exp, spec = start(tmp_path, git_repo)
    run_agent(exp, spec, "T0", "00", 1)
    paths = exp.run("T0", "00", 1)
    reply = json.loads(paths.agent_stdout.read_text())
    result = load_record(paths.agent_result, AgentResult)
    assert result.exit_code == 0 and result.api_calls == reply["num_turns"] and result.cost_usd == reply["total_cost_usd"]
    assert result.token_stats.cache_read_tokens == reply["usage"]["cache_read_input_tokens"]
    assert paths.output.read_text() == paths.agent_stdout.read_text()
    log = load_record(paths.command_log, CommandLog)
    assert log.commands[0].command[-1] == str(paths.prompt.absolute())
    assert log.commands[0].cwd == str(paths.workspace.resolve())
    assert paths.prompt.read_text() == paths.task_prompt.read_text() == exp.prompt.read_text()


def test_consensus_is_mean_of_valid_judges_with_strict_majority(tmp_path, git_repo):
    exp, spec = start(tmp_path, git_repo, judge_models=["j-0.5", "j-0.7", "j-1.0", "j-garbage"])
    assert run_all(exp, spec) == [JudgeStatus.COMPLETE] * 3 + [JudgeStatus.FAILED]
    paths = exp.run("T0", "00", 1)
    consensus = load_record(paths.consensus, Consensus)
    assert consensus.score == pytest.approx((0.5 + 0.7 + 1.0) / 3)
    assert consensus.passed is True  # 2 of 3 valid judges passed it
    assert consensus.grade == "B"
    assert consensus.reasoning.startswith("j-0.7:")  # the judge closest to the mean (0.733)
    result = load_record(paths.run_result, RunResult)
    # Every slot is listed, as ProjectScylla lists them; the failed one says so and scores nothing.
    assert [(j.judge_number, j.valid) for j in result.judges] == [(1, True), (2, True), (3, True), (4, False)]
    assert consensus.panel_valid is False  # a mean over 3 of the panel's 4 judges
    panel = load_record(paths.judge_timing, JudgeTiming)
    timing = panel.judge_duration_seconds
    slot_timings = [load_record(paths.judge_slot(i).timing, JudgeTiming) for i in range(1, 5)]
    assert timing == pytest.approx(sum(t.judge_duration_seconds for t in slot_timings))
    assert panel.measured == max(t.measured for t in slot_timings)  # when the last judge ended
    agent = load_record(paths.agent_timing, AgentTiming).agent_duration_seconds
    assert result.duration_seconds == pytest.approx(agent + timing)
    stats = result.token_stats
    assert result.tokens_input == stats.input_tokens + stats.cache_read_tokens


def test_a_tie_is_not_a_pass(tmp_path, git_repo):
    exp, spec = start(tmp_path, git_repo, judge_models=["j-0.5", "j-0.9"])
    run_all(exp, spec)
    consensus = load_record(exp.run("T0", "00", 1).consensus, Consensus)
    assert consensus.passed is False and consensus.score == pytest.approx(0.7) and consensus.grade == "B"


@pytest.mark.parametrize(
    "score, grade",
    [(1.0, "S"), (0.9999, "A"), (0.8, "A"), (0.7999, "B"), (0.6, "B"), (0.5999, "C"), (0.4, "C"),
     (0.3999, "D"), (0.2, "D"), (0.1999, "F"), (0.0, "F")],
)
def test_grade_boundaries(score, grade):
    assert grade_for(score) == grade


def test_single_judge_at_exactly_one_grades_s(tmp_path, git_repo):
    exp, spec = start(tmp_path, git_repo, judge_models=["j-1.0"])
    run_all(exp, spec)
    assert load_record(exp.run("T0", "00", 1).consensus, Consensus).grade == "S"


def test_garbage_judge_reply_is_a_failed_slot_with_reason_and_no_score(tmp_path, git_repo):
    exp, spec = start(tmp_path, git_repo, judge_models=["fake-garbage", "fake-fail"])
    assert run_all(exp, spec) == [JudgeStatus.FAILED, JudgeStatus.FAILED]
    paths = exp.run("T0", "00", 1)
    garbage = paths.judge_slot(1)
    assert not garbage.judgment.exists()
    assert "probably a pass" in garbage.response.read_text()
    command = load_record(garbage.command_log, JudgeCommand)
    assert command.exit_code == 0 and command.reason.startswith("unparseable judge reply")
    assert classify_judge(garbage, "fake-garbage").reason == command.reason
    failing = load_record(paths.judge_slot(2).command_log, JudgeCommand)
    assert failing.exit_code == 2 and "judge model unavailable" in failing.reason
    assert paths.judge_slot(2).stderr.is_file()
    # No valid judgment: no consensus and no run_result are invented.
    assert not paths.consensus.exists() and not paths.run_result.exists()
    assert classify_run(paths, list(spec.judge_models)).status is RunStatus.RESULTS


def test_judge_speaking_claude_json_is_read_from_its_result_field(tmp_path, git_repo):
    exp, spec = start(tmp_path, git_repo, judge_models=["fake-opus"])
    spec = spec.with_commands(None, [*spec.judge_command[:-1], "--output-format", "json", "{prompt_file}"])
    assert run_all(exp, spec) == [JudgeStatus.COMPLETE]
    slot = exp.run("T0", "00", 1).judge_slot(1)
    assert json.loads(slot.stdout.read_text())["type"] == "result"
    assert slot.response.read_text().startswith("Now I have all the information")
    assert load_record(slot.judgment, Judgment).score == 0.95


@pytest.mark.parametrize(
    "reply, score",
    [
        ('Verdict:\n\n```json\n{"score": 0.75, "passed": true, "reasoning": "ok"}\n```\n', 0.75),
        ('{"score": 1, "passed": false, "grade": "S"}', 1.0),
        ('I think {"score": 0.25, "passed": false} fits.', 0.25),
        ('```\n{"score": 0.5, "passed": true, "categories": {"f": {"score": 0.5}}}\n```', 0.5),
    ],
)
def test_parse_judgment_accepts_bare_and_fenced_json(reply, score):
    judgment, problem = parse_judgment(reply)
    assert problem is None and judgment.score == score and judgment.grade is not None


def test_parse_judgment_categories_become_criteria_scores():
    judgment, _ = parse_judgment('```json\n{"score": 0.5, "passed": true, "categories": {"f": {"score": 0.5}}}\n```')
    assert judgment.criteria_scores == {"f": {"score": 0.5}} and judgment.grade == "C"


@pytest.mark.parametrize(
    "reply, why",
    [
        ("no json here", "no JSON object"),
        ('```json\n{"score": 1.5, "passed": true}\n```', "score"),
        ('{"score": 0.5, "passed": "yes"}', "passed"),
        ('{"grade": "A"}', "no score and passed"),
        ("", "empty reply"),
    ],
)
def test_parse_judgment_rejects_without_inventing_a_score(reply, why):
    judgment, problem = parse_judgment(reply)
    assert judgment is None and problem.startswith("unparseable judge reply") and why in problem


def test_agent_nonzero_exit_is_a_failed_run_and_its_judges_do_not_run(tmp_path, git_repo):
    exp, spec = start(tmp_path, git_repo, conditions=[Condition("T0", "00", "fake-fail")])
    assert run_agent(exp, spec, "T0", "00", 1) is RunStatus.FAILED
    paths = exp.run("T0", "00", 1)
    entry = load_record(paths.command_log, CommandLog).commands[0]
    assert entry.exit_code == 1 and "rate limit" in entry.reason
    assert "rate limit" in classify_agent(paths)[1]
    assert load_record(paths.agent_result, AgentResult).exit_code == 1
    assert run_judge(exp, spec, "T0", "00", 1, 1, "fake-opus") is JudgeStatus.AGENT_FAILED
    assert not paths.judge_dir.exists()
    finish_run(exp, spec, "T0", "00", 1)
    assert not paths.run_result.exists()


def test_hanging_agent_is_killed_at_the_timeout_and_recorded_as_failed(tmp_path, git_repo):
    exp, spec = start(tmp_path, git_repo, conditions=[Condition("T0", "00", "fake-hang")], agent_timeout_seconds=3)
    assert run_agent(exp, spec, "T0", "00", 1) is RunStatus.FAILED
    paths = exp.run("T0", "00", 1)
    entry = load_record(paths.command_log, CommandLog).commands[0]
    assert (entry.exit_code, entry.timed_out) == (124, True) and "timed out after 3 s" in entry.reason
    status, reason = classify_agent(paths)
    assert status is RunStatus.FAILED and "timed out" in reason
    pids = [int(p) for p in (paths.workspace / "hang.pids").read_text().split()]  # workspace kept
    assert not any(alive(p) for p in pids)  # the agent and its child: the whole group is gone


def test_secrets_in_the_environment_are_redacted_everywhere_and_still_reach_the_agent(tmp_path, git_repo, monkeypatch):
    env = {"ANTHROPIC_API_KEY": "sk-test-VERYSECRET", "GH_TOKEN": "ghp-ALSOSECRET", "DEMO_FLAG": "on",
           "FAKE_AGENT_REQUIRE_ENV": "ANTHROPIC_API_KEY,GH_TOKEN"}
    exp, spec = start(tmp_path, git_repo, conditions=[Condition("T0", "00", "fake-sonnet", env=env)])
    assert run_agent(exp, spec, "T0", "00", 1) is RunStatus.RESULTS  # the agent saw both secrets
    recorded = load_record(exp.run("T0", "00", 1).command_log, CommandLog).commands[0].env_vars
    assert recorded["ANTHROPIC_API_KEY"] == recorded["GH_TOKEN"] == REDACTED and recorded["DEMO_FLAG"] == "on"
    for path in exp.dir.rglob("*"):
        if path.is_file() and "/repo/" not in path.as_posix():
            text = path.read_bytes()
            assert b"VERYSECRET" not in text and b"ALSOSECRET" not in text, path
    manifest = load_record(exp.manifest, AgentEvalManifest)
    assert manifest.conditions[0].env["ANTHROPIC_API_KEY"] == REDACTED
    replay = exp.run("T0", "00", 1).agent_replay.read_text()
    assert "# export ANTHROPIC_API_KEY=" in replay and "export DEMO_FLAG=on" in replay

    # A spec read back from the manifest takes redacted values from the current environment.
    reloaded = load_spec(exp)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("GH_TOKEN", raising=False)
    assert run_agent(exp, reloaded, "T0", "00", 2) is RunStatus.FAILED
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-from-env")
    monkeypatch.setenv("GH_TOKEN", "ghp-from-env")
    assert run_agent(exp, reloaded, "T0", "00", 3) is RunStatus.RESULTS


def test_existing_runs_and_slots_are_never_overwritten(tmp_path, git_repo):
    exp, spec = start(tmp_path, git_repo, judge_models=["fake-opus"])
    run_all(exp, spec)
    paths = exp.run("T0", "00", 1)
    before = paths.run_result.read_text()
    with pytest.raises(FileExistsError, match="move the earlier attempt aside"):
        run_agent(exp, spec, "T0", "00", 1)
    with pytest.raises(FileExistsError, match="judge slot already exists"):
        run_judge(exp, spec, "T0", "00", 1, 1, "fake-opus")
    assert paths.run_result.read_text() == before

    moved = set_aside_run(exp, "T0", "00", 1)
    assert moved == exp.subtest("T0", "00").failed_attempt(1, 1)
    assert run_agent(exp, spec, "T0", "00", 1) is RunStatus.RESULTS
    assert (moved / "run_result.json").read_text() == before  # the earlier attempt is kept whole
    # Both worktrees still work: the moved one was repaired, the new one is fresh.
    assert "hello.py" in git(moved / "workspace", "status", "--porcelain")
    assert git(paths.workspace, "rev-parse", "HEAD") == spec.task_commit


def test_system_prompt_and_extra_args_reach_the_agent(tmp_path, git_repo):
    condition = Condition("T1", "01", "fake-sonnet", system_prompt="Be brief.\n", extra_args=["--max-turns", "5"])
    exp, spec = start(tmp_path, git_repo, conditions=[condition], judge_models=["fake-opus"])
    run_all(exp, spec, "T1", "01")
    paths = exp.run("T1", "01", 1)
    assert paths.workspace_instructions.read_text() == "Be brief.\n"
    command = load_record(paths.command_log, CommandLog).commands[0].command
    assert command[-3:] == ["--max-turns", "5", str(paths.prompt.absolute())]
    prompt = paths.judge_prompt.read_text()
    assert "`hello.py` (created)" in prompt and "CLAUDE.md" not in prompt  # the harness's file is not the agent's work


def test_default_agent_command_is_the_fixtures_claude_command(tmp_path, git_repo):
    exp, spec = start(tmp_path, git_repo, conditions=[Condition("T0", "00", "claude-sonnet-4-5-20250929")])
    argv = agent_argv(exp, spec.with_commands(DEFAULT_AGENT_COMMAND, None), "T0", "00", 1)
    fixture = load_record(FIXTURE / "T0/00/run_01/agent/command_log.json", CommandLog).commands[0].command
    assert argv[:-1] == fixture[:-1]
    assert argv[-1].endswith("/T0/00/run_01/agent/prompt.md") and fixture[-1].endswith("/T0/00/run_01/agent/prompt.md")


# ------------------------------------------------------------------- bad input


def _error(tmp_path: Path, repo: Path, **overrides) -> str:
    with pytest.raises(AgentEvalError) as info:
        suite = make_suite(tmp_path, repo, **overrides)
        plan_experiment(suite, results_root=tmp_path / "results")
    message = str(info.value)
    assert "\n" not in message
    assert not (tmp_path / "results").exists()  # planning writes nothing
    return message


def test_bad_inputs_are_one_line_errors_naming_the_field(tmp_path, git_repo):
    c = Condition("T0", "00", "fake-sonnet")
    assert "judge_models is empty" in _error(tmp_path, git_repo, judge_models=[])
    assert "T0/00 is declared twice" in _error(tmp_path, git_repo, conditions=[c, Condition("T0", "00", "other")])
    assert "unknown placeholder {modle}" in _error(tmp_path, git_repo, agent_command=["x", "--model", "{modle}"])
    assert "runs_per_subtest" in _error(tmp_path, git_repo, runs_per_subtest=0)
    with pytest.raises(AgentEvalError, match="tier name '../up'"):
        Condition("../up", "00", "m")
    with pytest.raises(AgentEvalError, match="subtest name"):
        Condition("T0", "a/b", "m")


def test_bad_task_inputs_are_one_line_errors(tmp_path, git_repo):
    missing_prompt = TaskSpec(repo=git_repo, prompt_file=tmp_path / "nope.md")
    assert "task.prompt_file" in _error(tmp_path, git_repo, task=missing_prompt)
    (tmp_path / "p.md").write_text("do it\n")
    assert "does not exist" in _error(tmp_path, git_repo, task=TaskSpec(repo=tmp_path / "gone", prompt_file=tmp_path / "p.md"))
    plain = tmp_path / "plain"
    plain.mkdir()
    assert "not a git repository" in _error(tmp_path, git_repo, task=TaskSpec(repo=plain, prompt_file=tmp_path / "p.md"))
    unknown = TaskSpec(repo=git_repo, commit="0123456789abcdef", prompt_file=tmp_path / "p.md")
    assert "task.commit: '0123456789abcdef' is not a commit" in _error(tmp_path, git_repo, task=unknown)


# ------------------------------------------------------------------- load_spec


def test_load_spec_round_trips_the_manifest_with_overrides(tmp_path, git_repo, monkeypatch):
    exp, spec = start(tmp_path, git_repo, runs_per_subtest=2)
    loaded = load_spec(exp)
    assert loaded == spec
    other = ["python", "agent.py", "{model}", "{prompt_file}"]
    assert load_spec(exp, agent_command=other).agent_command == tuple(other)
    monkeypatch.setenv("EXPERIMENT_JUDGE_COMMAND", "my-judge --model '{model}' {prompt_file}")
    assert load_spec(exp).judge_command == ("my-judge", "--model", "{model}", "{prompt_file}")
    monkeypatch.setenv("EXPERIMENT_AGENT_COMMAND", "agent --model {nope}")
    with pytest.raises(AgentEvalError, match="EXPERIMENT_AGENT_COMMAND: unknown placeholder"):
        load_spec(exp)


def test_load_spec_reads_a_projectscylla_directory(scylla_copy):
    spec = load_spec(ExperimentPaths(scylla_copy))
    assert [f"{c.tier}/{c.subtest}" for c in spec.conditions] == ["T0/00"] + [f"T{i}/01" for i in range(1, 7)]
    assert {c.model for c in spec.conditions} == {"claude-sonnet-4-5-20250929"}
    assert spec.judge_models == ("claude-opus-4-5-20251101", "claude-sonnet-4-5-20250929", "claude-haiku-4-5")
    assert spec.task_commit == "7fd1a60b01f91b314f59955a4e4d4e80d8edf11d" and spec.agent_timeout_seconds == 300
    assert spec.agent_command[0] == "claude" and spec.runs()[0] == ("T0", "00", 1)


def test_load_spec_of_a_non_experiment_is_a_one_line_error(tmp_path):
    with pytest.raises(AgentEvalError, match="not an agent-evaluation experiment"):
        load_spec(ExperimentPaths(tmp_path))


def test_demo_task_bundle_is_the_committed_commit():
    import importlib.util

    from agent_eval_helpers import DEMO

    from experiment_infra.agent_eval import resolve_commit

    spec = importlib.util.spec_from_file_location("demo_suite", DEMO / "suite_agent_eval_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    suite = module.suite
    assert resolve_commit(suite.task.repo, suite.task.commit) == module.TASK_COMMIT
    assert FAKE_AGENT[1] == suite.agent_command[1]
