"""Agent-evaluation demo: a fake Claude Code agent solves a Hello World task, a panel of
three fake judges grades every run. Runs offline, in ProjectScylla's layout.

    python flows/run_suite.py experiments/agent_eval_demo/suite_agent_eval_demo.py [-p 4]
    python experiments/agent_eval_demo/suite_agent_eval_demo.py --dry-run

The agent and judges are scripts here (fake_agent.py, fake_judge.py) that take Claude
Code's flags; drop ``agent_command``/``judge_command`` below to use the real ``claude``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from experiment_infra.agent_eval import AgentEvalSuite, Condition, TaskSpec

HERE = Path(__file__).resolve().parent
TASK_COMMIT = "b1fce4c789d15e4bb439a8ccadc3f598dccc06b3"  # make_task_repo.py prints it

suite = AgentEvalSuite(
    experiment_name="agent_eval_demo",
    experiment_id="demo-001",
    conditions=[
        Condition("T0", "00", model="fake-sonnet"),
        Condition("T1", "01", model="fake-sonnet", system_prompt="Keep every solution to a single line.\n"),
        Condition("T2", "01", model="fake-haiku", extra_args=["--max-turns", "5"]),
    ],
    runs_per_subtest=2,
    judge_models=["fake-opus", "fake-sonnet-0.9", "fake-haiku-1.0"],
    task=TaskSpec(
        repo=HERE / "task_repo.bundle",
        commit=TASK_COMMIT,
        prompt_file=HERE / "prompt.md",
        criteria_file=HERE / "criteria.md",
        rubric_file=HERE / "rubric.yaml",
    ),
    agent_command=[
        sys.executable, str(HERE / "fake_agent.py"), "--model", "{model}", "--print",
        "--output-format", "json", "--dangerously-skip-permissions", "{extra_args}", "{prompt_file}",
    ],
    judge_command=[
        sys.executable, str(HERE / "fake_judge.py"), "--model", "{model}", "--print",
        "--dangerously-skip-permissions", "{prompt_file}",
    ],
    agent_timeout_seconds=120,
    judge_timeout_seconds=120,
    retries=1,
    retry_delay_seconds=2,
    language="python",
)

if __name__ == "__main__":
    from experiment_infra import run_experiments_cli

    run_experiments_cli(suite)
