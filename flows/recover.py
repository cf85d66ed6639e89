"""Prefect flow ``recover``: classify every run of an experiment from its files, then
regenerate, rerun agents or rerun judge slots for exactly the runs that need it.

    python flows/recover.py EXPERIMENT_DIR [--dry-run] [--status S]... [--tier T]... [--subtest S]...
           [--runs 1,3,5] [--agents-only | --judges-only] [--judge-model M] [-p N] [--json] [-v]

The command line lives in ``experiment_cli.recover`` so that ``--dry-run`` and
``--json`` never import Prefect. A real recovery takes the directory's lock, fans the
actions out as task runs (agent reruns ``tier/subtest/run_NN``, judge slots
``.../judge_NN``; regeneration in batches of a tier, ``regenerate T0``, and consensus
rebuilds in one per subtest, ``consensus T0/00``), rebuilds the reports (``reports T0``
per tier touched, once its work is done, then ``reports``), reads the files again and
ends with a table artifact of before/after counts, every planned run's outcome and
every run still needing work.
"""

from __future__ import annotations

if __name__ == "__main__":
    # As a script, sys.path[0] is flows/ (its modules would shadow top-level names):
    # put the repository root there instead, then run the Prefect-free command line.
    import sys
    from pathlib import Path

    sys.path[0] = str(Path(__file__).resolve().parents[1])
    from experiment_cli.common import run_main
    from experiment_cli.recover import main

    run_main(lambda: main(sys.argv[1:]))

import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Sequence

from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture, as_completed
from prefect.runtime import flow_run
from prefect.states import State
from prefect.task_runners import TaskRunner
from prefect.utilities.annotations import allow_failure, quote

from experiment_infra.provenance.code_versions import CodeChanged
from experiment_infra.layout import ExperimentPaths, SuiteRunPaths
from experiment_infra.files.lock import LockHeld, acquire_lock
from experiment_infra.processes import helpers
from experiment_infra.recovery.act import work_done
from experiment_infra.recovery.checkpoint_sync import sync_checkpoint
from experiment_infra.recovery.limits import plan_limits
from experiment_infra.recovery.batch import HELPER_WARMUP, PLOTS_WARMUP, slot_label
from experiment_infra.recovery.links import refuse_linked_places
from experiment_infra.recovery.select import Mode
from experiment_infra.errors import EXIT_FAILED, EXIT_OK
from experiment_infra.recovery.outcome import (
    RecoverySummary, build_selection, check_suite_rerun, summarize,
)
from experiment_infra.recovery.survey import (
    ExperimentSurvey,
    RecoveryInputError,
    RunWork,
    Selection,
    SuiteRunSurvey,
    Survey,
    survey,
    survey_experiment,
    survey_suite_run,
    target_of,
)
from experiment_infra.recovery.render import render_json, render_text
from experiment_infra.running.services import chosen_cluster
from experiment_infra.running.slurm import SlurmWorkers
from flows.artifacts import show
from flows.final_state import final_state
from flows.housekeeping import report_swept
from flows.progress import Progress
from flows.stopping import cancelled_if_stopped, stoppable
from flows.recover_artifacts import progress_key, publish_recovery
from flows.report import report_failures, reports_task, tier_reports_task
from flows.task_runners import build_task_runner
from tasks.recover import BatchFailed, finish_runs_task, regenerate_task, rerun_agent_task, rerun_judge_task, wait_for_limit_task
from tasks.retries import retry_options

if TYPE_CHECKING:
    from experiment_infra.agent_eval import AgentEvalSpec


# ---------------------------------------------------------------------- helpers


def _flow_run_name() -> str:
    params = flow_run.parameters
    directory = Path(str(params.get("experiment_dir", "")))
    dry = " (dry run)" if params.get("dry_run") or params.get("json_output") else ""
    return f"recover {directory.parent.name}/{directory.name}{dry}"


# -------------------------------------------------------------------- fan-out


def _subtests(runs: Sequence[RunWork]) -> dict[tuple[str, str], list[RunWork]]:
    """Runs grouped by (tier, subtest), in survey order."""
    groups: dict[tuple[str, str], list[RunWork]] = {}
    for r in runs:
        groups.setdefault((r.tier, r.subtest), []).append(r)
    return groups


REGENERATE_BATCH_RUNS = 500  # runs per regeneration task run, at most (whole subtests: one may hold more)


