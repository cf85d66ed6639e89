"""Rebuild an agent run's derived JSON from its logs and judgments (pure JSON, no subprocess).

The agent-evaluation writer uses the same functions after a run, so a regenerated
file and a freshly written one are the same file by construction.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..files.atomic import move_aside
from ..reports.grading import grade_for
from ..layout import AgentRunPaths, JudgeSlotPaths, next_aside
from ..records import (
    AgentResult,
    AgentTiming,
    ClaudeCodeOutput,
    CommandLog,
    Consensus,
    JudgeCommand,
    JudgeSummary,
    JudgeTiming,
    Judgment,
    RecordError,
    RunResult,
    TokenStats,
    forget,
    load_record,
    read_once,
    read_record,
    utc_now_iso,
    write_record,
)
from ..status.rules import JudgeStatus, judge_verdict


def _read_text(path: Path) -> str:
    if path.is_symlink() or not path.is_file():
        return ""
    return path.read_bytes().decode("utf-8", errors="replace")


def parse_agent_stdout(stdout: str) -> ClaudeCodeOutput | None:
    """The agent's ``--output-format json`` result object, or None when there is none.

    Claude Code prints one JSON object; stream-json prints one per line, the last
    being the result, so the last line that parses as a result object wins.
    """
    text = stdout.strip()
    if not text:
        return None
    candidates = [text] + [line for line in reversed(text.splitlines()) if line.strip()]
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and data.get("type", "result") == "result":
            try:
                return ClaudeCodeOutput.model_validate(data)
            except ValueError:
                continue
    return None


def build_agent_result(paths: AgentRunPaths) -> AgentResult:
    """``agent/result.json`` from stdout.log, stderr.log and command_log.json."""
    log = load_record(paths.command_log, CommandLog)
    stdout = _read_text(paths.agent_stdout)
    parsed = parse_agent_stdout(stdout)
    return AgentResult(
        exit_code=log.exit_code,
        stdout=stdout,
        stderr=_read_text(paths.agent_stderr),
        token_stats=parsed.token_stats() if parsed else TokenStats(),
        cost_usd=parsed.total_cost_usd if parsed else 0.0,
        api_calls=parsed.num_turns if parsed else 0,
    )


@dataclass(frozen=True)
class Panel:
    """The judge slots of a run: the valid judgments by slot, with their models, and the rest."""

    judgments: list[tuple[int, str, Judgment]]
    others: list[tuple[int, str, str]] = field(default_factory=list)  # (slot, model, why) of every other slot
    # Slots whose judge ran and gave no valid judgment (``failed``): a judge that never
    # judged (``missing``, ``partial``) is not among them.
    invalid: frozenset[int] = frozenset()

    @classmethod
    def read(cls, paths: AgentRunPaths, judge_models: list[str]) -> Panel:
        """The slots whose status is ``complete`` (same rule as classification), each
        credited to the model that judged it (``judged_by``), which ``--judge-model`` changes."""
        found, others, invalid = [], [], set()
        for slot, model in enumerate(judge_models, start=1):
            verdict, judgment = judge_verdict(paths.judge_slot(slot), model)
            if judgment is not None:
                found.append((slot, judged_by(paths.judge_slot(slot), model), judgment))
            else:
                others.append((slot, judged_by(paths.judge_slot(slot), model), f"{verdict.status.value}: {verdict.reason}"))
                if verdict.status is JudgeStatus.FAILED:
                    invalid.add(slot)
        return cls(found, others, frozenset(invalid))

    @property
    def valid(self) -> bool:
        """ProjectScylla's consensus ``is_valid``: every judge that judged gave a valid
        judgment. It is built from the slots present, as ProjectScylla builds it (its
        ``_regenerate_consensus`` reads the judgments there; its live writer lists each
        judge that failed as invalid): a configured judge that never judged does not
        make it false, or ProjectScylla's analysis would drop the run."""
        return not self.invalid

    def representative(self) -> Judgment:
        """The valid judgment whose score is closest to the mean, the first (by slot) on a
        tie: whose reasoning and criteria the consensus carries, as ProjectScylla picks it
        since 2026-02-09 (``min`` over the valid judges by distance to the consensus score)."""
        mean = sum(j.score for _, _, j in self.judgments) / len(self.judgments)
        return min((j for _, _, j in self.judgments), key=lambda j: abs(j.score - mean))

    def consensus(self, *, current: bool = True) -> Consensus:
        """Mean score, strict-majority pass, grade from the mean.

        ``current``: as ProjectScylla writes it since 2026-02-09: the reasoning and
        ``criteria_scores`` (``{}``, never null) of the judge closest to the mean
        (``representative``), and ``is_valid`` (``valid``). Otherwise as its older
        writer did: the first valid judge's reasoning and neither field.
        """
        if not self.judgments:
            raise RecordError("no valid judgment to build a consensus from")
        scores = [j.score for _, _, j in self.judgments]
        score = sum(scores) / len(scores)
        passes = sum(1 for _, _, j in self.judgments if j.passed)
        primary = self.representative() if current else self.judgments[0][2]
        extra: dict[str, object] = {}
        if current:
            extra = dict(
                is_valid=self.valid,
                criteria_scores=primary.criteria_scores or {},
                # This project's addition: which model's judgment each averaged slot holds.
                judges=[{"judge_number": slot, "model": model} for slot, model, _ in self.judgments],
            )
        return Consensus(
            score=score,
            passed=passes * 2 > len(self.judgments),
            grade=grade_for(score),
            reasoning=primary.reasoning,
            **extra,
        )

    def summaries(self, *, current: bool = True) -> list[JudgeSummary]:
        """``run_result.json`` ``judges``; ``current`` adds each entry's ``is_valid`` and
        ``criteria_scores`` and lists the slots without a valid judgment too, as ProjectScylla
        does (score 0, not passed, grade F, ``is_valid: false``, the reason)."""
        valid = [
            (slot, JudgeSummary(
                model=model,
                score=j.score,
                passed=j.passed,
                grade=j.grade if j.grade is not None else grade_for(j.score),
                reasoning=j.reasoning,
                judge_number=slot,
                **(dict(is_valid=True, criteria_scores=j.criteria_scores) if current else {}),
            ))
            for slot, model, j in self.judgments
        ]
        if not current:
            return [summary for _, summary in valid]
        failed = [
            (slot, JudgeSummary(
                model=model, score=0.0, passed=False, grade="F", reasoning=f"Judge failed: {why}",
                judge_number=slot, is_valid=False, criteria_scores={},
            ))
            for slot, model, why in self.others
        ]
        return [summary for _, summary in sorted(valid + failed, key=lambda item: item[0])]


