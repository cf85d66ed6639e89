"""Prefect flow ``run_suite``: run every case of a suite file, one task run per case.

    python flows/run_suite.py experiments/<name>/suite_<name>.py [--dry-run] [-p N] [--resume RUN_DIR]

The flow takes only a path (plus flags), so the command line, a deployment and the
Prefect UI start exactly the same thing. Files on disk are the record of each case;
the table artifact and the printed summary are read back from them.
"""

from __future__ import annotations

if __name__ == "__main__":
    # Run as a script, sys.path[0] is flows/ (whose modules would shadow top-level
    # names) and the repository root, which holds flows/ and tasks/, may be missing.
    # Fix that before any import, then run the importable module, not a __main__ copy.
    import sys
    from pathlib import Path

    sys.path[0] = str(Path(__file__).resolve().parents[1])
    from experiment_cli.common import run_main
    from experiment_cli.run_suite import main

    run_main(lambda: main(sys.argv[1:], prog="flows/run_suite.py"))

from pathlib import Path
from typing import Any, Callable

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.futures import PrefectFuture, as_completed
from prefect.runtime import flow_run
from prefect.states import Completed, State

from experiment_infra.processes.failures import RetryPolicy
from experiment_infra.running.budget import FailureBudget
from experiment_infra.layout import NOGIT
from experiment_infra.running.resources import check_max_failures, failure_budget
from experiment_infra.files.lock import acquire_lock
from experiment_infra.suites.preflight import check_parallelism, gpus_for_run, pool_for_cases
from experiment_infra.records import CaseMetrics, read_record
from experiment_infra.reports.params import params_by_case
from experiment_infra.running.services import chosen_cluster
from experiment_infra.running.slurm import plan_slurm_gpus
from experiment_infra.running.slurm import SlurmWorkers
from experiment_infra.suites.reuse import reuse_case
from experiment_infra.running.runner import case_config
from experiment_infra.status.rules import CaseStatus, classify_case
from experiment_infra.status.attempts import attempt_failures
from experiment_infra.reports.ui_limits import capped_lines, capped_rows
from experiment_infra.running.worker_devices import DaskGpus, devices_label
from experiment_infra.suites.suite import (
    Suite,
    SuiteError,
    SuitePlan,
    format_plan,
    load_suite,
    plan_suite,
    start_run,
)
from flows.artifacts import artifact_key, label_flow_run, publish_run_markdown
from flows.suite_summary import REUSED, CaseRow, SuiteSummary
from flows.housekeeping import report_swept
from flows.killed_worker import settle_killed_task
from flows.progress import Progress, gpus_busy
from flows.report import rebuild_reports_step
from flows.stopping import cancelled_if_stopped, stoppable, stop_file_written
from flows.task_runners import build_task_runner, check_dask, gpu_annotation, ship_by_value, wants_dask
from tasks.retries import retry_options
from tasks.run_case import NOT_STARTED, SKIPPED, CaseFailed, CaseResources, retry_condition, run_case_task


def label_suite_run(suite: Suite, where: str) -> None:
    """Name the flow run after the experiment and where its results go, and tag it."""
    label_flow_run(f"{suite.experiment_name} {where}", [suite.experiment_name, suite.mode])


# --------------------------------------------------------------------------- modes


