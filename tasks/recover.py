"""Prefect tasks of a recovery: regenerate a subtest's runs, rerun one agent, rerun one
judge slot, rebuild a subtest's consensus files. Each is a thin view over core calls;
the files decide whether it worked, and an earlier attempt is always moved aside,
never deleted.

Pure-JSON work runs in batches: regeneration one task run per tier (``regenerate T0``;
a large tier in chunks of whole subtests), in a helper process; consensus rebuilds one
per subtest (``consensus T0/00``, after that subtest's judges): a task run costs the
flow and its server more than the files it writes. A batch does every run it holds,
records each run's outcome, and fails at the end if any run failed, naming them
(``BatchFailed``). Agent and judge reruns stay one task run each: they take minutes.

Retries: a batch is retried only for transient I/O errors (a result file that cannot
be built will not build on a second try; the runs it already rebuilt are valid files
then and are left alone); an agent or judge rerun that ends failed is retried as the
experiment's spec says (``retries``), each retry moving the failed attempt aside first.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import Failed, State

from experiment_infra.processes import helpers
from experiment_infra.layout import ExperimentPaths
from experiment_infra.recovery.act import bring_home, move_slot_aside, set_aside_run
from experiment_infra.recovery.batch import BatchOutcome, RunNotDone, is_transient_io, regenerate_batch, run_batch
from experiment_infra.status.rules import JudgeStatus, RunStatus, agent_finished, classify_agent, classify_judge
from tasks.retries import retry_options
from tasks.stopping import not_started, unless_stopped

if TYPE_CHECKING:
    from experiment_infra.agent_eval import AgentEvalSpec

# The agent-evaluation machinery (git, workspaces: a fifth of a second to import) is
# imported by the reruns that use it: a recovery that only regenerates never needs it.

TRANSIENT_RETRIES = 2
TRANSIENT_FIRST_DELAY = 2.0  # then 4 s: about the old 1 + 5 s, backing off as every task does


class RerunFailed(RuntimeError):
    """An agent or judge ran again and its files say it failed: retried per the spec."""


def is_transient(exc: BaseException | None) -> bool:
    return isinstance(exc, RerunFailed) or is_transient_io(exc)


def worth_retrying(task: Any, task_run: TaskRun, state: State) -> bool:
    # A raised exception, or the one a returned Failed state carries, is the state's data.
    return unless_stopped(is_transient(state.data if isinstance(state.data, BaseException) else None))


def _failed(exc: RerunFailed | BatchFailed) -> State:
    # Returned, not raised: an expected failure (a rerun that failed, runs whose logs
    # cannot be regenerated) is one line in the task's log, not a traceback of this
    # module; Prefect still retries a returned Failed state that worth_retrying accepts.
    return Failed(message=str(exc), data=exc)


_COMMON: dict[str, Any] = dict(
    cache_policy=NO_CACHE,  # the truth is on disk; a cached result would hide a rerun
    persist_result=False,
    retry_condition_fn=worth_retrying,
)


class BatchFailed(RuntimeError):
    """Some runs of a batch failed for good; ``reasons`` maps each one's label to why."""

    def __init__(self, batch: str, reasons: dict[str, str]) -> None:
        self.batch, self.reasons = batch, dict(reasons)
        shown = "; ".join(f"{label}: {why}" for label, why in list(reasons.items())[:5])
        more = f" (and {len(reasons) - 5} more)" if len(reasons) > 5 else ""
        super().__init__(f"{batch}: {len(reasons)} run(s) failed: {shown}{more}")

    def __reduce__(self) -> tuple[Any, ...]:  # picklable (Dask workers hand it back)
        return (type(self), (self.batch, self.reasons))


def _settle(outcome: BatchOutcome) -> dict[str, str] | State:
    """A batch's outcome as its task run's: one log record with every run's line, the
    first transient error raised (the task's retry then redoes only what is still
    missing), a Failed state naming every run that failed for good."""
    # Sent to the UI only ("prefect.extra" has no console handler): the terminal has the task runs' states.
    extra = dict(get_run_logger().extra)
    logging.LoggerAdapter(logging.getLogger("prefect.extra"), extra).info("%s", outcome.log_text())
    if outcome.transient is not None:
        raise outcome.transient
    if outcome.failed:
        return _failed(BatchFailed(outcome.label, outcome.failed))
    return outcome.done


@task(
    name="regenerate", task_run_name="regenerate {label}",
    **retry_options(TRANSIENT_RETRIES, TRANSIENT_FIRST_DELAY), **_COMMON,
)
def regenerate_task(label: str, experiment_dir: str, judge_models: list[str], runs: list[tuple[str, str, int]]) -> dict[str, str] | State:
    """Rebuild the missing or invalid result files of ``runs`` (tier, subtest, run number):
    pure JSON, no subprocess, in a helper process (off the flow's GIL, beside the other batches)."""
    return _settle(helpers.call(regenerate_batch, label, experiment_dir, judge_models, [tuple(r) for r in runs]))


