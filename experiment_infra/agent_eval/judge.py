"""Judge slots: prompt a judge model about one run, parse its verdict, build the consensus.

A judge's reply must hold a JSON object with ``score`` in [0, 1] and ``passed``
(bare, or inside a fenced code block). A reply without one is a failed slot whose
reason is recorded in ``command_log.json``: no score is ever invented for it.
"""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..files.atomic import atomic_write_text, move_aside
from ..reports.grading import grade_for
from ..layout import AgentRunPaths, ExperimentPaths, JudgeSlotPaths, judge_slot_name, next_aside
from ..processes.process import MARKER_ENV, new_marker, proc_start, run_logged
from ..records import (
    JudgeCommand,
    JudgeTiming,
    Judgment,
    explain_validation,
    utc_now_iso,
    write_record,
)
from ..recovery.regenerate import Panel, parse_agent_stdout, rebuild_after_judging
from ..status.rules import JudgeStatus, agent_finished, classify_agent, classify_judge
from ..status.limits import RATE_LIMITED, rate_limit_in, rate_limit_in_json
from .commands import cli_version, judge_replay_script, model_md, process_env, render
from .agent import stop_judge_leftovers
from .spec import AgentEvalSpec
from .workspace import workspace_changes

_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n(.*?)```", re.DOTALL)
MAX_OUTPUT_CHARS = 20_000

REPLY_FORMAT = """Reply with your verdict as a JSON object in a fenced ```json block:

```json
{
  "score": 0.0,
  "passed": false,
  "grade": "F",
  "reasoning": "why, in a few sentences",
  "categories": {"<criterion>": {"achieved": 0.0, "max": 1.0, "score": 0.0}}
}
```

