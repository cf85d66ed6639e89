"""Prefect tasks of a recovery: regenerate one run, rerun one agent, rerun one judge slot,
rebuild one run's consensus. Each is a thin view over a core call; the files decide
whether it worked, and an earlier attempt is always moved aside, never deleted.

Retries: a regeneration is retried only for transient I/O errors (a result file that
cannot be built will not build on a second try); an agent or judge rerun that ends
failed is retried as the experiment's spec says (``retries``), each retry moving the
failed attempt aside first.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State

from experiment_infra.agent_eval import AgentEvalSpec, finish_run, run_agent, run_judge
from experiment_infra.layout import ExperimentPaths, judge_slot_name, run_dir_name_for
from experiment_infra.recovery_actions import move_slot_aside, set_aside_run
from experiment_infra.regenerate import regenerate_run
from experiment_infra.status import JudgeStatus, RunStatus, classify_agent, classify_judge

TRANSIENT_RETRIES = 2
TRANSIENT_DELAYS = [1.0, 5.0]
_TRANSIENT_ERRNOS = frozenset(
    {errno.EAGAIN, errno.EBUSY, errno.EINTR, errno.EIO, errno.ESTALE, errno.ETIMEDOUT, errno.EMFILE, errno.ENFILE}
)


class RerunFailed(RuntimeError):
    """An agent or judge ran again and its files say it failed: retried per the spec."""


def is_transient(exc: BaseException | None) -> bool:
    if isinstance(exc, RerunFailed | TimeoutError | ConnectionError):
        return True
    return isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS


def worth_retrying(task: Any, task_run: TaskRun, state: State) -> bool:
    # Prefect hands a raised exception over as the data of a Failed state.
    return is_transient(state.data if isinstance(state.data, BaseException) else None)


def run_label(tier: str, subtest: str, run_number: int) -> str:
    return f"{tier}/{subtest}/{run_dir_name_for(run_number)}"


def slot_label(tier: str, subtest: str, run_number: int, slot: int) -> str:
    return f"{run_label(tier, subtest, run_number)}/{judge_slot_name(slot)}"


_COMMON: dict[str, Any] = dict(
    cache_policy=NO_CACHE,  # the truth is on disk; a cached result would hide a rerun
    persist_result=False,
    retry_condition_fn=worth_retrying,
)


@task(name="regenerate", task_run_name="{label}", retries=TRANSIENT_RETRIES, retry_delay_seconds=TRANSIENT_DELAYS, **_COMMON)
def regenerate_task(label: str, experiment_dir: str, judge_models: list[str], tier: str, subtest: str, run_number: int) -> list[str]:
    """Rebuild the missing or invalid result files of one run (pure JSON, no subprocess)."""
    paths = ExperimentPaths(Path(experiment_dir)).run(tier, subtest, run_number)
    written = regenerate_run(paths, judge_models)
    get_run_logger().info("%s: wrote %s", label, ", ".join(str(p.relative_to(paths.dir)) for p in written) or "nothing")
    return [str(p) for p in written]


@task(name="rerun_agent", task_run_name="{label}", **_COMMON)
def rerun_agent_task(label: str, experiment_dir: str, spec: AgentEvalSpec, tier: str, subtest: str, run_number: int) -> str:
    """Move the old run aside, run the agent again; raise if its files say it failed."""
    logger = get_run_logger()
    exp = ExperimentPaths(Path(experiment_dir))
    aside = set_aside_run(exp, tier, subtest, run_number)
    if aside is not None:
        logger.info("%s: earlier attempt moved to %s", label, aside)
    status = run_agent(exp, spec, tier, subtest, run_number)
    if status not in (RunStatus.COMPLETED, RunStatus.RESULTS):
        _, reason = classify_agent(exp.run(tier, subtest, run_number))
        raise RerunFailed(f"{label}: agent rerun ended {status.value}: {reason}")
    logger.info("%s: agent finished (%s)", label, status.value)
    return status.value


@task(name="rerun_judge", task_run_name="{label}", **_COMMON)
def rerun_judge_task(
    label: str, experiment_dir: str, spec: AgentEvalSpec, tier: str, subtest: str, run_number: int,
    slot: int, model: str, model_override: bool = False,
) -> str:
    """Move the old slot aside, run that judge again; raise if its files say it failed."""
    logger = get_run_logger()
    exp = ExperimentPaths(Path(experiment_dir))
    paths = exp.run(tier, subtest, run_number)
    aside = move_slot_aside(exp, tier, subtest, run_number, slot)
    if aside is not None:
        logger.info("%s: earlier attempt moved to %s", label, aside)
    status = run_judge(exp, spec, tier, subtest, run_number, slot, model, model_override=model_override)
    if status is not JudgeStatus.COMPLETE:
        why = classify_judge(paths.judge_slot(slot), model).reason
        if status is JudgeStatus.AGENT_FAILED:
            raise RuntimeError(f"{label}: the agent run is not finished, nothing to judge")  # not retried
        raise RerunFailed(f"{label}: judge {model} ended {status.value}: {why}")
    logger.info("%s: judged by %s%s", label, model, " (model override)" if model_override else "")
    return status.value


@task(name="finish_run", task_run_name="{label}", retries=TRANSIENT_RETRIES, retry_delay_seconds=TRANSIENT_DELAYS, **_COMMON)
def finish_run_task(label: str, experiment_dir: str, spec: AgentEvalSpec, tier: str, subtest: str, run_number: int) -> str:
    """Consensus, judge timing and run_result.json from the judgments now on disk."""
    exp = ExperimentPaths(Path(experiment_dir))
    finish_run(exp, spec, tier, subtest, run_number)
    status, reason = classify_agent(exp.run(tier, subtest, run_number))
    get_run_logger().info("%s: %s (%s)", label, status.value, reason)
    return status.value
