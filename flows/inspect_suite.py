"""Inspect mode of ``run_suite``: each case is an Inspect eval logging flat into
``results/{experiment}/``; there is no run directory and nothing to resume."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefect import get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.futures import PrefectFuture, as_completed
from prefect.task_runners import ThreadPoolTaskRunner

from experiment_infra.running.inspect_mode import InspectPlan, check_inspect, format_inspect_plan, plan_inspect_suite
from experiment_infra.layout import inspect_lock, inspect_logs_for
from experiment_infra.files.lock import acquire_lock
from experiment_infra.status.inspect import classify_inspect_case
from experiment_infra.suites.suite import Suite
from experiment_infra.reports.ui_limits import capped_rows
from flows.artifacts import artifact_key, publish_run_markdown
from flows.progress import Progress
from tasks.retries import retry_options
from tasks.run_case import CaseFailed, run_inspect_case_task

if TYPE_CHECKING:  # run_suite imports this module when a suite's mode is inspect
    from flows.suite_summary import SuiteSummary

def run_inspect(
    suite: Suite,
    *,
    dry_run: bool,
    parallelism: int | None,
    resume: str | None,
    results_root: str,
    variants: list[str] | None = None,
) -> Any:
    from flows.run_suite import label_suite_run
    from flows.suite_summary import CaseRow, SuiteSummary

    logger = get_run_logger()
    check_inspect(suite, resume, results_root)
    plan = plan_inspect_suite(suite, results_root, variants=variants)
    label_suite_run(suite, plan.log_dir.name + (" (dry run)" if dry_run else ""))
    if dry_run:
        print(format_inspect_plan(plan))
        return SuiteSummary(suite.experiment_name, str(plan.log_dir), dry_run=True)
    task = run_inspect_case_task.with_options(
        **retry_options(suite.retries, suite.retry_delay_seconds), tags=list(suite.task_tags)
    )
    futures: list[PrefectFuture[Any]] = []
    key = artifact_key(suite.experiment_name)
    # One runner per experiment, as in every mode: two would share each variant's run record
    # and claim each other's logs (a recovery's rerun takes it through this flow too).
    inspect_lock(plan.log_dir).parent.mkdir(parents=True, exist_ok=True)
    with acquire_lock(inspect_lock(plan.log_dir), what=f"inspect experiment {plan.log_dir}"), \
            ThreadPoolTaskRunner(max_workers=parallelism or len(plan.cases)) as runner, \
            Progress(len(plan.cases), f"{key}-progress") as progress:
        for case in plan.cases:
            params = dict(variant_name=case.variant_name, planned=case, log_dir=plan.log_dir,
                          timeout_seconds=suite.timeout_seconds)
            futures.append(runner.submit(task, parameters=params))
        for done in as_completed(futures):
            done.wait()  # settles its final state locally (no server read)
            progress.advance(failed=not done.state.is_completed())
    rows = []
    for case, future in zip(plan.cases, futures):
        # The disk decides, as it does for a recovery: the case's run record and its log.
        now = classify_inspect_case(plan.log_dir, case.variant_name)
        reason = now.reason
        outcome = future.result(raise_on_failure=False)
        if isinstance(outcome, BaseException) and not isinstance(outcome, CaseFailed):
            reason = f"{type(outcome).__name__}: {outcome}"  # the task itself broke: say how
        logs = inspect_logs_for(plan.log_dir, case.variant_name)
        record = now.record
        rows.append(CaseRow(
            case.variant_name, now.status.value, record.duration_seconds if record else None,
            record.exit_code if record else None, record.attempt if record else None,
            str(logs[-1]) if logs else "", reason,
        ))
    summary = SuiteSummary(suite.experiment_name, str(plan.log_dir), rows=tuple(rows), resumable=False)
    print(summary.format())
    _publish(plan, summary, key)
    logger.info("%d case(s) logged to %s", len(rows), plan.log_dir)
    return summary.final_state()


def _publish(plan: InspectPlan, summary: SuiteSummary, key: str) -> None:
    table = [{"variant": r.variant, "status": r.status, "log": r.output_dir, "reason": r.reason} for r in summary.rows]
    counts = summary.counts_text()
    table = capped_rows(table, f"the logs in {plan.log_dir}")  # a large suite: a summary, not every row
    create_table_artifact(table, key=f"{key}-cases", description=f"{plan.suite.experiment_name}: {counts}")
    lines = [f"- open with `inspect view --log-dir {plan.log_dir}`", f"- cases: {counts}"]
    publish_run_markdown(f"{key}-run", f"{plan.suite.experiment_name} (inspect)", plan.log_dir, lines, results_git=plan.git)
