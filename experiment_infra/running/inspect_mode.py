"""Inspect AI mode: each case is an Inspect eval whose ``.eval`` log lands flat in
``results/{experiment}/`` as ``{timestamp}_{git7}_{variant}_{id}.eval``.

Inspect is an optional dependency (``pip install experiment-infra[inspect]``): it is
imported inside the functions that need it, so the core imports without it.
"""

from __future__ import annotations

import os
import shlex
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..suites.config import ENTRY_POINT_ENV, BaseExperimentConfig
from ..records.inspect_logs import InspectNotInstalled, require_inspect
from ..files.atomic import move_aside
from ..layout import DIRTY_SUFFIX, InspectCasePaths, inspect_log_dir, inspect_log_file_pattern, inspect_logs_for
from ..provenance.git import git_provenance
from ..records import GitProvenance, InspectRunRecord, read_record, utc_now_iso, write_record
from .runner import stop_unfinished_attempt  # the standard mode's leftover handling, shared
from .streaming import OutputCallback, run_streaming
from ..status.rules import CaseClassification
from ..status.inspect import classify_inspect_case
from ..suites.suite import Suite, SuiteError

if TYPE_CHECKING:  # pragma: no cover
    from inspect_ai.log import EvalLog

# Inspect reads these when it names and places a log; the runner sets them per case.
LOG_PATTERN_ENV = "INSPECT_EVAL_LOG_FILE_PATTERN"
LOG_DIR_ENV = "INSPECT_LOG_DIR"
VARIANT_ENV = "EXPERIMENT_VARIANT"
SUITE_FILE_ENV = "EXPERIMENT_SUITE_FILE"
GIT_SHA_ENV = "EXPERIMENT_GIT_SHA"
GIT_DIRTY_ENV = "EXPERIMENT_GIT_DIRTY"

def case_env(log_dir: Path, git: GitProvenance, variant_name: str, suite_file: Path | None) -> dict[str, str]:
    """Environment for one case's subprocess: where and under which name Inspect logs,
    and the provenance ``run_inspect_case`` stores in the log beside the config."""
    return {
        LOG_PATTERN_ENV: inspect_log_file_pattern(git.short, variant_name),
        LOG_DIR_ENV: str(log_dir),
        VARIANT_ENV: variant_name,
        SUITE_FILE_ENV: str(suite_file or ""),
        GIT_SHA_ENV: git.sha,
        GIT_DIRTY_ENV: "true" if git.dirty else "false",
    }


def run_inspect_case(task: Any, config: BaseExperimentConfig, **eval_kwargs: Any) -> "EvalLog":
    """Run ``task`` for one case from inside its entry point; the config travels in the log.

    ``config.output_dir`` is the flat log directory; the log file name comes from
    the pattern the runner put in the environment.
    """
    require_inspect()
    from inspect_ai import eval as inspect_eval

    metadata = {
        **eval_kwargs.pop("metadata", {}),
        "config": config.model_dump(mode="json"),
        "config_class": f"{type(config).__module__}.{type(config).__qualname__}",
        "variant_name": os.environ.get(VARIANT_ENV),
        "suite_file": os.environ.get(SUITE_FILE_ENV),
        "git_sha": os.environ.get(GIT_SHA_ENV),
        "git_dirty": os.environ.get(GIT_DIRTY_ENV) == "true",
    }
    eval_kwargs.setdefault("display", "none")
    logs = inspect_eval(task, log_dir=config.assigned_output_dir or None, metadata=metadata, **eval_kwargs)
    return logs[0]


# ------------------------------------------------------------------- planning and running


@dataclass(frozen=True)
class InspectCase:
    variant_name: str
    command: tuple[str, ...]
    env: dict[str, str]
    log_pattern: str


@dataclass(frozen=True)
class InspectPlan:
    suite: Suite
    log_dir: Path
    git: GitProvenance
    cases: tuple[InspectCase, ...]