def _regeneration_batches(runs: Sequence[RunWork]) -> list[tuple[str, list[RunWork]]]:
    """The runs to regenerate in task-run batches: a tier each (``T0``), or runs of
    consecutive subtests of one tier (``T0/00-04``) when the tier holds more than
    REGENERATE_BATCH_RUNS. A task run costs the flow and its server tens of
    milliseconds of CPU; regenerating a run costs one or two."""
    tiers: dict[str, dict[str, list[RunWork]]] = {}
    for r in runs:
        if r.regenerate:
            tiers.setdefault(r.tier, {}).setdefault(r.subtest, []).append(r)
    batches: list[tuple[str, list[RunWork]]] = []
    for tier, subtests in tiers.items():
        chunks: list[list[str]] = [[]]
        size = 0
        for subtest, group in subtests.items():
            if chunks[-1] and size + len(group) > REGENERATE_BATCH_RUNS:
                chunks.append([])
                size = 0
            chunks[-1].append(subtest)
            size += len(group)
        for chunk in chunks:
            label = tier if len(chunks) == 1 else f"{tier}/{chunk[0]}" + (f"-{chunk[-1]}" if len(chunk) > 1 else "")
            batches.append((label, [r for subtest in chunk for r in subtests[subtest]]))
    return batches


class Submitted(NamedTuple):
    """A task run of the recovery's work."""

    label: str  # the task run's
    runs: list[str]  # the labels of the runs it covers
    future: PrefectFuture[Any]
    tier: str


def _submit_experiment(
    runner: TaskRunner[Any], before: ExperimentSurvey, spec: AgentEvalSpec | None, verbose: bool
) -> list[Submitted]:
    """The task runs: the regeneration batches, per subtest one consensus batch, one per
    agent rerun and per judge slot."""
    logger = get_run_logger()
    sel = before.selection
    models = list(before.config.judge_models)
    # The experiment's own retry policy, backing off as its agent-evaluation run did.
    retry: dict[str, Any] = retry_options(spec.retries, spec.retry_delay_seconds) if spec else {}
    # Untagged: the flow run carries the tags, and a tagged task run costs two server
    # round trips (a tag concurrency slot), which thousands of regenerations would feel.
    agent_task = rerun_agent_task.with_options(**retry)
    judge_task = rerun_judge_task.with_options(**retry)
    futures: list[Submitted] = []
    # What a rate limit stopped: after the limit lifts, one run at a time; held when it is far off.
    limits = plan_limits(before.exp, before.planned)
    held = dict(limits.held)
    for label, why in limits.held:
        logger.warning("%s: %s", label, why)
    limited = set(limits.limited)
    previous: list[Any] = []  # the last rate-limited run's tasks: the next one waits for them
    if limited:
        previous = [runner.submit(wait_for_limit_task, parameters=dict(seconds=limits.wait_seconds))]
    for label, regen in _regeneration_batches(before.planned):
        params = dict(label=label, experiment_dir=str(before.exp.dir), judge_models=models,
                      runs=[(r.tier, r.subtest, r.run) for r in regen])
        future = runner.submit(regenerate_task, parameters=params)
        futures.append(Submitted(f"regenerate {label}", [r.label for r in regen], future, regen[0].tier))
    for (tier, subtest), group in _subtests(before.planned).items():
        batch = f"{tier}/{subtest}"
        base = dict(experiment_dir=str(before.exp.dir), tier=tier, subtest=subtest)
        if verbose:
            logger.info("%s", "\n".join(f"{r.label}: {r.action} ({r.problem})" for r in group))
        upstream: list[Any] = []  # every agent and judge of this subtest: its consensus batch waits for all
        judged: list[RunWork] = []
        for r in group:
            if r.regenerate or r.label in held:
                continue
            where = dict(run_number=r.run, **base)
            after_limit = [allow_failure(f) for f in previous] if r.label in limited else []
            agent = None
            if r.rerun_agent:
                agent = runner.submit(agent_task, parameters=dict(label=r.label, spec=spec, **where), wait_for=after_limit)
                futures.append(Submitted(r.label, [r.label], agent, tier))
                upstream.append(agent)
            mine: list[Any] = [agent] if agent is not None else []
            for slot in r.judge_slots:
                params = dict(
                    label=slot_label(r.tier, r.subtest, r.run, slot), spec=spec, slot=slot,
                    model=sel.judge_model or models[slot - 1], model_override=sel.judge_model is not None, **where,
                )
                # A judge starts as soon as its own run's agent is done, not after every agent.
                judge = runner.submit(judge_task, parameters=params, wait_for=[agent] if agent is not None else after_limit)
                futures.append(Submitted(params["label"], [r.label], judge, tier))
                upstream.append(judge)
                mine.append(judge)
            if r.label in limited:
                previous = mine
            if r.judge_slots:
                judged.append(r)
        if judged:
            # Rebuilt from whichever judges succeeded; a run whose agent failed is left alone.
            finish = runner.submit(
                finish_runs_task, parameters=dict(label=batch, spec=spec, run_numbers=[r.run for r in judged], **base),
                wait_for=[allow_failure(f) for f in upstream],
            )
            futures.append(Submitted(f"consensus {batch}", [r.label for r in judged], finish, tier))
    return futures