def _run_standard(
    suite: Suite, *, dry_run: bool, parallelism: int | None, resume: str | None, results_root: str,
    dask_address: str | None = None, dask_workers: int | None = None, slurm: SlurmWorkers | None = None,
    gpus: str | None = None, max_failures: int | float | None = None, allow_code_change: bool = False,
    reuse: bool = False,
) -> SuiteSummary | State:
    logger = get_run_logger()
    key = (str(suite.suite_file), results_root, resume, allow_code_change, reuse, dry_run)
    plan = _early_plans.pop(key, None) or plan_suite(
        suite, results_root, resume, allow_code_change=allow_code_change, reuse=reuse, identities=not dry_run
    )
    for warning in plan.warnings():
        logger.warning("%s", warning.removeprefix("warning: "))
    on_dask = wants_dask(dask_address, dask_workers, slurm)
    gpu_plan = gpus_for_run(suite, gpus, parallelism, plan, dask_address, dask_workers, slurm)  # the cases that will run
    if dry_run:
        print(format_plan(plan, gpu_plan))
        logger.info("dry run: %d case(s) planned in %s; nothing written", len(plan.cases), plan.run.dir)
        label_suite_run(suite, plan.run.dir.name + " (dry run)")
        return SuiteSummary(suite.experiment_name, str(plan.run.dir), dry_run=True)
    pool = pool_for_cases(gpu_plan, dask_address)  # on Dask: a stand-in for each worker's own devices
    if slurm is not None and isinstance(gpu_plan, DaskGpus) and gpu_plan.uses_gpus:  # the jobs ask for --gres=gpu:K,
        check_dask(None, None, slurm := plan_slurm_gpus(suite, gpus, slurm)[1])  # which Slurm would give: sbatch --test-only
    if plan.git.short == NOGIT:
        logger.warning("%s is not in a git repository with commits; results are tagged %s", suite.suite_file, NOGIT)
    if not plan.resumed:
        start_run(plan)  # creates the directory its lock lives in; a resume updates its manifest under the lock
    label_suite_run(suite, plan.run.dir.name)
    logger.info("%s %s: %d case(s)", "resuming" if plan.resumed else "created", plan.run.dir, len(plan.cases))

    policy = RetryPolicy(
        retries=suite.retries, retry_on=suite.retry_on, retry_on_exit_codes=suite.retry_on_exit_codes
    )
    to_run = [p for p in plan.cases if not (p.reuse is not None and p.reuse.reused)]
    budget = FailureBudget(
        failure_budget(max_failures if max_failures is not None else suite.max_failures, len(to_run)),
        marker=plan.run.budget_file,  # what a case on a Dask or Slurm worker sees (an event cannot travel)
    )
    task = run_case_task.with_options(
        **retry_options(suite.retries, suite.retry_delay_seconds), tags=list(suite.task_tags),
        retry_condition_fn=retry_condition(policy, None if on_dask else budget.spent, plan.run.budget_file),
        on_failure=[lambda task, run, state: budget.record_failure()],  # a failure for good: retries are spent
    )
    futures: list[PrefectFuture[Any] | None] = []  # None: reused, not run
    # Two runs resuming the same directory would run its cases twice at once.
    with acquire_lock(plan.run.lock, what=f"run directory {plan.run.dir}"):
        if plan.resumed:
            start_run(plan)  # a new code version or added cases go into the manifest only now, under the lock
            report_swept(plan.run.dir)
        plan.run.budget_file.unlink(missing_ok=True)  # an earlier run's spent budget: this one runs the rest
        for p in plan.cases:  # linking files is not worth a task run each
            if p.reuse is not None and p.reuse.source is not None:
                reuse_case(p.paths, case_config(p.case, p.paths).to_json_dict(), p.reuse.source)
        remote = wants_dask(dask_address, dask_workers, slurm)
        if remote:
            ship_by_value(p.case.config for p in plan.cases)  # config classes live next to the suite file
        runner_of = build_task_runner(
            parallelism, dask_address=dask_address, dask_workers=dask_workers, slurm=slurm, logs=plan.run.slurm_logs,
            default_parallelism=max(1, len(to_run)), worker_devices=gpu_plan if isinstance(gpu_plan, DaskGpus) else None,
        )
        progress_key = f"{artifact_key(suite.experiment_name)}-progress"
        # Its text names the busy devices of this machine's pool (none on Dask: each worker holds its own).
        with runner_of as runner, Progress(len(to_run), progress_key, devices=gpus_busy(pool)) as progress, \
                stop_file_written(plan.run.stop_file, remote):
            for p in plan.cases:
                if p.reuse is not None and p.reuse.reused:
                    futures.append(None)
                    continue
                gpus_wanted, cpus_wanted = suite.requests(p.case, gpu_plan.default_gpus)
                params = dict(
                    variant_name=p.variant_name, planned=p, entry_point=suite.entry_point,
                    timeout_seconds=suite.timeout_seconds,
                    # On Dask the budget's event cannot travel: cases there read its file (budget=marker above).
                    resources=CaseResources(pool, gpus_wanted, cpus_wanted, None if remote else budget.spent, suite.retry_on,
                                            suite.retries),
                )
                with gpu_annotation(gpus_wanted if remote else 0.0):  # Dask runs it on a worker with the GPUs free
                    futures.append(runner.submit(task, parameters=params))
            planned_of = {id(f): p for p, f in zip(plan.cases, futures) if f is not None}
            for done in as_completed([f for f in futures if f is not None]):
                done.wait()  # settles its final state locally (no server read)
                if remote:
                    settle_killed_task(done, planned_of[id(done)])  # Dask gave up on it: its files say how it ended
                progress.advance(failed=not done.state.is_completed())
                if remote and done.state.is_failed():
                    budget.record_failure()  # the hook ran on a worker, with a budget of its own
        plan.run.budget_file.unlink(missing_ok=True)  # read by this run's cases only; the summary says it
    if budget.spent.is_set():
        logger.warning("failure budget spent: %d case(s) failed (max_failures %s); no new case started", budget.failed, budget.limit)

    rows = tuple(_rows(plan, futures))
    # The metrics table and plot, in the UI too; a rebuild that fails fails the run, as in every mode.
    errors = tuple(rebuild_reports_step(plan.run.dir))
    summary = SuiteSummary(
        suite.experiment_name, str(plan.run.dir), rows=rows, errors=errors,
        budget_spent=budget.failed if budget.spent.is_set() else None, not_in_suite=plan.not_in_suite,
    )
    print(summary.format())
    _publish(plan, summary)
    return summary.final_state()