def plan_inspect_suite(
    suite: Suite, results_root: str | Path = "results", *, variants: list[str] | None = None, python: str = sys.executable
) -> InspectPlan:
    """Every case's command, environment and log name pattern; writes nothing."""
    log_dir = inspect_log_dir(Path(results_root).expanduser().resolve(), suite.experiment_name)
    git = git_provenance(suite.suite_file.parent if suite.suite_file else Path.cwd())
    known = {c.variant_name for c in suite.cases}
    unknown = sorted(set(variants or ()) - known)
    if unknown:
        raise SuiteError(f"variant {unknown[0]!r} is not in suite {suite.experiment_name!r}")
    planned = []
    for case in suite.cases:
        if variants is not None and case.variant_name not in variants:
            continue
        config = case.config.with_output_dir(str(log_dir))
        command = (python, str(suite.entry_point), *config.to_argv(case=case.variant_name))
        env = {**case_env(log_dir, git, case.variant_name, suite.suite_file), ENTRY_POINT_ENV: str(suite.entry_point)}
        planned.append(InspectCase(case.variant_name, command, env, env[LOG_PATTERN_ENV]))
    return InspectPlan(suite, log_dir, git, tuple(planned))


RESUME_REFUSED = (
    "--resume is not available in inspect mode: every run writes new .eval logs beside the old ones; "
    "re-run failed variants with `python flows/recover.py {log_dir}`"
)


def check_inspect(suite: Suite, resume: str | None, results_root: str | Path) -> InspectPlan:
    """What an inspect run would refuse (no Inspect AI, ``--resume``); its plan otherwise."""
    require_inspect()
    plan = plan_inspect_suite(suite, results_root)
    if resume is not None:
        raise SuiteError(RESUME_REFUSED.format(log_dir=plan.log_dir))
    return plan


def format_inspect_plan(plan: InspectPlan) -> str:
    git = plan.git.short + (DIRTY_SUFFIX if plan.git.dirty else "")
    lines = [
        f"dry run: inspect logs would go flat into {plan.log_dir}",
        f"experiment {plan.suite.experiment_name} (inspect), git {git}, {len(plan.cases)} case(s)",
    ]
    for case in plan.cases:
        lines.append(f"  {case.variant_name} -> {{timestamp}}_{case.log_pattern}.eval")
        lines.append(f"    {LOG_PATTERN_ENV}={shlex.quote(case.log_pattern)} {shlex.join(case.command)}")
    lines.append("nothing written, nothing started")
    return "\n".join(lines)


def run_inspect_process(
    case: InspectCase,
    log_dir: Path,
    *,
    timeout_seconds: float | None = None,
    on_output: OutputCallback | None = None,
    cwd: Path | None = None,
) -> CaseClassification:
    """Run one inspect case; its status is what ``status_inspect.classify_inspect_case`` reads back.

    The attempt is written down (an ``InspectRunRecord``: started, then ended with its exit
    and the log it wrote), so a recovery reads the same status as this run: only a log this
    attempt wrote counts, and a crash before Inspect started is never read as the success
    of an older log of the same variant.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    paths = InspectCasePaths.of(log_dir, case.variant_name)
    # An attempt a killed runner left running would write a log this attempt then claims.
    stop_unfinished_attempt(paths)
    previous = read_record(paths.run_record, InspectRunRecord)
    if previous.exists:
        move_aside(paths.run_record, paths.next_attempt_record())  # never deleted
    cwd = Path(cwd) if cwd is not None else Path.cwd()
    record = InspectRunRecord(
        variant_name=case.variant_name, command=list(case.command), cwd=str(cwd),
        attempt=previous.record.attempt + 1 if previous.record else 1,
        host=socket.gethostname(), started_at=utc_now_iso(),
    )
    write_record(paths.run_record, record)

    def started(pid: int) -> None:
        nonlocal record
        record = record.model_copy(update={"pid": pid})
        write_record(paths.run_record, record)

    before = set(inspect_logs_for(log_dir, case.variant_name))
    done = run_streaming(
        list(case.command),
        cwd=cwd,
        env={**os.environ, **case.env, "PYTHONUNBUFFERED": "1"},
        logs=None,
        on_output=on_output,
        timeout_seconds=timeout_seconds,
        on_start=started,
        on_stop="group",  # the run's Ctrl-C (interrupt.py) terminates its group, recorded below
    )
    written = sorted(set(inspect_logs_for(log_dir, case.variant_name)) - before, key=lambda p: p.name)
    write_record(paths.run_record, record.model_copy(update={
        "ended_at": utc_now_iso(), "exit_code": done.exit_code, "duration_seconds": done.duration_seconds,
        "timed_out": done.timed_out, "reason": done.reason, "eval_log": written[-1].name if written else None,
        "interrupted": done.stopped,
    }))
    if done.interrupted is not None:
        raise done.interrupted
    return classify_inspect_case(log_dir, case.variant_name)