def _submit_tier_reports(runner: TaskRunner[Any], before: ExperimentSurvey, work: list[Submitted]) -> list[PrefectFuture[Any]]:
    """Per tier the work touched, its reports (``reports T0``), as soon as that tier's work is done."""
    tiers: dict[str, list[PrefectFuture[Any]]] = {}
    for entry in work:
        tiers.setdefault(entry.tier, []).append(entry.future)
    return [
        runner.submit(tier_reports_task, parameters=dict(experiment_dir=str(before.exp.dir), tier=tier),
                      wait_for=[allow_failure(f) for f in upstream])
        for tier, upstream in tiers.items()
    ]


def _rebuilt(tier_reports: list[PrefectFuture[Any]]) -> list[Any]:
    """What the ``reports T0`` task runs that completed rebuilt; the others' tiers (failed,
    or a result that cannot be read back) the ``reports`` task run rebuilds itself."""
    done = []
    for future in tier_reports:
        if future.state.is_completed():
            try:
                done.append(future.result())
            except Exception:  # noqa: BLE001 - any reason: that tier is simply rebuilt again
                continue
    return done


def _failures(futures: list[Submitted]) -> list[tuple[str, str]]:
    """(run or slot label, why) for every task run that did not complete; a batch names its runs."""
    failures: list[tuple[str, str]] = []
    for label, runs, future, _ in futures:
        state = future.state
        if state.is_completed():
            continue
        why = state.message or state.name or "did not complete"
        try:
            exc = state.result(raise_on_failure=False)
        except Exception:  # the result is gone (another process, a lost server call): the message will do
            exc = None
        if isinstance(exc, BatchFailed):
            failures += list(exc.reasons.items())
        elif label in runs or "/judge_" in label:
            failures.append((label, why))
        else:
            failures += [(run, f"{label}: {why}") for run in runs]
    return failures


REPORTS = "reports"  # the label of the report rebuild's failures


def _recover_experiment(
    before: ExperimentSurvey, parallelism: int | None, verbose: bool, dask: dict[str, Any]
) -> tuple[ExperimentSurvey, list[tuple[str, str]]]:
    spec = None
    if any(r.rerun_agent or r.judge_slots for r in before.planned):
        from experiment_infra.agent_eval import load_spec  # only reruns need it (and its git)

        spec = load_spec(before.exp)
    with build_task_runner(
        parallelism, default_parallelism=before.default_parallelism, logs=before.exp.slurm_logs, **dask
    ) as runner:
        futures = _submit_experiment(runner, before, spec, verbose)
        tier_reports = _submit_tier_reports(runner, before, futures)
        with Progress(len(futures) + len(tier_reports), progress_key(before.exp.dir), "tasks") as progress:
            for done in as_completed([entry.future for entry in futures] + tier_reports):
                done.wait()  # settles its final state locally (no server read)
                progress.advance(failed=not done.state.is_completed())
        # The experiment's own reports (and any tier whose reports failed) and the survey
        # after only read the run files: the reports are built in a helper process meanwhile.
        reports = None
        if before.planned:
            parameters: dict[str, Any] = dict(experiment_dir=str(before.exp.dir), in_helper=True)
            if not dask:
                # Dask rebuilds tuples on their way to a worker (the quote and the tier results
                # arrive as plain tuples): there the reports task rebuilds every tier itself.
                parameters["tiers_done"] = quote(_rebuilt(tier_reports))
            reports = runner.submit(reports_task, parameters=parameters)
        after = survey_experiment(before.exp, replace(before.selection, statuses=None), cache=before.cache or True)
        if before.planned and sync_checkpoint(before.exp, after.runs):  # ProjectScylla resumes from it
            get_run_logger().info("checkpoint.json brought up to date with the files")
        if after.cache is not None:
            after.cache.save()  # the next survey (a dry run too) skips runs whose files did not change
        if reports is not None:
            reports.wait()
    failures = _failures(futures)
    if reports is not None:
        failures += [(REPORTS, why) for why in report_failures(reports.state)]
    return after, failures


