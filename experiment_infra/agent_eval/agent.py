"""One agent run: workspace, prompt, the agent command with a timeout, and its records.

Files are written in the order the status rules read them: logs while the agent
runs, then ``output.txt``, ``timing.json`` and ``command_log.json`` (which makes the
run count as finished), then ``result.json`` built by ``regenerate`` from those, so
a written result and a regenerated one are the same file. A run killed half way
leaves logs and no command log: ``partial``.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from ..files.atomic import atomic_write_text, move_aside
from ..layout import AgentRunPaths, ExperimentPaths, JudgeSlotPaths
from ..records import (
    AgentTiming,
    CommandEntry,
    CommandLog,
    JudgeCommand,
    ProcessRecord,
    read_record,
    utc_now_iso,
    write_record,
)
from ..recovery.regenerate import build_agent_result
from ..status.rules import RunStatus, classify_agent
from .commands import agent_replay_script, cli_version, model_md, process_env, recorded_env, render
from ..processes.process import MARKER_ENV, new_marker, proc_start, run_logged, stop_leftover
from .spec import AgentEvalError, AgentEvalSpec
from .workspace import create_workspace


def refuse_existing(path: Path, what: str) -> None:
    """Nothing is ever written over an earlier attempt: the caller moves it aside first."""
    if path.is_symlink() or (path.exists() and (not path.is_dir() or any(path.iterdir()))):
        raise FileExistsError(f"{path}: {what} already has files; move the earlier attempt aside before rerunning it")


def refuse_linked_parents(exp: ExperimentPaths, tier: str, subtest: str) -> None:
    """A tier or subtest directory that is a symlink would take the run's files (and the
    move of its earlier attempt) out of the experiment: refused, never written through."""
    top = [("completed", exp.tier_top)] if exp.tier_top != exp.dir else []
    for kind, directory in (*top, ("tier", exp.tier(tier).dir), ("subtest", exp.subtest(tier, subtest).dir)):
        if directory.is_symlink():
            raise AgentEvalError(
                f"{kind} directory {directory} is a symlink; runs are never written through one: "
                "replace it with a real directory"
            )


def stop_leftovers(paths: AgentRunPaths) -> list[str]:
    """Stop the agent and judge processes (or what they left) an earlier attempt of this run
    still has running on this host, from their records; what was stopped, as sentences.

    Agents and judges die with the process that started them (Linux), but a command's own
    children may not, and elsewhere nothing kills them: this keeps an orphan from
    running beside the rerun (and from writing into the attempt being moved aside).
    """
    stopped = []
    # A record read through a symlinked run or agent directory is not this experiment's:
    # whatever process it names is left alone (as with a judge slot that is a link).
    linked = paths.dir.is_symlink() or paths.agent_dir.is_symlink()
    agent = None if linked else read_record(paths.agent_process, ProcessRecord).record
    if agent is not None:
        said = stop_leftover(agent.pid, agent.host, agent.command, agent.pid_start, agent.marker)
        stopped += [f"agent: {said}"] if said else []
    for slot in paths.judge_slots_on_disk():
        stopped += stop_judge_leftovers(slot)
    return stopped


def stop_judge_leftovers(slot: JudgeSlotPaths) -> list[str]:
    """``stop_leftovers`` for one judge slot, from its ``command_log.json`` (not read through a link)."""
    if slot.dir.is_symlink() or slot.dir.parent.is_symlink():
        return []
    judge = read_record(slot.command_log, JudgeCommand).record
    if judge is None or judge.ended_at is not None or judge.pid is None or judge.host is None:
        return []
    said = stop_leftover(judge.pid, judge.host, judge.command, judge.pid_start, judge.marker)
    return [f"{slot.dir.name}: {said}"] if said else []


def set_aside_run(exp: ExperimentPaths, tier: str, subtest: str, run_number: int) -> Path | None:
    """Move an earlier attempt of a run to ``{subtest}/.failed/run_NN_attempt_K`` (never deleted),
    after stopping whatever of it still runs (``stop_leftovers``)."""
    refuse_linked_parents(exp, tier, subtest)
    paths = exp.run(tier, subtest, run_number)
    stop_leftovers(paths)
    if not paths.dir.is_symlink() and (not paths.dir.exists() or (paths.dir.is_dir() and not any(paths.dir.iterdir()))):
        return None
    return move_aside(paths.dir, exp.subtest(tier, subtest).next_failed_attempt(run_number), root=exp.dir)


def agent_argv(exp: ExperimentPaths, spec: AgentEvalSpec, tier: str, subtest: str, run_number: int) -> list[str]:
    paths = exp.run(tier, subtest, run_number)
    condition = spec.condition(tier, subtest)
    return render(
        spec.agent_command,
        extra_args=condition.extra_args,
        model=condition.model,
        prompt_file=paths.prompt.absolute(),
        workspace=paths.workspace.absolute(),
        run_dir=paths.dir.absolute(),
        tier=tier,
        subtest=subtest,
        run_number=run_number,
    )


def _read_prompt(exp: ExperimentPaths) -> str:
    if not exp.prompt.is_file():
        raise AgentEvalError(f"{exp.prompt}: task prompt missing; the experiment directory needs its prompt.md")
    return exp.prompt.read_text(encoding="utf-8")


def run_agent(exp: ExperimentPaths, spec: AgentEvalSpec, tier: str, subtest: str, run_number: int) -> RunStatus:
    """Run the agent once for ``{tier}/{subtest}/run_{NN}``; return what the disk now says.

    A hang is killed at ``agent_timeout_seconds`` and recorded as a failed run
    (exit code 124 and the reason); the workspace is always kept.
    """
    condition = spec.condition(tier, subtest)
    paths: AgentRunPaths = exp.run(tier, subtest, run_number)
    refuse_linked_parents(exp, tier, subtest)
    refuse_existing(paths.dir, "run directory")
    prompt = _read_prompt(exp)
    paths.agent_dir.mkdir(parents=True, exist_ok=True)

    workspace = create_workspace(exp, paths, spec.task_repo, spec.task_commit)
    if condition.system_prompt:
        atomic_write_text(paths.workspace_instructions, condition.system_prompt)
    atomic_write_text(paths.task_prompt, prompt)
    atomic_write_text(paths.prompt, prompt)

    argv = agent_argv(exp, spec, tier, subtest, run_number)
    now = utc_now_iso()
    atomic_write_text(paths.agent_model_md, model_md("Agent", condition.model, cli_version(argv), now, argv))
    atomic_write_text(paths.agent_replay, agent_replay_script(argv, str(workspace), condition.env, now))
    os.chmod(paths.agent_replay, 0o755)

    marker = new_marker()

    def started(pid: int, at: str) -> None:
        record = ProcessRecord(
            command=argv, host=socket.gethostname(), pid=pid, started_at=at, pid_start=proc_start(pid), marker=marker
        )
        write_record(paths.agent_process, record)

    result = run_logged(
        argv,
        cwd=workspace,
        env={**process_env(condition.env), MARKER_ENV: marker},
        stdout_path=paths.agent_stdout,
        stderr_path=paths.agent_stderr,
        timeout_seconds=spec.agent_timeout_seconds,
        die_with_parent=True,  # an orphaned agent spends money on a run nobody records
        on_start=started,
    )
    atomic_write_text(paths.output, paths.agent_stdout.read_bytes().decode("utf-8", errors="replace"))
    write_record(paths.agent_timing, AgentTiming(agent_duration_seconds=result.duration_seconds, measured_at=result.ended_at))
    entry = CommandEntry(
        timestamp=result.ended_at,
        command=argv,
        cwd=str(workspace),
        env_vars=recorded_env(condition.env),
        exit_code=result.exit_code,
        stdout_file=paths.agent_stdout.name,
        stderr_file=paths.agent_stderr.name,
        duration_seconds=result.duration_seconds,
        timed_out=result.timed_out,
        reason=result.reason,
    )
    write_record(paths.command_log, CommandLog(generated_at=result.ended_at, total_commands=1, commands=[entry]))
    write_record(paths.agent_result, build_agent_result(paths))
    return classify_agent(paths)[0]
