"""Prefect tasks of agent-evaluation suites: one task run per agent run, one per judge slot.

Each wraps one core call (``run_agent`` / ``run_judge``) and adds a task run name
(``T0/00/run_01``, ``T0/00/run_01/judge_02``), retries and logs. A retry first moves
the failed attempt aside (never deleting it), because the core refuses to write over
an earlier attempt. Only a run that ran and failed is retried; bad input is not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import Failed, State

from experiment_infra.agent_eval import (
    AgentEvalSpec,
    run_agent,
    run_judge,
    set_aside_run,
    set_aside_slot,
    stop_judge_leftovers,
    stop_leftovers,
)
from experiment_infra.layout import AgentRunPaths, ExperimentPaths, JudgeSlotPaths
from experiment_infra.records import AgentResult, read_record
from tasks.stopping import not_started, unless_stopped
from experiment_infra.status.rules import (
    JUDGE_RERUN_STATUSES,
    JudgeStatus,
    RunStatus,
    agent_finished,
    classify_agent,
    classify_judge,
    judge_verdict,
)

STDERR_TAIL_LINES = 5


def stderr_tail(path: Path, lines: int = STDERR_TAIL_LINES) -> str:
    """The last lines of a process's stderr log, for a failure's message ("" when empty)."""
    try:
        text = path.read_bytes()[-4000:].decode("utf-8", "replace")
    except OSError:
        return ""
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    return ("; stderr: " + " | ".join(tail)) if tail else ""


def agent_line(paths: AgentRunPaths, status: RunStatus) -> str:
    """One line a person reads at the end of an agent task's log: status, cost, tokens."""
    result = read_record(paths.agent_result, AgentResult).record
    if result is None:
        return f"agent {status.value}"
    t = result.token_stats
    return (f"agent {status.value}: exit {result.exit_code}, cost ${result.cost_usd:.4f}, "
            f"tokens {t.input_tokens} in / {t.output_tokens} out, {result.api_calls} API call(s)")


def judge_line(slot: JudgeSlotPaths, model: str, status: JudgeStatus) -> str:
    """One line at the end of a judge task's log: status, score, grade (of a valid judgment only)."""
    judgment = judge_verdict(slot, model)[1]
    if judgment is None:
        return f"judge {slot.dir.name} ({model}) {status.value}"
    grade = f", grade {judgment.grade}" if judgment.grade else ""
    verdict = "passed" if judgment.passed else "not passed"
    return f"judge {slot.dir.name} ({model}) {status.value}: score {judgment.score:.3f}{grade}, {verdict}"


class RunFailed(RuntimeError):
    """An agent run or judge slot ran and failed (exit code, timeout, unusable reply): worth retrying."""


def failed(message: str) -> State:
    """The Failed state of a run that ran and failed: returned, not raised, so the task's
    log shows the reason (and the stderr tail) as one line, not a traceback of this
    module; Prefect still retries a returned Failed state."""
    return Failed(message=message, data=RunFailed(message))


def worth_retrying(task: Any, task_run: TaskRun, state: State) -> bool:
    # A failed run is returned as a Failed state carrying RunFailed.
    return unless_stopped(isinstance(state.data, RunFailed))


@task(
    name="agent_run",
    cache_policy=NO_CACHE,  # the truth is on disk; inputs are not worth hashing
    persist_result=False,
    retry_condition_fn=worth_retrying,
)
def agent_run_task(exp_dir: str, spec: AgentEvalSpec, tier: str, subtest: str, run_number: int) -> str | State:
    """Run the agent for one run; returns the run's status on disk (``results`` when it finished)."""
    stopping = not_started(f"{tier}/{subtest}/run_{run_number:02d}")
    if stopping is not None:
        return stopping
    logger = get_run_logger()
    exp = ExperimentPaths(Path(exp_dir))
    for stopped in stop_leftovers(exp.run(tier, subtest, run_number)):
        logger.warning("%s/%s/run_%02d %s", tier, subtest, run_number, stopped)
    moved = set_aside_run(exp, tier, subtest, run_number)
    if moved is not None:
        logger.warning("earlier attempt moved to %s", moved)
    status = run_agent(exp, spec, tier, subtest, run_number)
    paths = exp.run(tier, subtest, run_number)
    if not agent_finished(status):
        return failed(
            f"{tier}/{subtest}/{paths.dir.name} {status.value}: {classify_agent(paths)[1]}{stderr_tail(paths.agent_stderr)}"
        )
    logger.info("%s", agent_line(paths, status))
    return status.value


@task(
    name="judge_slot",
    cache_policy=NO_CACHE,
    persist_result=False,
    retry_condition_fn=worth_retrying,
)
def judge_slot_task(
    exp_dir: str, spec: AgentEvalSpec, tier: str, subtest: str, run_number: int, slot: int, model: str
) -> str | State:
    """Grade one run with one judge model; returns the slot's status on disk."""
    stopping = not_started(f"{tier}/{subtest}/run_{run_number:02d} judge {slot}")
    if stopping is not None:
        return stopping
    logger = get_run_logger()
    exp = ExperimentPaths(Path(exp_dir))
    for stopped in stop_judge_leftovers(exp.run(tier, subtest, run_number).judge_slot(slot)):
        logger.warning("%s/%s/run_%02d %s", tier, subtest, run_number, stopped)
    moved = set_aside_slot(exp, tier, subtest, run_number, slot)
    if moved is not None:
        logger.warning("earlier judge attempt moved to %s", moved)
    status = run_judge(exp, spec, tier, subtest, run_number, slot, model)
    slot_paths = exp.run(tier, subtest, run_number).judge_slot(slot)
    if status in JUDGE_RERUN_STATUSES:
        return failed(
            f"{slot_paths.dir} {status.value}: {classify_judge(slot_paths, model).reason}{stderr_tail(slot_paths.stderr)}"
        )
    logger.info("%s", judge_line(slot_paths, model, status))
    return status.value