_MODEL_LINE = "**Model**:"


def judged_by(slot: JudgeSlotPaths, configured: str) -> str:
    """The model whose judgment the slot holds: its ``command_log.json`` (this project's,
    ``--judge-model`` included), else its ``MODEL.md`` (ProjectScylla's), else ``configured``."""
    command = read_record(slot.command_log, JudgeCommand).record
    if command is not None and command.model.strip():
        return command.model
    try:
        if not slot.model_md.is_symlink():
            for line in slot.model_md.read_text(encoding="utf-8", errors="replace").splitlines()[:20]:
                if line.startswith(_MODEL_LINE) and line[len(_MODEL_LINE):].strip():
                    return line[len(_MODEL_LINE):].strip()
    except OSError:
        pass
    return configured


def writes_current_fields(paths: AgentRunPaths, panel: Panel) -> bool:
    """Do this run's regenerated files carry the fields ProjectScylla writes today?

    Yes for a run this project wrote (its judge slots hold our ``command_log.json``), a
    run whose surviving ``judge/result.json`` or ``run_result.json`` already has them,
    and a run whose panel is not fully valid (only ``is_valid: false`` can say so). A
    run whose files show an older writer (before 2026-02-09), or show no writer at all,
    keeps that writer's shape, so an older experiment regenerates equal to its originals.
    """
    if not panel.valid:
        return True
    for slot in range(1, len(panel.judgments) + len(panel.others) + 1):
        if read_record(paths.judge_slot(slot).command_log, JudgeCommand).record is not None:
            return True
    consensus = read_record(paths.consensus, Consensus).record
    if consensus is not None:
        return "is_valid" in (consensus.model_extra or {})
    previous = read_record(paths.run_result, RunResult).record
    if previous is not None and previous.judges:
        return all("is_valid" in (j.model_extra or {}) for j in previous.judges)
    return False