@task(name="rerun_agent", task_run_name="{label}", **_COMMON)
def rerun_agent_task(label: str, experiment_dir: str, spec: AgentEvalSpec, tier: str, subtest: str, run_number: int) -> str | State:
    """Move the old run aside, run the agent again; a Failed state if its files say it failed."""
    from experiment_infra.agent_eval import run_agent, stop_leftovers

    from .agent_eval import stderr_tail

    stopping = not_started(label)
    if stopping is not None:
        return stopping
    logger = get_run_logger()
    exp = ExperimentPaths(Path(experiment_dir))
    for stopped in stop_leftovers(bring_home(exp, tier, subtest, run_number)):
        logger.warning("%s: %s", label, stopped)
    aside = set_aside_run(exp, tier, subtest, run_number)
    if aside is not None:
        logger.info("%s: earlier attempt moved to %s", label, aside)
    status = run_agent(exp, spec, tier, subtest, run_number)
    if not agent_finished(status):
        paths = exp.run(tier, subtest, run_number)
        _, reason = classify_agent(paths)
        return _failed(RerunFailed(f"{label}: agent rerun ended {status.value}: {reason}{stderr_tail(paths.agent_stderr)}"))
    logger.info("%s: agent finished (%s)", label, status.value)
    return status.value


@task(name="rerun_judge", task_run_name="{label}", **_COMMON)
def rerun_judge_task(
    label: str, experiment_dir: str, spec: AgentEvalSpec, tier: str, subtest: str, run_number: int,
    slot: int, model: str, model_override: bool = False,
) -> str | State:
    """Move the old slot aside, run that judge again; a Failed state if its files say it failed."""
    from experiment_infra.agent_eval import run_judge, stop_judge_leftovers

    from .agent_eval import stderr_tail

    stopping = not_started(label)
    if stopping is not None:
        return stopping
    logger = get_run_logger()
    exp = ExperimentPaths(Path(experiment_dir))
    paths = bring_home(exp, tier, subtest, run_number)
    for stopped in stop_judge_leftovers(paths.judge_slot(slot)):
        logger.warning("%s: %s", label, stopped)
    aside = move_slot_aside(exp, tier, subtest, run_number, slot)
    if aside is not None:
        logger.info("%s: earlier attempt moved to %s", label, aside)
    status = run_judge(exp, spec, tier, subtest, run_number, slot, model, model_override=model_override)
    if status is not JudgeStatus.COMPLETE:
        why = classify_judge(paths.judge_slot(slot), model).reason
        if status is JudgeStatus.AGENT_FAILED:
            raise RuntimeError(f"{label}: the agent run is not finished, nothing to judge")  # not retried
        return _failed(RerunFailed(f"{label}: judge {model} ended {status.value}: {why}{stderr_tail(paths.judge_slot(slot).stderr)}"))
    logger.info("%s: judged by %s%s", label, model, " (model override)" if model_override else "")
    return status.value


@task(
    name="finish_runs", task_run_name="consensus {label}",
    **retry_options(TRANSIENT_RETRIES, TRANSIENT_FIRST_DELAY), **_COMMON,
)
def finish_runs_task(
    label: str, experiment_dir: str, spec: AgentEvalSpec, tier: str, subtest: str, run_numbers: list[int]
) -> dict[str, str] | State:
    """Consensus, judge timing and run_result.json of some runs of one subtest, from the
    judgments now on disk. A run whose agent is not finished is left alone (its agent
    rerun failed; nothing to rebuild from), and a run left without valid result files (no
    valid judgment to rebuild from) is one the batch did not do: either fails the task run."""
    from experiment_infra.agent_eval import finish_run

    exp = ExperimentPaths(Path(experiment_dir))

    def one(tier: str, subtest: str, number: int) -> str:
        paths = bring_home(exp, tier, subtest, number)
        status, reason = classify_agent(paths)
        if not agent_finished(status):
            raise RunNotDone(f"not rebuilt: the agent run is {status.value} ({reason})")
        finish_run(exp, spec, tier, subtest, number)
        status, reason = classify_agent(paths)
        if status is not RunStatus.COMPLETED:
            raise RunNotDone(f"not rebuilt: {reason}")
        return f"{status.value} ({reason})"

    return _settle(run_batch(label, [(tier, subtest, n) for n in run_numbers], one))


@task(name="wait_for_limit", task_run_name="wait for the rate limit ({seconds:.0f} s)", **_COMMON)
def wait_for_limit_task(seconds: float) -> float:
    """Wait until the limit that stopped some runs should have lifted (``recovery.limits``):
    their reruns start after it, one at a time."""
    import time

    get_run_logger().info("waiting %.0f s for the rate limit to lift before rerunning what it stopped", seconds)
    time.sleep(max(0.0, seconds))
    return seconds
