"""Plan an agent-evaluation suite run (new, resumed or dry) without writing anything.

``plan_experiment`` checks every input (task files, repository, commit, templates),
works out the experiment directory and, per run, what is left to do: a new run needs
its agent and every judge; a resumed one only what its files say is missing.
``start_experiment`` then creates the directory and clones the task repository.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..layout import DIRTY_SUFFIX, AgentRunPaths, ExperimentPaths, run_label
from ..provenance.git import git_provenance
from ..records import AgentEvalManifest, GitProvenance, load_resume_manifest
from ..recovery.run_plan import RunWork, plan_run
from ..recovery.select import Selection
from ..status.rules import classify_run
from .agent import agent_argv
from .commands import redact_env
from .experiment import create_experiment, spec_from_manifest
from .judge import judge_argv
from .spec import AgentEvalError, AgentEvalSpec, AgentEvalSuite
from .workspace import ensure_clone, resolve_commit


@dataclass(frozen=True)
class PlannedRun:
    """One run of the suite and what it needs, as the one planner decides it for a resume
    and a recovery alike (``recovery.run_plan.plan_run``): a new run its agent and every
    judge; a resumed one only what its files say is missing (valid files are kept)."""

    paths: AgentRunPaths
    work: RunWork
    judge_models: tuple[str, ...]

    @property
    def tier(self) -> str:
        return self.work.tier

    @property
    def subtest(self) -> str:
        return self.work.subtest

    @property
    def run_number(self) -> int:
        return self.work.run

    @property
    def name(self) -> str:
        """The task run name: ``{tier}/{subtest}/run_{NN}``."""
        return self.work.label

    @property
    def needs_agent(self) -> bool:
        return self.work.rerun_agent

    @property
    def judges(self) -> tuple[tuple[int, str], ...]:
        """(slot, model) of each judge slot to run."""
        return tuple((slot, self.judge_models[slot - 1]) for slot in self.work.judge_slots)

    @property
    def regenerate(self) -> bool:
        """Only derived files are missing or invalid: rebuild those, run nothing."""
        return self.work.regenerate

    @property
    def done(self) -> bool:
        """Nothing to run or rebuild (complete on disk, or work no rule can plan: then its row says why)."""
        return not self.work.planned


def plan_run_of(paths: AgentRunPaths, tier: str, subtest: str, number: int, models: list[str]) -> PlannedRun:
    """What one run needs, from its files (a run not on disk: its agent and every judge)."""
    c = classify_run(paths, models)
    return PlannedRun(paths, plan_run(tier, subtest, number, c.status, c.reason, c.judges, Selection()), tuple(models))


@dataclass(frozen=True)
class ExperimentPlan:
    suite: AgentEvalSuite
    spec: AgentEvalSpec
    exp: ExperimentPaths
    git: GitProvenance
    runs: tuple[PlannedRun, ...]
    resumed: bool = False
    suite_path: str | None = None


def _identity(spec: AgentEvalSpec) -> dict[str, object]:
    conditions = [
        (c.tier, c.subtest, c.model, c.system_prompt, list(c.extra_args), redact_env(c.env)) for c in spec.conditions
    ]
    return {
        "conditions": conditions,
        "runs_per_subtest": spec.runs_per_subtest,
        "judge_models": list(spec.judge_models),
        "task_commit": spec.task_commit,
    }


def _check_resume(suite: AgentEvalSuite, resume: str | Path) -> tuple[ExperimentPaths, AgentEvalManifest]:
    exp = ExperimentPaths(Path(resume).expanduser().resolve())
    manifest = load_resume_manifest(
        resume, exp.dir, exp.manifest, AgentEvalManifest, suite.experiment_name, AgentEvalError,
        missing="no config/manifest.json (not written by this project); recover it with flows/recover.py",
        # Runs in completed/ and in_progress/: this project's runner writes them flat.
        layout=lambda: (
            "its runs are in ProjectScylla's completed/ and in_progress/ layout, which this project's runner does "
            "not write; recover it with flows/recover.py"
        ) if exp.split else None,
    )
    return exp, manifest


def plan_experiment(
    suite: AgentEvalSuite,
    *,
    results_root: str | Path = "results",
    resume: str | Path | None = None,
    suite_path: str | Path | None = None,
    now: datetime | None = None,
) -> ExperimentPlan:
    """Everything a run of ``suite`` will do; raises ``AgentEvalError`` on bad input."""
    suite.input_files()
    root = Path(suite_path).resolve().parent if suite_path else Path.cwd()
    models = list(suite.judge_models)
    if resume is not None:
        exp, manifest = _check_resume(suite, resume)
        spec = suite.to_spec(manifest.task_commit)
        recorded = _identity(spec_from_manifest(manifest))
        for key, value in _identity(spec).items():
            if recorded[key] != value:
                raise AgentEvalError(
                    f"--resume {resume}: the suite's {key} differs from config/manifest.json; "
                    "start a new run (or restore the suite)"
                )
        runs = tuple(plan_run_of(exp.run(t, s, n), t, s, n, models) for t, s, n in spec.runs())
        return ExperimentPlan(suite, spec, exp, manifest.git, runs, True, str(suite_path) if suite_path else None)
    spec = suite.to_spec(resolve_commit(suite.task.repo, suite.task.commit))
    git = git_provenance(root)
    exp = ExperimentPaths.new(Path(results_root).expanduser().resolve(), suite.experiment_name, now or datetime.now(), git.short, git.dirty)
    runs = tuple(plan_run_of(exp.run(t, s, n), t, s, n, models) for t, s, n in spec.runs())  # none on disk yet
    return ExperimentPlan(suite, spec, exp, git, runs, False, str(suite_path) if suite_path else None)


def start_experiment(plan: ExperimentPlan, parallelism: int) -> None:
    """Create a new experiment directory and clone the task repository into it."""
    if not plan.resumed:
        create_experiment(plan.exp, plan.suite, plan.spec, plan.git, suite_path=plan.suite_path, parallelism=parallelism)
    ensure_clone(plan.exp, plan.spec.task_repo, plan.spec.task_commit)


def format_plan(plan: ExperimentPlan) -> str:
    """The dry run's account: experiment directory, every run and judge slot, exact commands."""
    spec, exp = plan.spec, plan.exp
    verb = "resume" if plan.resumed else "create"
    git = plan.git.short + (DIRTY_SUFFIX if plan.git.dirty else "")
    lines = [
        f"dry run: would {verb} {exp.dir}",
        f"experiment {plan.suite.experiment_name} (agent_eval, id {spec.experiment_id}), git {git}, "
        f"{len(plan.runs)} run(s) x {len(spec.judge_models)} judge(s), task {spec.task_repo} @ {spec.task_commit[:12]}",
    ]
    for run in plan.runs:
        if run.done:
            lines.append(f"  {run.name} -> {run.paths.dir}  [completed: would skip]")
            continue
        lines.append(f"  {run.name} -> {run.paths.dir}")
        if run.needs_agent:
            lines.append(f"    agent: {shlex.join(agent_argv(exp, spec, run.tier, run.subtest, run.run_number))}")
        for slot, model in run.judges:
            argv = judge_argv(exp, spec, run.tier, run.subtest, run.run_number, model)
            lines.append(f"    {run.paths.judge_slot(slot).dir.name} ({model}): {shlex.join(argv)}")
        if run.regenerate:
            lines.append("    regenerate the missing or invalid result files")
    lines.append("nothing written, nothing started")
    return "\n".join(lines)
