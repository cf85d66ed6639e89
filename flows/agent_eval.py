"""Run an agent-evaluation suite inside the ``run_suite`` flow.

Scheduling happens in the flow thread, never inside a task: at most ``-p`` task runs
are in flight, and a finished agent run's judges go ahead of agent runs still
waiting, so judging starts as soon as each agent finishes (not after all of them)
and no worker thread ever blocks waiting for another task (no pool deadlock).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.futures import PrefectFuture, as_completed
from prefect.states import State

from experiment_infra.agent_eval import (
    AgentEvalSuite,
    ExperimentPlan,
    PlannedRun,
    finish_run,
    format_plan,
    plan_experiment,
    start_experiment,
)
from experiment_infra.processes.interrupt import stop_requested
from experiment_infra.files.lock import acquire_lock
from experiment_infra.records import RunResult, read_record
from experiment_infra.recovery.regenerate import regenerate_run
from experiment_infra.running.slurm import SlurmWorkers
from experiment_infra.status.rules import RunStatus, classify_run
from experiment_infra.reports.ui_limits import capped_lines, capped_rows
from flows.artifacts import label_flow_run, publish_run_markdown, show
from flows.final_state import final_state
from flows.housekeeping import report_swept
from flows.progress import Progress
from flows.report import rebuild_reports_step
from flows.task_runners import build_task_runner, wants_dask
from tasks.agent_eval import RunFailed, agent_run_task, judge_slot_task
from tasks.retries import retry_options

@dataclass(frozen=True)
class RunRow:
    run: str
    status: str
    judges: str
    score: float | None
    grade: str | None
    reason: str  # empty only for a completed run whose every judge slot is complete


@dataclass(frozen=True)
class AgentEvalSummary:
    """What an agent-evaluation run left on disk (the ``run_suite`` flow's result)."""

    experiment_name: str
    experiment_dir: str
    dry_run: bool = False
    rows: tuple[RunRow, ...] = ()
    errors: tuple[str, ...] = ()  # met outside the runs' own files: a record not rebuilt, the report rebuild

    @property
    def failed(self) -> list[RunRow]:
        return [r for r in self.rows if r.reason]

    @property
    def run_dir(self) -> str:  # what a command's --resume line names
        return self.experiment_dir

    @property
    def ok(self) -> bool:
        return not self.failed and not self.errors

    def final_state(self) -> State:
        """``Completed``, or ``Failed`` naming each run that is not complete and each error."""
        parts = [f"{len(self.failed)} of {len(self.rows)} run(s) not complete"] if self.failed else []
        parts += [f"{len(self.errors)} error(s)"] if self.errors else []
        return final_state(
            self, done=f"{len(self.rows)} run(s) completed" + (" (dry run)" if self.dry_run else ""),
            headline=", ".join(parts), reasons=[f"{r.run} {r.status}: {r.reason}" for r in self.failed] + list(self.errors),
        )


def _retry_options(plan: ExperimentPlan) -> dict[str, Any]:
    return retry_options(plan.spec.retries, plan.spec.retry_delay_seconds)


def _execute(plan: ExperimentPlan, parallelism: int, dask: dict[str, Any] | None = None) -> list[str]:
    """Run every agent and judge the plan needs; returns errors met outside the tasks."""
    key = re.sub(r"[^a-z0-9-]+", "-", plan.suite.experiment_name.lower()).strip("-") or "agent-eval"
    with Progress(sum(1 for r in plan.runs if not r.done), f"{key}-progress", "runs") as progress:
        return _execute_with(plan, parallelism, dask, progress)


def _execute_with(plan: ExperimentPlan, parallelism: int, dask: dict[str, Any] | None, progress: Progress) -> list[str]:
    logger = get_run_logger()
    exp_dir, spec, options = str(plan.exp.dir), plan.spec, _retry_options(plan)
    agents: deque[PlannedRun] = deque(r for r in plan.runs if r.needs_agent)
    judges: deque[tuple[PlannedRun, int, str]] = deque()
    outstanding: dict[str, int] = {}
    errors: list[str] = []

    def finish(run: PlannedRun) -> None:
        try:
            if run.regenerate:  # only derived files were missing or invalid: those alone, as a recovery writes them
                regenerate_run(run.paths, list(spec.judge_models))
            else:  # its judges ran: consensus and run_result.json from the judgments now on disk
                finish_run(plan.exp, spec, run.tier, run.subtest, run.run_number)
        except (OSError, ValueError) as exc:  # a record that cannot be rebuilt: report, keep going
            errors.append(f"{run.name}: {type(exc).__name__}: {exc}")
            progress.advance(failed=True)
        else:
            progress.advance(failed=classify_run(run.paths, list(spec.judge_models)).status is not RunStatus.COMPLETED)

    def queue_judges(run: PlannedRun) -> None:
        if not run.judges:
            finish(run)
            return
        outstanding[run.name] = len(run.judges)
        judges.extend((run, slot, model) for slot, model in run.judges)

    for run in plan.runs:
        if not run.needs_agent and not run.done:
            queue_judges(run)

    running: dict[PrefectFuture[Any], tuple[PlannedRun, int | None]] = {}
    with build_task_runner(parallelism, default_parallelism=parallelism, logs=plan.exp.slurm_logs, **(dask or {})) as runner:
        while running or ((agents or judges) and not stop_requested()):  # a stopped run starts nothing more
            while len(running) < parallelism and (judges or agents) and not stop_requested():
                if judges:
                    run, slot, model = judges.popleft()
                    name = f"{run.name}/{run.paths.judge_slot(slot).dir.name}"
                    params = dict(exp_dir=exp_dir, spec=spec, tier=run.tier, subtest=run.subtest,
                                  run_number=run.run_number, slot=slot, model=model)
                    future = runner.submit(judge_slot_task.with_options(task_run_name=name, **options), parameters=params)
                    running[future] = (run, slot)
                else:
                    run = agents.popleft()
                    params = dict(exp_dir=exp_dir, spec=spec, tier=run.tier, subtest=run.subtest, run_number=run.run_number)
                    future = runner.submit(agent_run_task.with_options(task_run_name=run.name, **options), parameters=params)
                    running[future] = (run, None)
            done = next(as_completed(list(running)))
            run, slot = running.pop(done)
            outcome = done.result(raise_on_failure=False)
            if isinstance(outcome, BaseException) and not isinstance(outcome, RunFailed):
                errors.append(f"{run.name}{'' if slot is None else f' judge {slot}'}: {type(outcome).__name__}: {outcome}")
            if slot is None:
                if done.state.is_completed():
                    queue_judges(run)
                else:
                    logger.warning("%s: agent run failed; its judges will not run", run.name)
                    progress.advance(failed=True)
                continue
            outstanding[run.name] -= 1
            if outstanding[run.name] == 0:
                finish(run)
    return errors


def _rows(plan: ExperimentPlan) -> list[RunRow]:
    rows = []
    for run in plan.runs:
        now = classify_run(run.paths, list(plan.spec.judge_models))
        judges = " ".join(j.status.value for j in now.judges)
        result = read_record(run.paths.run_result, RunResult).record
        failing = [f"{j.slot}: {j.reason}" for j in now.judges_needing_work]
        reason = "" if now.status is RunStatus.COMPLETED else now.reason
        if failing:
            reason = "; ".join([reason] * bool(reason) + [f"judge {f}" for f in failing])
        rows.append(RunRow(run.name, now.status.value, judges, result.judge_score if result else None,
                           result.judge_grade if result else None, reason))
    return rows


def _publish(plan: ExperimentPlan, rows: list[RunRow], errors: list[str]) -> str:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    key = re.sub(r"[^a-z0-9-]+", "-", plan.suite.experiment_name.lower()).strip("-") or "agent-eval"
    table = [
        {"run": r.run, "status": r.status, "judges": r.judges, "score": r.score, "grade": r.grade, "reason": r.reason}
        for r in rows
    ]
    table += [{"run": "(flow)", "status": "error", "judges": "", "score": None, "grade": None, "reason": e} for e in errors]
    # A large experiment's artifacts are summaries (the server refuses an event over 1.5 MB).
    table = capped_rows(sorted(table, key=lambda row: not row["reason"]), f"the reports in {plan.exp.dir}")
    create_table_artifact(table, key=f"{key}-runs", description=f"{plan.exp.dir}: {summary}")
    failing = capped_lines([f"  - **{r.run}** {r.status}: {r.reason}" for r in rows if r.reason], "the runs table artifact")
    failing += [f"  - error: {e}" for e in errors]
    publish_run_markdown(f"{key}-run", plan.suite.experiment_name, plan.exp.dir, [f"- runs: {summary}", *failing], results_git=plan.git)
    width = max(len(r.run) for r in rows)
    lines = [f"{plan.suite.experiment_name}: {len(rows)} run(s): {summary}", f"experiment directory: {plan.exp.dir}"]
    for r in rows:
        score = f"{r.score:.3f} {r.grade}" if r.score is not None else "-"
        lines.append(f"  {r.run:<{width}}  {r.status:<9}  {score:<9}  judges: {r.judges}  {r.reason}")
    lines += [f"  error: {e}" for e in errors]
    return "\n".join(lines)


def run_agent_eval(
    suite: AgentEvalSuite,
    *,
    suite_path: str | None = None,
    dry_run: bool = False,
    parallelism: int | None = None,
    resume: str | None = None,
    results_root: str = "results",
    dask_address: str | None = None,
    dask_workers: int | None = None,
    slurm: SlurmWorkers | None = None,
) -> State:
    """Run (or with ``dry_run`` only show) an agent-evaluation suite; its final state:
    ``Completed`` when every run and judge slot is complete on disk, else ``Failed`` with the reasons.

    Must be called inside a flow (``run_suite``): it submits one task run per agent
    run and per judge slot.
    """
    logger = get_run_logger()
    plan = plan_experiment(suite, results_root=results_root, resume=resume, suite_path=suite_path)
    tags = [plan.suite.experiment_name, "agent_eval"]
    if dry_run:
        label_flow_run(f"{plan.suite.experiment_name} {plan.exp.dir.name} (dry run)", tags)
        text = format_plan(plan)
        show(text)
        return AgentEvalSummary(plan.suite.experiment_name, str(plan.exp.dir), dry_run=True).final_state()
    # Bounded by default: 200 runs must not mean 200 agent CLIs against one API at once.
    # On a Dask cluster its worker threads bound the concurrency instead (docs/scale-out.md).
    on_dask = wants_dask(dask_address, dask_workers, slurm)
    width = parallelism or (max(1, sum(1 for r in plan.runs if r.needs_agent or r.judges)) if on_dask else suite.default_parallelism)
    # A recovery (or a second resume) working on this directory meanwhile would take
    # runs in progress for partial ones and move them aside.
    if not plan.resumed:
        start_experiment(plan, width)  # a new directory: nobody else can be in it yet
    with acquire_lock(plan.exp.lock, what=f"experiment {plan.exp.dir}"):
        if plan.resumed:
            report_swept(plan.exp.dir, [r.paths for r in plan.runs if not r.done])
            start_experiment(plan, width)
        label_flow_run(f"{plan.suite.experiment_name} {plan.exp.dir.name}", tags)
        todo = [r for r in plan.runs if not r.done]
        logger.info("%s %s: %d run(s) to do of %d", "resuming" if plan.resumed else "created", plan.exp.dir, len(todo), len(plan.runs))
        errors = _execute(plan, width, dict(dask_address=dask_address, dask_workers=dask_workers, slurm=slurm))
        if todo:  # reports are views of the runs: nothing ran, nothing to rebuild
            errors += rebuild_reports_step(plan.exp.dir)
    rows = _rows(plan)
    print(_publish(plan, rows, errors))
    return AgentEvalSummary(plan.suite.experiment_name, str(plan.exp.dir), rows=tuple(rows), errors=tuple(errors)).final_state()