def _recover_suite_run(
    before: SuiteRunSurvey, parallelism: int | None, dask: dict[str, Any], allow_code_change: bool = False
) -> tuple[SuiteRunSurvey, list[tuple[str, str]]]:
    from flows.run_suite import run_suite

    check_suite_rerun(before)
    failures: list[tuple[str, str]] = []
    if before.planned:
        if before.mode is Mode.INSPECT:
            # No resume in inspect mode: rerun just these variants; their new logs land beside the old.
            where: dict[str, Any] = dict(
                results_root=str(before.run.dir.parent), variants=[c.variant for c in before.planned]
            )
        else:
            where = dict(resume=str(before.run.dir), allow_code_change=allow_code_change)
        state = run_suite(
            suite_path=before.manifest.suite_file, parallelism=parallelism,
            **where, **dask, return_state=True,
        )
        if not state.is_completed():
            result = state.result(raise_on_failure=False)
            if isinstance(result, (LockHeld, CodeChanged)):
                raise result  # another run or recovery of this directory is going on; other code
            failures.append(("run_suite", state.message or state.name or "did not complete"))
    return survey_suite_run(before.run, replace(before.selection, statuses=None), load_suite=True), failures


def _restrict(after: Survey, before: Survey) -> Survey:
    """The after-survey over exactly the runs the before-survey selected."""
    labels = {r.label for r in before.runs}
    if isinstance(after, ExperimentSurvey) and isinstance(before, ExperimentSurvey):
        tiers = {m.tier for m in before.missing_tiers}
        return replace(
            after, runs=tuple(r for r in after.runs if r.label in labels), selection=before.selection,
            missing_tiers=tuple(m for m in after.missing_tiers if m.tier in tiers),
        )
    return replace(after, cases=tuple(c for c in after.cases if c.label in labels), selection=before.selection)