def agent_duration(paths: AgentRunPaths) -> float:
    """``agent/timing.json`` if valid, else what the run recorded without it.

    ProjectScylla wrote no timing files before 2026-01-10: ``run_result.json``
    (when still valid) and ``command_log.json`` (every entry's ``duration_seconds``)
    hold the same number.
    """
    timing = read_record(paths.agent_timing, AgentTiming).record
    if timing is not None:
        return timing.agent_duration_seconds
    previous = read_record(paths.run_result, RunResult).record
    if previous is not None:
        return previous.agent_duration_seconds
    log = read_record(paths.command_log, CommandLog)
    if log.record is not None and log.record.duration_seconds is not None:
        return log.record.duration_seconds
    raise RecordError(
        f"{paths.agent_timing}: {read_record(paths.agent_timing, AgentTiming).problem}, and neither "
        "run_result.json nor command_log.json records how long the agent ran"
    )


def judge_duration(paths: AgentRunPaths, judge_models: list[str]) -> float:
    """``judge/timing.json`` if valid, else the sum of the slots' timings (judges run in turn);
    with no timing file at all (older ProjectScylla), a valid ``run_result.json``'s value."""
    total = read_record(paths.judge_timing, JudgeTiming).record
    if total is not None:
        return total.judge_duration_seconds
    slots = _slot_timings(paths, judge_models)
    if not slots:
        previous = read_record(paths.run_result, RunResult).record
        if previous is not None:
            return previous.judge_duration_seconds
    return sum(t.judge_duration_seconds for t in slots)


def _slot_timings(paths: AgentRunPaths, judge_models: list[str]) -> list[JudgeTiming]:
    slots = (read_record(paths.judge_slot(i).timing, JudgeTiming).record for i in range(1, len(judge_models) + 1))
    return [t for t in slots if t is not None]


def panel_timing(paths: AgentRunPaths, judge_models: list[str]) -> JudgeTiming | None:
    """``judge/timing.json`` from the slots' own: their durations summed, measured when the
    last of them ended, as ProjectScylla writes it (the reports take it as the run's end:
    the time of a regeneration would stretch the run to then); None without slot timings."""
    slots = _slot_timings(paths, judge_models)
    if not slots:
        return None
    ended = [t for t in slots if t.measured is not None]
    last = max(ended, key=lambda t: t.measured).measured_at if ended else utc_now_iso()  # type: ignore[arg-type, return-value]
    return JudgeTiming(judge_duration_seconds=sum(t.judge_duration_seconds for t in slots), measured_at=last)