def _run_inspect(suite: Suite, **options: Any) -> Any:
    # Imported on use: inspect mode (and its optional dependency) costs nothing otherwise.
    from flows.inspect_suite import run_inspect

    return run_inspect(suite, **options)


MODE_RUNNERS: dict[str, Callable[..., Any]] = {"standard": _run_standard, "inspect": _run_inspect}


def _runner_for(suite: Suite) -> Callable[..., Any]:
    runner = MODE_RUNNERS.get(suite.mode)
    if runner is None:
        where = suite.suite_file.name if suite.suite_file else "suite"
        raise SuiteError(f"{where}: mode {suite.mode!r} is not supported by run_suite ({', '.join(MODE_RUNNERS)})")
    return runner


# ------------------------------------------------------------------------ summary


def _rows(plan: SuitePlan, futures: list[PrefectFuture[Any] | None]) -> list[CaseRow]:
    rows = []
    for p, future in zip(plan.cases, futures):
        now = classify_case(p.paths)
        record = now.record
        reason = now.reason
        state = future.state if future is not None else Completed(name=REUSED)
        if future is None:
            reason = f"reused from {record.reused_from}" if record is not None and record.reused_from else reason
        elif state.name == SKIPPED:
            reason = f"skipped: completed in an earlier run ({now.reason})"
        elif state.name == NOT_STARTED or (state.is_cancelled() and (record is None or record.interrupted is None)):
            reason = state.message or "not started"  # never started: the budget was spent or the run stopped first
        elif state.is_failed():
            exc = future.result(raise_on_failure=False)
            if isinstance(exc, BaseException) and not isinstance(exc, CaseFailed):
                reason = f"{type(exc).__name__}: {exc}"
        status = now.status.value  # the disk decides; the Prefect state only adds why a task broke
        if status == CaseStatus.COMPLETED.value and state.name not in (SKIPPED, REUSED) and not state.is_failed():
            reason = ""  # a success needs no reason ("exit code 0" only pushed the real ones aside)
        rows.append(
            CaseRow(
                variant=p.variant_name,
                status=status,
                duration_seconds=record.duration_seconds if record else None,
                exit_code=record.exit_code if record else None,
                attempt=record.attempt if record else None,
                output_dir=str(p.paths.dir),
                reason=reason,
                code=record.code.label if record is not None and record.code is not None else "",
                devices=devices_label(record.host, record.gpus) if record is not None else "",
                # Every attempt's class, a completed case's too: "signal, -" says attempt 1 was killed.
                failures=attempt_failures(p.paths, record),
            )
        )
    return rows


def _relative(path: str, base: Path) -> str:
    try:
        return str(Path(path).relative_to(base)) or "."
    except ValueError:
        return path


def _params_and_metrics(plan: SuitePlan, rows: list[CaseRow]) -> dict[str, dict[str, Any]]:
    """Per case, the config fields that differ between the cases, then a completed case's metrics."""
    out = params_by_case({p.variant_name: p.case.config.to_json_dict() for p in plan.cases})
    for r in rows:
        if r.status == CaseStatus.COMPLETED.value:
            found = read_record(plan.run.case(r.variant).metrics, CaseMetrics).record
            out.setdefault(r.variant, {}).update(found.numbers() if found is not None else {})
    return out


