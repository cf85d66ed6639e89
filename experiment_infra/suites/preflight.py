"""Everything a run of a suite file would refuse, checked before Prefect is imported.

``check_run`` loads the suite file and plans the run, for every kind of suite
(standard, inspect, agent evaluation), and writes nothing. Its text is the dry run's
account, so ``--dry-run`` on a command line is this function and a print: no Prefect
import, no server (the spec says "always dry-run first"; that must cost well under
a second, not a server start).
"""

from __future__ import annotations

from pathlib import Path

from ..agent_eval import AgentEvalSuite, format_plan as format_agent_eval_plan, plan_experiment
from ..running.inspect_mode import check_inspect, format_inspect_plan
from ..files.lock import check_lock
from ..files.atomic import unwritable_reason
from ..running.resources import ResourceError, ResourcePool, check_max_failures
from .suite import Suite, SuiteError, SuitePlan, format_plan, load_suite, plan_suite, resource_pool
from ..running.slurm import SlurmWorkers, plan_slurm_gpus
from ..running.worker_devices import DaskGpus, check_worker_gpus, plan_dask_gpus

__all__ = ["check_parallelism", "check_run", "check_writable", "describe_suite", "gpus_for_run", "pool_for_cases", "slurm_jobs_for"]


def check_parallelism(parallelism: int | None) -> None:
    if parallelism is not None and (isinstance(parallelism, bool) or not isinstance(parallelism, int) or parallelism < 1):
        raise SuiteError(f"parallelism (-p) must be a positive integer, got {parallelism!r}")


def describe_suite(suite: Suite | AgentEvalSuite, suite_path: str | Path, *, resume: str | None, results_root: str) -> str:
    """The dry run's account of a loaded suite: where each case goes and its exact command."""
    if isinstance(suite, Suite):
        if suite.mode == "inspect":
            return format_inspect_plan(check_inspect(suite, resume, results_root))
        return format_plan(plan_suite(suite, results_root, resume))
    if isinstance(suite, AgentEvalSuite):
        return format_agent_eval_plan(
            plan_experiment(suite, results_root=results_root, resume=resume, suite_path=suite_path)
        )
    raise SuiteError(
        f"{Path(suite_path).name}: `suite` is a {type(suite).__name__}, not a Suite or AgentEvalSuite"
    )


def gpus_for_run(
    suite: Suite, gpus: str | None, parallelism: int | None, plan: SuitePlan | None = None,
    dask_address: str | None = None, dask_workers: int | None = None, slurm: object | None = None,
) -> ResourcePool | DaskGpus:
    """The devices a run hands out, every request of ``plan``'s cases that will run checked:
    this machine's (``resource_pool``), on Dask the workers' (``worker_devices.plan_dask_gpus``),
    on Slurm each job's own, as Slurm gave them (``--gres``)."""
    cases = suite.cases if plan is None else [p.case for p in plan.cases if p.will_run]
    if isinstance(slurm, SlurmWorkers):
        return plan_slurm_gpus(suite, gpus, slurm)[0]
    if dask_address or dask_workers is not None:
        return plan_dask_gpus(suite, gpus, dask_workers, cases)
    return resource_pool(suite, gpus, parallelism, plan)


def pool_for_cases(gpus: ResourcePool | DaskGpus, dask_address: str | None = None) -> ResourcePool:
    """What the cases' tasks hold their devices in (``gpus_for_run``'s answer); on a scheduler's
    workers, checked again that some worker can hold each case (a run started from the UI
    skipped the command line's check)."""
    if not isinstance(gpus, DaskGpus):
        return gpus
    if dask_address:
        check_worker_gpus(gpus, dask_address)
    return gpus.case_pool()


def slurm_jobs_for(suite_path: str | Path, gpus: str | None, slurm: SlurmWorkers) -> SlurmWorkers:
    """The Slurm worker jobs a run of the suite submits: asking for GPUs (``--gres``) when
    its cases do, so that Slurm is asked about the jobs the run will submit."""
    return plan_slurm_gpus(load_suite(suite_path), gpus, slurm)[1]


def check_writable(plan: SuitePlan) -> None:
    """Refuse, before anything starts, a run whose directory cannot be written (a read-only
    mount, no permission): it would otherwise fail at its first write, inside the flow."""
    where = plan.run.dir if plan.resumed else plan.run.dir.parent
    problem = unwritable_reason(where)
    if problem is not None:
        what = f"--resume {plan.run.dir}" if plan.resumed else f"results root {plan.run.dir.parent.parent}"
        raise SuiteError(f"{what}: cannot write there ({problem}); use a writable --results-root or fix the mount")


def check_run(
    suite_path: str | Path, *, dry_run: bool, parallelism: int | None, resume: str | None, results_root: str,
    gpus: str | None = None, max_failures: int | float | None = None,
    allow_code_change: bool = False, reuse: bool = False,
    dask_address: str | None = None, dask_workers: int | None = None, slurm: object | None = None,
) -> str:
    """Refuse (SuiteError and kin, one line each) what the run_suite flow would refuse;
    return the dry run's account. Writes nothing. ``dask_address`` / ``dask_workers`` /
    ``slurm``: the cluster the cases would run on (its GPUs are its workers'; a real run
    asks the scheduler whether a worker can hold each case, a dry run starts nothing)."""
    check_parallelism(parallelism)
    check_max_failures(max_failures, "--max-failures")
    suite = load_suite(suite_path)
    if not (isinstance(suite, Suite) and suite.mode == "standard"):
        given = [flag for flag, value in (("--gpus", gpus), ("--max-failures", max_failures), ("--reuse", reuse or None)) if value is not None]
        if given:
            mode = getattr(suite, "mode", "agent_eval")
            raise SuiteError(f"{given[0]}: standard-mode suites only (this one is {mode}); drop the flag")
        return describe_suite(suite, suite_path, resume=resume, results_root=results_root)
    # Without --dry-run the flow plans again: deciding what to reuse here would be done twice.
    plan = plan_suite(suite, results_root, resume, allow_code_change=allow_code_change, reuse=reuse and dry_run)
    cluster = dict(dask_address=dask_address, dask_workers=dask_workers, slurm=slurm)
    try:
        pool = gpus_for_run(suite, gpus, parallelism, plan, **cluster)  # only the cases that will run ask for devices
    except ResourceError:
        if not reuse or dry_run:
            raise
        # The cases asking too much may be the ones --reuse takes from earlier runs: decide
        # it (what the flow does again) only now that it matters.
        reused = plan_suite(suite, results_root, resume, allow_code_change=allow_code_change, reuse=True)
        pool = gpus_for_run(suite, gpus, parallelism, reused, **cluster)
    if dask_address and not dry_run and isinstance(pool, DaskGpus):
        check_worker_gpus(pool, dask_address)
    if plan.resumed:
        check_lock(plan.run.lock, what=f"run directory {plan.run.dir}")
    if not dry_run:
        check_writable(plan)
    return format_plan(plan, pool)