`score` is a number from 0 to 1; `passed` is true or false."""


# ------------------------------------------------------------------------ prompt


def _read(path: Any) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""


def harness_files(spec: AgentEvalSpec, tier: str, subtest: str, paths: AgentRunPaths) -> set[str]:
    """Workspace files this project wrote (not the agent's work)."""
    if spec.condition(tier, subtest).system_prompt:
        return {paths.workspace_instructions.relative_to(paths.workspace).as_posix()}
    return set()


def build_judge_prompt(exp: ExperimentPaths, spec: AgentEvalSpec, tier: str, subtest: str, run_number: int) -> str:
    """The run's ``judge_prompt.md``: rubric, criteria, task, agent output, workspace changes."""
    paths = exp.run(tier, subtest, run_number)
    task = _read(paths.task_prompt) or _read(exp.prompt)
    output = _read(paths.output)
    if len(output) > MAX_OUTPUT_CHARS:
        output = output[:MAX_OUTPUT_CHARS] + "\n... (output truncated)"
    changes, diff = workspace_changes(paths.workspace, spec.task_commit, harness_files(spec, tier, subtest, paths))
    parts = []
    if rubric := _read(exp.rubric):
        parts += ["## Rubric (Evaluation Criteria)", "", "```yaml", rubric.rstrip(), "```", ""]
    if criteria := _read(exp.criteria):
        parts += ["## Success Criteria", "", criteria.rstrip(), ""]
    parts += ["## Task Given to Agent", "", task.rstrip(), "", "## Agent's Output", "", output.rstrip(), ""]
    parts += ["## Workspace State After Agent Execution", "", f"Workspace: `{paths.workspace.absolute()}`", ""]
    parts += ["Files modified/created by agent:", ""]
    parts += [f"- {c}" for c in changes] or ["- (none)"]
    parts += ["", "## Workspace Diff", "", "```diff", diff.rstrip() or "(no changes)", "```", "", "---", ""]
    parts += ["Evaluate the agent's work using the rubric and criteria above.", "", REPLY_FORMAT, ""]
    return "\n".join(parts)


# ----------------------------------------------------------------------- parsing


def _json_candidates(text: str) -> list[str]:
    stripped = text.strip()
    blocks = [m.group(1) for m in _FENCE.finditer(text)]
    candidates = [stripped, *reversed(blocks)]
    first, last = stripped.find("{"), stripped.rfind("}")
    if 0 <= first < last:
        candidates.append(stripped[first : last + 1])
    return candidates


def parse_judgment(reply: str) -> tuple[Judgment | None, str | None]:
    """The judgment in a judge's reply, or None and why there is none."""
    problem = "reply holds no JSON object"
    for candidate in _json_candidates(reply):
        try:
            data = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if not isinstance(data, dict):
            continue
        if "score" not in data or "passed" not in data:
            problem = "reply JSON has no score and passed fields"
            continue
        fields = {
            "score": data["score"],
            "passed": data["passed"],
            "grade": data.get("grade"),
            "reasoning": data.get("reasoning") or "",
            "is_valid": True,
            "criteria_scores": data.get("criteria_scores") or data.get("categories") or {},
        }
        try:
            judgment = Judgment.model_validate(fields)
        except ValidationError as exc:
            problem = f"reply JSON {explain_validation(exc)}"
            continue
        if judgment.grade is None:
            judgment = judgment.model_copy(update={"grade": grade_for(judgment.score)})
        return judgment, None
    if not reply.strip():
        problem = "empty reply"
    return None, f"unparseable judge reply: {problem}"


def reply_text(stdout: str) -> str:
    """The judge's answer: the ``result`` of a Claude Code JSON object, else stdout as is."""
    parsed = parse_agent_stdout(stdout)
    return parsed.result if parsed is not None and isinstance(parsed.result, str) else stdout


# ------------------------------------------------------------------------ running


def judge_argv(exp: ExperimentPaths, spec: AgentEvalSpec, tier: str, subtest: str, run_number: int, model: str) -> list[str]:
    paths = exp.run(tier, subtest, run_number)
    return render(
        spec.judge_command,
        model=model,
        prompt_file=paths.judge_prompt.absolute(),
        workspace=paths.workspace.absolute(),
        run_dir=paths.dir.absolute(),
        tier=tier,
        subtest=subtest,
        run_number=run_number,
    )


def run_judge(
    exp: ExperimentPaths,
    spec: AgentEvalSpec,
    tier: str,
    subtest: str,
    run_number: int,
    slot: int,
    model: str,
    *,
    model_override: bool = False,
) -> JudgeStatus:
    """Grade one run with one judge model into ``judge/judge_{slot:02d}/``."""
    paths = exp.run(tier, subtest, run_number)
    slot_paths = paths.judge_slot(slot)
    if slot_paths.dir.exists() or slot_paths.dir.is_symlink():
        raise FileExistsError(f"{slot_paths.dir}: judge slot already exists; move it aside before rerunning it")
    if not agent_finished(classify_agent(paths)[0]):
        return JudgeStatus.AGENT_FAILED
    if not paths.judge_prompt.is_file():
        # Identical text for every slot of a run, so concurrent slots may both write it.
        atomic_write_text(paths.judge_prompt, build_judge_prompt(exp, spec, tier, subtest, run_number))
    slot_paths.dir.mkdir(parents=True)

    argv = judge_argv(exp, spec, tier, subtest, run_number, model)
    cwd = paths.workspace if paths.workspace.is_dir() else paths.dir
    atomic_write_text(slot_paths.model_md, model_md("Judge", model, cli_version(argv), utc_now_iso()))
    atomic_write_text(slot_paths.replay, judge_replay_script(argv, str(cwd.absolute())))
    os.chmod(slot_paths.replay, 0o755)
    command = JudgeCommand(
        model=model, command=argv, cwd=str(cwd.absolute()), started_at=utc_now_iso(), model_override=model_override
    )
    write_record(slot_paths.command_log, command)  # started, not ended: a killed judge reads as partial

    marker = new_marker()

    def started(pid: int, at: str) -> None:
        nonlocal command
        update = {"host": socket.gethostname(), "pid": pid, "pid_start": proc_start(pid), "marker": marker}
        command = command.model_copy(update=update)
        write_record(slot_paths.command_log, command)

    result = run_logged(
        argv, cwd=cwd, env={**process_env({}), MARKER_ENV: marker}, stdout_path=slot_paths.stdout,
        stderr_path=slot_paths.stderr, timeout_seconds=spec.judge_timeout_seconds,
        die_with_parent=True, on_start=started,  # an orphaned judge spends money on a grade nobody records
    )
    if slot_paths.stderr.stat().st_size == 0:
        slot_paths.stderr.unlink()  # ProjectScylla's slots hold no stderr.log; keep only one that says something
    reply = reply_text(slot_paths.stdout.read_bytes().decode("utf-8", errors="replace"))
    atomic_write_text(slot_paths.response, reply)
    reason = result.reason
    if result.exit_code == 0:
        judgment, reason = parse_judgment(reply)
        if judgment is not None:
            write_record(slot_paths.judgment, judgment)
    if reason is not None:  # a judge that hit a limit says so, as ProjectScylla reads its output
        reason = _rate_limited(slot_paths, reason)
    write_record(slot_paths.timing, JudgeTiming(judge_duration_seconds=result.duration_seconds, measured_at=result.ended_at))
    write_record(
        slot_paths.command_log,
        command.model_copy(
            update={
                "ended_at": result.ended_at,
                "exit_code": result.exit_code,
                "duration_seconds": result.duration_seconds,
                "timed_out": result.timed_out,
                "reason": reason,
            }
        ),
    )
    return classify_judge(slot_paths, model).status


def _rate_limited(slot_paths: JudgeSlotPaths, reason: str) -> str:
    """``reason``, or ``rate limited: judge: …`` when the judge's JSON or stderr names a limit."""
    stdout = slot_paths.stdout.read_bytes().decode("utf-8", errors="replace") if slot_paths.stdout.is_file() else ""
    stderr = slot_paths.stderr.read_bytes().decode("utf-8", errors="replace") if slot_paths.stderr.is_file() else ""
    message = rate_limit_in_json(stdout) or next((l for l in stderr.splitlines() if rate_limit_in(l)), None)
    return f"{RATE_LIMITED}: judge: {' '.join(message.split())[:300]}" if message is not None else reason


def set_aside_slot(exp: ExperimentPaths, tier: str, subtest: str, run_number: int, slot: int) -> Path | None:
    """Move an earlier attempt of a judge slot to ``judge/.failed/judge_NN_attempt_K`` (never deleted),
    after stopping its judge if that still runs (``stop_judge_leftovers``)."""
    paths = exp.run(tier, subtest, run_number)
    stop_judge_leftovers(paths.judge_slot(slot))
    slot_dir = paths.judge_slot(slot).dir
    if not slot_dir.exists() and not slot_dir.is_symlink():
        return None
    return move_aside(slot_dir, next_aside(paths.judge_dir, judge_slot_name(slot)), root=exp.dir)


def finish_run(exp: ExperimentPaths, spec: AgentEvalSpec, tier: str, subtest: str, run_number: int) -> None:
    """Consensus, judge timing and ``run_result.json`` (via ``regenerate``); nothing without a valid judgment."""
    paths = exp.run(tier, subtest, run_number)
    models = list(spec.judge_models)
    if not Panel.read(paths, models).judgments:
        return
    rebuild_after_judging(paths, models)