def _publish(plan: SuitePlan, summary: SuiteSummary) -> None:
    key = artifact_key(plan.suite.experiment_name)
    # What failed and why first: reason beside the status, failed rows on top, paths short.
    on_devices = any(row.devices for row in summary.rows)  # a column only for a run that handed devices out
    table = [
        {
            "variant": r.variant,
            "status": r.status,
            "reason": r.reason,
            # each attempt's failure class, as recovery shows it; only once some attempt failed
            **({"failures": r.failures_text} if summary.any_failures else {}),
            "duration_s": round(r.duration_seconds, 1) if r.duration_seconds is not None else None,
            "exit_code": r.exit_code,
            "attempt": r.attempt,
            "code": r.code,
            **({"devices": r.devices} if on_devices else {}),
            "output_dir": _relative(r.output_dir, plan.run.dir),
        }
        for r in summary.failed_first()
    ]
    # A large run's artifact is a summary, its first rows (the server refuses an event
    # over 1.5 MB); the full table is the run's report.md. Beside each case: the config
    # fields that differ between the cases, then its metrics.
    table = capped_rows(table, str(plan.run.report_md))
    extra = _params_and_metrics(plan, [r for r in summary.failed_first()[:len(table)]])
    columns = dict.fromkeys(k for row in table for k in (*row, *extra.get(row.get("variant", ""), {})))
    table = [{k: {**extra.get(row.get("variant", ""), {}), **row}.get(k) for k in columns} for row in table]
    counts = summary.counts_text()
    create_table_artifact(table, key=f"{key}-cases", description=f"{plan.suite.experiment_name}: {counts}")
    lines = [f"- suite file: `{plan.suite.suite_file}`", f"- entry point: `{plan.suite.entry_point}`"]
    if plan.resumed:
        lines.append("- resumed: cases completed earlier were skipped")
    if plan.added:
        lines.append(f"- added to the run: {', '.join(p.variant_name for p in plan.added)}")
    if plan.not_in_suite:
        lines.append(f"- not in the suite (left on disk, not run): {', '.join(plan.not_in_suite)}")
    reused = [p.variant_name for p in plan.cases if p.reuse is not None and p.reuse.reused]
    if reused:
        lines.append(f"- reused from earlier runs (not run): {len(reused)} case(s)")
    if plan.git.patch_file:
        lines.append(f"- uncommitted changes: `{plan.run.dir / plan.git.patch_file}`")
    check = plan.code_check
    if check is not None and check.new_version is not None:
        lines.append(f"- code changed on resume: code version {check.version} is `{check.new_version.short}`"
                     + (f" (patch `{check.new_version.patch_file}`)" if check.new_version.patch_file else ""))
    lines.append(f"- cases: {counts}")
    lines += capped_lines([f"  - **{r.variant}** {r.status}: {r.reason_and_failures}" for r in summary.failed], str(plan.run.report_md))
    lines += [f"  - error: {e}" for e in summary.errors]
    publish_run_markdown(f"{key}-run", plan.suite.experiment_name, plan.run.dir, lines, results_git=plan.git)


# --------------------------------------------------------------------------- flow


# A standard-mode run is planned when its flow run is named, so the name the console
# shows from the first line ("Beginning flow run 'digits 20261206_183016_caf1b44'") is
# the one the UI lists; the flow's body takes that plan instead of making another.
_early_plans: dict[tuple[str, str, str | None, bool, bool, bool], SuitePlan] = {}


def _flow_run_name() -> str:
    params = flow_run.parameters
    path = str(params.get("suite_path") or "")
    fallback = f"run_suite {Path(path).name}"
    try:
        suite = load_suite(path)
        if not isinstance(suite, Suite) or suite.mode != "standard":
            return fallback  # renamed once its directory is known (label_suite_run)
        results_root, resume = str(params.get("results_root") or "results"), params.get("resume")
        allow_code_change = bool(params.get("allow_code_change"))
        reuse, dry_run = bool(params.get("reuse")), bool(params.get("dry_run"))
        plan = plan_suite(
            suite, results_root, resume, allow_code_change=allow_code_change, reuse=reuse, identities=not dry_run
        )
    except Exception:  # bad input: the flow's body says what is wrong
        return fallback
    _early_plans.clear()  # one flow run at a time is named, then run
    _early_plans[(str(suite.suite_file), results_root, resume, allow_code_change, reuse, dry_run)] = plan
    return f"{suite.experiment_name} {plan.run.dir.name}{' (dry run)' if params.get('dry_run') else ''}"


