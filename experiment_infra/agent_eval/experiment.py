"""The experiment directory's own files: ``config/experiment.json`` (ProjectScylla's fields),
``config/manifest.json`` (this project's full record) and the task files, and reading a
spec back from either, so recovery can rerun runs of directories it did not write."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Sequence

from ..files.atomic import atomic_write_text
from ..layout import ExperimentPaths
from ..provenance.git import git_diff
from ..records import (
    AgentEvalManifest,
    ConditionRecord,
    ExperimentConfig,
    GitProvenance,
    RecordError,
    load_record,
    utc_now_iso,
    write_record,
)
from .commands import AGENT_COMMAND_ENV, JUDGE_COMMAND_ENV, command_from_env, redact_env
from .spec import DEFAULT_AGENT_TIMEOUT_SECONDS, AgentEvalError, AgentEvalSpec, AgentEvalSuite, Condition


def experiment_config(suite: AgentEvalSuite, spec: AgentEvalSpec, parallelism: int) -> ExperimentConfig:
    tiers = list(dict.fromkeys(c.tier for c in spec.conditions))
    per_tier = [sum(1 for c in spec.conditions if c.tier == t) for t in tiers]
    return ExperimentConfig(
        experiment_id=spec.experiment_id,
        task_repo=spec.task_repo,
        task_commit=spec.task_commit,
        task_prompt_file=str(suite.task.prompt_file),
        language=suite.language,
        models=list(dict.fromkeys(c.model for c in spec.conditions)),
        runs_per_subtest=spec.runs_per_subtest,
        tiers_to_run=tiers,
        judge_models=list(spec.judge_models),
        parallel_subtests=parallelism,
        timeout_seconds=spec.agent_timeout_seconds,
        max_turns=None,
        max_subtests=max(per_tier),
        use_containers=False,
    )


def manifest_for(
    suite: AgentEvalSuite, spec: AgentEvalSpec, git: GitProvenance, suite_path: str | Path | None
) -> AgentEvalManifest:
    return AgentEvalManifest(
        experiment_name=suite.experiment_name,
        experiment_id=spec.experiment_id,
        suite_file=str(suite_path) if suite_path else None,
        created_at=utc_now_iso(),
        git=git,
        task_repo=spec.task_repo,
        task_commit=spec.task_commit,
        conditions=[
            ConditionRecord(
                tier=c.tier,
                subtest=c.subtest,
                model=c.model,
                system_prompt=c.system_prompt,
                extra_args=list(c.extra_args),
                env=redact_env(c.env),
            )
            for c in spec.conditions
        ],
        runs_per_subtest=spec.runs_per_subtest,
        judge_models=list(spec.judge_models),
        agent_command=list(spec.agent_command),
        judge_command=list(spec.judge_command),
        agent_timeout_seconds=spec.agent_timeout_seconds,
        judge_timeout_seconds=spec.judge_timeout_seconds,
        retries=spec.retries,
        retry_delay_seconds=spec.retry_delay_seconds,
    )


def _context_md(exp: ExperimentPaths) -> str:
    refs = [("Agent Task", exp.prompt), ("Success Criteria", exp.criteria), ("Rubric", exp.rubric)]
    lines = ["# Judge Evaluation Context", "", "Judge prompts are generated per run (`run_NN/judge_prompt.md`) from:", ""]
    lines += [f"- {label}: `{path.absolute()}`" for label, path in refs if path.is_file()]
    lines += ["- Agent Output: `<run_dir>/agent/output.txt`", "- Workspace changes: git diff of `<run_dir>/workspace/`", ""]
    return "\n".join(lines)


def create_experiment(
    exp: ExperimentPaths,
    suite: AgentEvalSuite,
    spec: AgentEvalSpec,
    git: GitProvenance,
    *,
    suite_path: str | Path | None,
    parallelism: int,
) -> None:
    """Create a new experiment directory (refusing an existing one) with its config and task files."""
    try:
        exp.dir.mkdir(parents=True, exist_ok=False)
    except FileExistsError:
        raise AgentEvalError(f"experiment directory {exp.dir} already exists; not reusing it (use --resume)") from None
    if git.dirty and git.repo_root:
        atomic_write_text(exp.patch, git_diff(git.repo_root) + "\n")
        git = git.model_copy(update={"patch_file": str(exp.patch.relative_to(exp.dir))})
    files = suite.input_files()
    for name, dest in (("prompt_file", exp.prompt), ("criteria_file", exp.criteria), ("rubric_file", exp.rubric)):
        if files[name] is not None:
            shutil.copyfile(files[name], dest)
    atomic_write_text(exp.judge_prompt, _context_md(exp))
    write_record(exp.config, experiment_config(suite, spec, parallelism))
    write_record(exp.manifest, manifest_for(suite, spec, git, suite_path))


def spec_from_manifest(m: AgentEvalManifest) -> AgentEvalSpec:
    return AgentEvalSpec(
        experiment_id=m.experiment_id,
        conditions=tuple(
            Condition(c.tier, c.subtest, c.model, c.system_prompt, tuple(c.extra_args), dict(c.env))
            for c in m.conditions
        ),
        runs_per_subtest=m.runs_per_subtest,
        judge_models=tuple(m.judge_models),
        task_repo=m.task_repo,
        task_commit=m.task_commit,
        agent_command=tuple(m.agent_command),
        judge_command=tuple(m.judge_command),
        agent_timeout_seconds=m.agent_timeout_seconds,
        judge_timeout_seconds=m.judge_timeout_seconds,
        retries=m.retries,
        retry_delay_seconds=m.retry_delay_seconds,
    )


def _spec_from_foreign_config(exp: ExperimentPaths) -> AgentEvalSpec:
    """ProjectScylla's ``config/experiment.json``: subtests are the ones expected (on disk or in
    its ``checkpoint.json``), the agent model
    is ``models[0]``; tier-specific agent settings it composed are not recorded there."""
    cfg = load_record(exp.config, ExperimentConfig)
    if not cfg.models:
        raise AgentEvalError(f"{exp.config}: models is empty; cannot tell which model the agent ran")
    from ..status.expected import expected_runs  # the subtests recovery expects: on disk or in checkpoint.json

    subtests = expected_runs(exp, cfg).subtests
    conditions = tuple(Condition(t, s, cfg.models[0]) for t in cfg.tiers_to_run for s in subtests[t])
    if not conditions:
        raise AgentEvalError(f"{exp.dir}: no {{tier}}/{{subtest}} directories for tiers {cfg.tiers_to_run}")
    return AgentEvalSpec(
        experiment_id=cfg.experiment_id,
        conditions=conditions,
        runs_per_subtest=cfg.runs_per_subtest,
        judge_models=tuple(cfg.judge_models),
        task_repo=cfg.task_repo or str(exp.repo.absolute()),
        task_commit=cfg.task_commit or "HEAD",
        agent_timeout_seconds=cfg.timeout_seconds or DEFAULT_AGENT_TIMEOUT_SECONDS,
    )


def load_spec(
    exp: ExperimentPaths,
    *,
    agent_command: Sequence[str] | None = None,
    judge_command: Sequence[str] | None = None,
) -> AgentEvalSpec:
    """The spec of an existing experiment: from ``config/manifest.json`` if this project wrote
    it, else from ProjectScylla's ``config/experiment.json``. Command templates: the arguments,
    else ``EXPERIMENT_AGENT_COMMAND`` / ``EXPERIMENT_JUDGE_COMMAND`` (shell-quoted), else recorded."""
    try:
        if exp.manifest.is_file():
            spec = spec_from_manifest(load_record(exp.manifest, AgentEvalManifest))
        elif exp.config.is_file():
            spec = _spec_from_foreign_config(exp)
        else:
            raise AgentEvalError(f"{exp.dir}: not an agent-evaluation experiment (no config/experiment.json)")
        agent = agent_command or command_from_env(AGENT_COMMAND_ENV)
        judge = judge_command or command_from_env(JUDGE_COMMAND_ENV)
        return spec.with_commands(agent, judge)
    except RecordError as exc:
        raise AgentEvalError(str(exc)) from None
    except AgentEvalError:
        raise
    except ValueError as exc:  # a bad template from the environment or the arguments
        raise AgentEvalError(str(exc)) from None