def _not_done(before: Survey, after: Survey, failures: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Planned runs whose files do not show the work done, with the task's failure if any."""
    now = {r.label: r for r in after.runs}
    reasons: dict[str, str] = {}
    for label, why in failures:
        reasons.setdefault("/".join(label.split("/")[:3]), why)  # tier/subtest/run_NN[/judge_NN]
    out = []
    for r in before.planned:
        a = now.get(r.label)
        if isinstance(before, ExperimentSurvey):
            done = a is not None and work_done(r, a)
        else:
            done = a is not None and not a.needs_work
        if not done:
            why = reasons.get(r.label) or reasons.get("run_suite") or (
                f"{a.status.value}: {a.problem}" if a is not None else "not found afterwards"
            )
            out.append((r.label, why))
    return out


def _recover(
    target: ExperimentPaths | SuiteRunPaths, selection: Selection, parallelism: int | None, verbose: bool,
    dask: dict[str, Any], allow_code_change: bool = False,
) -> RecoverySummary:
    """Survey, act, survey again, publish the artifact (the caller holds the lock)."""
    before = survey(target.dir, selection, load_suite=True)  # a real recovery: an inspect suite file may run
    text = render_text(before, verbose=verbose)
    show(text)
    refuse_linked_places(before)  # before anything is written (the command line checked it too)
    if isinstance(before, ExperimentSurvey):
        # Before anything is written: the temps writers killed mid-write left where this writes.
        report_swept(target.dir, [before.exp.run(r.tier, r.subtest, r.run) for r in before.planned])
        if before.planned:
            # Regeneration batches and the reports run in helper processes (started by the
            # command line already, before Prefect's server; otherwise now).
            helpers.prewarm(HELPER_WARMUP, first=PLOTS_WARMUP)
        after_all, failures = _recover_experiment(before, parallelism, verbose, dask)
    else:
        after_all, failures = _recover_suite_run(before, parallelism, dask, allow_code_change)
    after = _restrict(after_all, before)
    errors = [why for label, why in failures if label == REPORTS]  # a failed report rebuild fails the recovery
    summary = summarize(before, after, _not_done(before, after, failures), errors)
    publish_recovery(before, after, summary)
    return summary


# --------------------------------------------------- when the server loses the run


def exit_code_from_files(before: Survey, exc: BaseException) -> int:
    """The exit code of a recovery whose flow run the server lost: survey the files again
    and check the work ``before`` planned (reads only)."""
    directory = before.exp.dir if isinstance(before, ExperimentSurvey) else before.run.dir
    after = _restrict(survey(directory, replace(before.selection, statuses=None), load_suite=True), before)
    not_done = _not_done(before, after, [])
    lines = [f"the files say: {len(before.planned) - len(not_done)} of {len(before.planned)} planned run(s) done"]
    lines += [f"not done: {label}: {why}" for label, why in not_done]
    print("\n".join(lines), flush=True)
    first = (str(exc).splitlines() or [""])[0]
    print(
        f"note: the Prefect server lost this flow run ({type(exc).__name__}: {first}); the outcome above is read "
        f"from the files (if the flow stopped early, rebuild the reports: python flows/report.py {directory})",
        file=sys.stderr, flush=True,
    )
    return EXIT_OK if not not_done else EXIT_FAILED


# ------------------------------------------------------------------------- flow


@flow(name="recover", flow_run_name=_flow_run_name, validate_parameters=True)
def recover(
    experiment_dir: str,
    dry_run: bool = False,
    statuses: list[str] | None = None,
    tiers: list[str] | None = None,
    subtests: list[str] | None = None,
    runs: str | list[int] | None = None,
    agents_only: bool = False,
    judges_only: bool = False,
    judge_model: str | None = None,
    parallelism: int | None = None,
    json_output: bool = False,
    verbose: bool = False,
    dask_address: str | None = None,
    dask_workers: int | None = None,
    slurm: SlurmWorkers | None = None,
    allow_code_change: bool = False,
) -> Any:
    """Classify every expected run of ``experiment_dir`` from its files and fix only what needs it.

    ``allow_code_change``: rerun the cases of a standard-mode run directory on code other
    than the code it last ran on (refused otherwise; recorded as a new code version).

    ``dry_run`` / ``json_output``: print the classification and the actions, write nothing.
    ``dask_address`` / ``dask_workers`` / ``slurm``: run the tasks on a Dask cluster, or on Dask
    workers submitted as Slurm jobs (flows/task_runners.py).
    """
    if parallelism is not None and parallelism < 1:
        raise RecoveryInputError(f"parallelism (-p) must be a positive integer, got {parallelism}")
    selection = build_selection(statuses, tiers, subtests, runs, agents_only, judges_only, judge_model)
    if dry_run or json_output:
        s = survey(experiment_dir, selection)
        text = render_json(s) if json_output else render_text(s, verbose=verbose)
        show(text)
        return RecoverySummary(str(target_of(experiment_dir).dir), s.mode.value, dry_run=True)

    target = target_of(experiment_dir)
    dask = chosen_cluster(dask_address, dask_workers, slurm)
    with stoppable():  # Ctrl-C, SIGTERM or a cancellation: reruns stopped and recorded, then Cancelled
        return cancelled_if_stopped(_recover_target(target, selection, parallelism, verbose, dask, allow_code_change))


def _recover_target(
    target: ExperimentPaths | SuiteRunPaths, selection: Selection, parallelism: int | None, verbose: bool,
    dask: dict[str, Any], allow_code_change: bool = False,
) -> State:
    logger = get_run_logger()
    if isinstance(target, SuiteRunPaths):
        # run_suite --resume takes the run directory's lock itself, for exactly as long as
        # it reruns cases: holding it here too would lock the rerun out.
        summary = _recover(target, selection, parallelism, verbose, dask, allow_code_change)
    else:
        with acquire_lock(target.lock, what=str(target.dir)) as held:
            if held.took_over_from is not None or held.took_over_unreadable:
                logger.warning("took over the stale lock of %s", held.took_over_from or "an unreadable lock file")
            summary = _recover(target, selection, parallelism, verbose, dask)
    text = summary.format()
    show(text)
    if summary.not_done:
        headline = f"{len(summary.not_done)} of {summary.planned} planned run(s) not done"
    elif summary.errors:
        headline = f"{summary.planned} planned run(s) done, but {len(summary.errors)} error(s)"
    else:
        headline = (
            f"{summary.planned} planned run(s) done, but {len(summary.remaining) + len(summary.missing)} "
            "selected run(s) or tier(s) still need work"
        )
    return final_state(summary, done=f"{summary.planned} planned run(s) done", headline=headline, reasons=summary.reasons())