@flow(name="run_suite", flow_run_name=_flow_run_name, validate_parameters=True)
def run_suite(
    suite_path: str,
    dry_run: bool = False,
    parallelism: int | None = None,
    resume: str | None = None,
    results_root: str = "results",
    dask_address: str | None = None,
    dask_workers: int | None = None,
    slurm: SlurmWorkers | None = None,
    variants: list[str] | None = None,
    gpus: str | None = None,
    max_failures: float | None = None,
    allow_code_change: bool = False,
    reuse: bool = False,
) -> Any:
    """Run the suite file at ``suite_path`` (``-p`` bounds concurrent cases; default: all).

    ``allow_code_change``: resume a run directory on code other than the code it last ran
    on (refused otherwise); the manifest records it as a new code version.
    ``reuse``: a case whose identity matches a completed case of an earlier run of the
    experiment is not run; its files are linked in (standard mode).

    ``dask_address`` / ``dask_workers`` / ``slurm``: run the cases on a Dask cluster, or on
    Dask workers submitted as Slurm jobs (flows/task_runners.py).
    ``variants``: inspect mode only, run just these cases (what a recovery reruns).
    ``gpus``: the devices cases are handed (``all``, a count, ``0,1,3``; on Dask, see
    experiment_infra/running/worker_devices.py). ``max_failures``: once that many cases (a count, or a
    fraction of them below 1) failed for good, no new case starts.
    """
    with stoppable():  # Ctrl-C, SIGTERM or a cancellation: cases stopped and recorded, then Cancelled
        return cancelled_if_stopped(_run_suite(
            suite_path, dry_run=dry_run, parallelism=parallelism, resume=resume, results_root=results_root,
            dask_address=dask_address, dask_workers=dask_workers, slurm=slurm, variants=variants,
            gpus=gpus, max_failures=max_failures, allow_code_change=allow_code_change, reuse=reuse,
        ))


def _run_suite(
    suite_path: str, *, dry_run: bool, parallelism: int | None, resume: str | None, results_root: str,
    dask_address: str | None, dask_workers: int | None, slurm: SlurmWorkers | None, variants: list[str] | None,
    gpus: str | None, max_failures: float | None, allow_code_change: bool, reuse: bool = False,
) -> Any:
    check_parallelism(parallelism)
    suite = load_suite(suite_path)
    dask = chosen_cluster(dask_address, dask_workers, slurm)
    if not isinstance(suite, Suite):
        if gpus is not None or max_failures is not None or reuse:
            raise SuiteError("--gpus/--max-failures/--reuse: agent-evaluation suites take none of them (standard mode only)")
        from flows.agent_eval import run_agent_eval

        return run_agent_eval(
            suite, suite_path=suite_path, dry_run=dry_run, parallelism=parallelism, resume=resume,
            results_root=results_root, **dask,
        )
    if dask and suite.mode != "standard":
        raise SuiteError(f"--dask-address/--dask-workers/--slurm-workers: {suite.mode}-mode suites run on this machine only")
    if suite.mode == "standard":
        check_max_failures(max_failures, "max_failures")  # the UI and deployments pass it unchecked
        dask["gpus"], dask["max_failures"] = gpus, max_failures
    elif gpus is not None or max_failures is not None:
        raise SuiteError(f"--gpus/--max-failures: {suite.mode}-mode suites take neither (standard mode only)")
    if variants is not None:
        if suite.mode != "inspect":
            raise SuiteError("variants: only inspect-mode runs take a subset of cases (standard mode: use --resume)")
        dask["variants"] = variants
    if allow_code_change and suite.mode == "standard":
        dask["allow_code_change"] = True
    if reuse and suite.mode == "standard":
        dask["reuse"] = True
    return _runner_for(suite)(
        suite, dry_run=dry_run, parallelism=parallelism, resume=resume, results_root=results_root, **dask
    )