def build_run_result(
    paths: AgentRunPaths, judge_models: list[str], *, judge_seconds: float | None = None
) -> tuple[RunResult, Consensus]:
    agent = read_record(paths.agent_result, AgentResult).record or build_agent_result(paths)
    agent_seconds = agent_duration(paths)
    panel = Panel.read(paths, judge_models)
    current = writes_current_fields(paths, panel)
    consensus = panel.consensus(current=current)
    if judge_seconds is None:
        judge_seconds = judge_duration(paths, judge_models)
    stats = agent.token_stats
    result = RunResult(
        run_number=paths.run_number,
        exit_code=agent.exit_code,
        token_stats=stats,
        tokens_input=stats.input_tokens + stats.cache_read_tokens,
        tokens_output=stats.output_tokens,
        cost_usd=agent.cost_usd,
        duration_seconds=agent_seconds + judge_seconds,
        agent_duration_seconds=agent_seconds,
        judge_duration_seconds=judge_seconds,
        judge_score=consensus.score,
        judge_passed=consensus.passed,
        judge_grade=consensus.grade,
        judge_reasoning=consensus.reasoning,
        judges=panel.summaries(current=current),
        workspace_path=os.path.abspath(paths.workspace),
        logs_path=os.path.abspath(paths.agent_dir),
        command_log_path=os.path.abspath(paths.command_log),
        criteria_scores=consensus.criteria_scores if current else {},
    )
    return result, consensus


def _replace_record(
    path: Path, record: RunResult | Consensus | JudgeTiming | AgentResult, *, fsync: bool = True
) -> None:
    """Write ``record`` at ``path``; an invalid file there is moved aside first, never lost.

    A file this project could not validate may still hold what its writer meant
    (a newer writer's shape, say), so it is kept under ``.failed/`` beside it. A
    valid one is simply replaced: it is derived from files that are kept.
    """
    if (path.exists() or path.is_symlink()) and read_record(path, type(record)).record is None:
        move_aside(path, next_aside(path.parent, path.name))
        forget(path)
    write_record(path, record, fsync=fsync)


def regenerate_run(paths: AgentRunPaths, judge_models: list[str], *, dry_run: bool = False) -> list[Path]:
    """Rewrite whichever derived files are missing or invalid; returns the files written.

    Valid files are left alone, so regeneration is idempotent and never loses a
    value an original writer put there. No fsync per file: these are derived files,
    and one a crash leaves empty reads as absent and is simply regenerated again.
    """
    with read_once():  # its rules ask for some files several times over
        return _regenerate_run(paths, judge_models, dry_run=dry_run)


def _regenerate_run(paths: AgentRunPaths, judge_models: list[str], *, dry_run: bool) -> list[Path]:
    written: list[Path] = []
    if read_record(paths.agent_result, AgentResult).record is None:
        if not dry_run:
            _replace_record(paths.agent_result, build_agent_result(paths), fsync=False)
        written.append(paths.agent_result)
    consensus_ok = read_record(paths.consensus, Consensus).record is not None
    result_ok = read_record(paths.run_result, RunResult).record is not None
    if consensus_ok and result_ok:
        return written
    run_result, consensus = build_run_result(paths, judge_models)
    if not dry_run:
        timing = panel_timing(paths, judge_models) if read_record(paths.judge_timing, JudgeTiming).record is None else None
        if timing is not None:
            _replace_record(paths.judge_timing, timing, fsync=False)
        if not consensus_ok:
            _replace_record(paths.consensus, consensus, fsync=False)
        if not result_ok:
            _replace_record(paths.run_result, run_result, fsync=False)
    if not consensus_ok:
        written.append(paths.consensus)
    if not result_ok:
        written.append(paths.run_result)
    return written


def rebuild_after_judging(paths: AgentRunPaths, judge_models: list[str]) -> RunResult:
    """After a judge (re)run: consensus, judge timing and run_result.json from scratch."""
    timing = panel_timing(paths, judge_models) or JudgeTiming(judge_duration_seconds=0.0, measured_at=utc_now_iso())
    # Everything is built before anything is written: no valid judgment, no change on disk.
    agent = read_record(paths.agent_result, AgentResult).record
    run_result, consensus = build_run_result(paths, judge_models, judge_seconds=timing.judge_duration_seconds)
    if agent is None:
        _replace_record(paths.agent_result, build_agent_result(paths))
    _replace_record(paths.judge_timing, timing)
    _replace_record(paths.consensus, consensus)
    _replace_record(paths.run_result, run_result)
    return run_result
