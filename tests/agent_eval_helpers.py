"""Shared set-up of the agent-evaluation tests: suites over the demo's fake agent and judge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import PYTHON, REPO_ROOT

from experiment_infra.agent_eval import AgentEvalSuite, Condition, TaskSpec

DEMO = REPO_ROOT / "experiments" / "agent_eval_demo"
FAKE_AGENT = [
    PYTHON, str(DEMO / "fake_agent.py"), "--model", "{model}", "--print", "--output-format", "json",
    "--dangerously-skip-permissions", "{extra_args}", "{prompt_file}",
]
FAKE_JUDGE = [PYTHON, str(DEMO / "fake_judge.py"), "--model", "{model}", "--print", "--dangerously-skip-permissions", "{prompt_file}"]
# Files of a ProjectScylla run this project does not write: its per-command log copies
# (ours are stdout.log/stderr.log, which command_log.json names), its build-pipeline
# scripts, and the run reports (written by the reports step of the flow, not by a run).
FIXTURE_ONLY = {
    "agent/cmd_0000_stdout.log", "agent/cmd_0000_stderr.log", "cmd_0000_stdout.log", "cmd_0000_stderr.log",
    "commands/precommit.sh", "commands/precommit_output.log", "commands/python_build_output.log",
    "commands/python_check.sh", "commands/python_format.sh", "commands/python_format_output.log",
    "commands/python_test.sh", "commands/python_test_output.log", "commands/run_all.sh",
    "report.json", "report.md",
}
# Files this project adds: each judge's command record (exit code, reason of a failure).
OURS_ONLY = {f"judge/judge_0{n}/command_log.json" for n in (1, 2, 3)} | {"agent/process.json"}


def task_files(tmp_path: Path) -> dict[str, Path]:
    files = {"prompt_file": tmp_path / "prompt.md", "criteria_file": tmp_path / "criteria.md", "rubric_file": tmp_path / "rubric.yaml"}
    for src, dest in zip(("prompt.md", "criteria.md", "rubric.yaml"), files.values()):
        dest.write_text((DEMO / src).read_text())
    return files


def make_suite(tmp_path: Path, repo: Path, **overrides: Any) -> AgentEvalSuite:
    files = task_files(tmp_path)
    task = overrides.pop("task", None) or TaskSpec(repo=repo, commit="HEAD", **files)
    options: dict[str, Any] = dict(
        experiment_name="eval",
        conditions=[Condition("T0", "00", "fake-sonnet")],
        judge_models=["fake-opus", "fake-sonnet-0.9", "fake-haiku-1.0"],
        task=task,
        agent_command=FAKE_AGENT,
        judge_command=FAKE_JUDGE,
        agent_timeout_seconds=60,
        judge_timeout_seconds=60,
        retries=0,
        retry_delay_seconds=0,
    )
    options.update(overrides)
    return AgentEvalSuite(**options)


def tree(root: Path) -> set[str]:
    """Every file under ``root`` (relative, posix), the workspace's contents left out."""
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not p.relative_to(root).as_posix().startswith("workspace/")
    }


def keys(path: Path) -> set[str]:
    return set(json.loads(path.read_text()))
