"""Every status rule, in one place: what the files on disk say about a case or run.

The disk is the truth. Prefect states, checkpoints and manifests are views of it;
these functions decide, from file contents (not mere existence), whether a case or
an agent run is done, needs regenerating, or needs running again.
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import NamedTuple

from ..layout import AgentRunPaths, CasePaths, JudgeSlotPaths, judge_slot_name
from ..records import (
    AgentResult,
    AgentTiming,
    NOFOLLOW_READ_FLAGS,
    CommandLog,
    Consensus,
    JudgeCommand,
    JudgeTiming,
    Judgment,
    RunRecord,
    ReadResult,
    RunResult,
    read_record,
)
from ..records.base import M
# The names the rules read (declared beside the cache signature over them).
from .entries import _SEP, _Names, _SlotNames, _at
from .limits import agent_rate_limit, judge_failure_reason


class CaseStatus(str, Enum):
    """A standard-mode (or inspect-mode) case."""

    COMPLETED = "completed"
    FAILED = "failed"
    PARTIAL = "partial"
    MISSING = "missing"


class RunStatus(str, Enum):
    """The agent side of an agent-evaluation run."""

    COMPLETED = "completed"
    RESULTS = "results"  # agent finished; result files missing: regenerate, run nothing
    FAILED = "failed"
    PARTIAL = "partial"
    MISSING = "missing"


class JudgeStatus(str, Enum):
    """One judge slot of an agent-evaluation run."""

    COMPLETE = "complete"
    MISSING = "missing"
    FAILED = "failed"
    PARTIAL = "partial"
    AGENT_FAILED = "agent_failed"


# "The agent finished": it ran to the end with usable output (its derived files may still
# need regenerating). Judges grade only such a run; every other status reruns the agent.
AGENT_FINISHED_STATUSES = frozenset({RunStatus.COMPLETED, RunStatus.RESULTS})
AGENT_RERUN_STATUSES = frozenset(RunStatus) - AGENT_FINISHED_STATUSES


def agent_finished(status: RunStatus) -> bool:
    """The one "agent finished" predicate: judges may grade the run, no agent rerun is due."""
    return status in AGENT_FINISHED_STATUSES


JUDGE_RERUN_STATUSES = frozenset({JudgeStatus.MISSING, JudgeStatus.FAILED, JudgeStatus.PARTIAL})


@dataclass(frozen=True)
class CaseClassification:
    status: CaseStatus
    reason: str
    record: RunRecord | None = None  # an inspect case's is an InspectRunRecord


class JudgeClassification(NamedTuple):
    """One judge slot's status. Named tuples, not dataclasses, these two: a survey makes
    one per run and slot (forty thousand for ten thousand runs of a panel of three), and
    a tuple is built in a fifth of a frozen dataclass's time."""

    slot: int
    model: str
    status: JudgeStatus
    reason: str


class RunClassification(NamedTuple):
    status: RunStatus
    reason: str
    judges: tuple[JudgeClassification, ...] = ()

    @property
    def needs_agent(self) -> bool:
        return self.status in AGENT_RERUN_STATUSES

    @property
    def judges_needing_work(self) -> tuple[JudgeClassification, ...]:
        return tuple(j for j in self.judges if j.status in JUDGE_RERUN_STATUSES)


# A classification as plain values: what the status cache stores and what the worker
# processes of a batch send back (status_batch), in one shape for both.
PlainClassification = tuple[str, str, tuple[tuple[str, str], ...]]


# Status names to members: a dict lookup, where ``JudgeStatus(name)`` goes through
# Enum's Python-level call machinery (a third of from_plain's time).
_RUN_STATUS_OF = {m.value: m for m in RunStatus}
_JUDGE_STATUS_OF = {m.value: m for m in JudgeStatus}


def from_plain(status: str, reason: str, judges: Sequence[Sequence[str]], judge_models: Sequence[str]) -> RunClassification:
    """A ``PlainClassification`` as status objects; ValueError for a status name these rules do not have."""
    try:
        slots = tuple(
            JudgeClassification(i, m, _JUDGE_STATUS_OF[s], r) for i, (m, (s, r)) in enumerate(zip(judge_models, judges), 1)
        )
        return RunClassification(_RUN_STATUS_OF[status], reason, slots)
    except (KeyError, TypeError):  # TypeError: a name that is not text (unhashable) at all
        raise ValueError(f"not a status these rules have, among {status!r} and {list(judges)!r}") from None


# -------------------------------------------------------------------- helpers


def _is_real_dir(path: Path) -> bool:
    # A symlinked directory may point outside the experiment: never follow it.
    return not path.is_symlink() and path.is_dir()


def _entries(path: Path | str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


# -------------------------------------------------------------- standard mode


def classify_case(paths: CasePaths) -> CaseClassification:
    """Status of one standard-mode case, from its run record."""
    if not _is_real_dir(paths.dir):
        return CaseClassification(CaseStatus.MISSING, "case directory does not exist")
    read = read_record(paths.run_record, RunRecord)
    if read.problem == "missing":
        return CaseClassification(CaseStatus.MISSING, "never started (no run record)")
    record = read.record
    if record is None:
        return CaseClassification(CaseStatus.PARTIAL, f"run record unusable ({read.problem})")
    unfinished = never_finished(record)
    if unfinished is not None:
        return unfinished
    if record.exit_code == 0 and not record.timed_out:
        return CaseClassification(CaseStatus.COMPLETED, "exit code 0", record)
    return CaseClassification(CaseStatus.FAILED, f"attempt {record.attempt}: {why_it_ended(record)}", record)



def never_finished(record: RunRecord) -> CaseClassification | None:
    """``partial``, for a standard and an inspect-mode case alike: the attempt's end was never recorded."""
    if record.ended_at is None or record.exit_code is None:
        return CaseClassification(
            CaseStatus.PARTIAL, f"attempt {record.attempt} started {record.started_at} and never finished", record
        )
    return None


def why_it_ended(record: RunRecord) -> str:
    """How a finished attempt ended, in words: the recorded reason, a timeout, or its exit code."""
    return record.reason or ("timed out" if record.timed_out else f"exit code {record.exit_code}")


# ------------------------------------------------------------ agent evaluation
# Classification reads every expected run of an experiment (tens of thousands), so it
# works on plain strings (no Path object per file) and lets each open double as the
# existence check: a completed run costs one open+read per JSON file and one lstat
# per directory, and nothing is listed unless the files it looks for are absent.
# Directories are lstat-ed (never followed) so a symlink cannot lead outside the
# experiment; files are opened with O_NOFOLLOW by read_record.


def _kind(path: str) -> str:
    """``dir``, ``symlink``, ``other`` or ``absent`` (lstat: links are never followed)."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return "absent"
    if stat.S_ISDIR(mode):
        return "dir"
    return "symlink" if stat.S_ISLNK(mode) else "other"


def _text_in(path: str) -> bool:
    """A regular file (not a link) with at least one non-whitespace byte."""
    try:
        fd = os.open(path, NOFOLLOW_READ_FLAGS)
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
            return False
        return st.st_size > 4096 or bool(os.read(fd, 4096).strip())
    except OSError:
        return False
    finally:
        os.close(fd)


def _recorded_reason(log: CommandLog) -> str | None:
    """The writer's own account of the failing command (e.g. a timeout), if it left one."""
    entry = next((c for c in log.commands if c.exit_code != 0), None)
    if entry is None or not entry.reason:
        return None
    return f"agent exited with code {entry.exit_code}: {entry.reason}"


def _linked_parent(run: str, checked: dict[str, str | None] | None = None) -> str | None:
    """``subtest`` or ``tier`` when the directory holding the run is a symlink.

    Every read below goes through these two directories, and O_NOFOLLOW guards only
    the last component of a path: a linked one would lead the reads out of the experiment.
    ``checked``: answers already found in this batch, by subtest directory (its runs share it).
    """
    subtest = os.path.dirname(run)
    if checked is not None and subtest in checked:
        return checked[subtest]
    linked = None
    if subtest and _kind(subtest) == "symlink":
        linked = "subtest"
    else:
        tier = os.path.dirname(subtest)
        if tier and _kind(tier) == "symlink":
            linked = "tier"
    if checked is not None:
        checked[subtest] = linked
    return linked


def _classify_agent_at(run: str, checked: dict[str, str | None] | None = None) -> tuple[RunStatus, str]:
    status, reason, _ = _agent_verdict(run, checked)
    return status, reason


def _agent_verdict(run: str, checked: dict[str, str | None] | None = None) -> tuple[RunStatus, str, str]:
    """The agent side's status and reason, and the judge directory's ``_kind`` when the
    rules had to look at it ("" otherwise), so that the judge side need not look again."""
    linked = _linked_parent(run, checked)
    if linked is not None:
        return RunStatus.MISSING, f"{linked} directory is a symlink (not followed)", ""
    kind = _kind(run)
    if kind != "dir":
        return RunStatus.MISSING, {
            "absent": "run directory does not exist",
            "symlink": "run directory is a symlink (not followed)",
        }.get(kind, "run path is not a directory"), ""
    agent = _at(run, _Names.agent_dir)
    agent_kind = _kind(agent)
    if agent_kind != "dir":
        why = "agent directory is a symlink (not followed)" if agent_kind == "symlink" else "no agent files"
        return RunStatus.MISSING, why, ""
    log = read_record(_at(run, _Names.command_log), CommandLog)
    has_output = _text_in(_at(run, _Names.output))
    if not has_output and not log.exists and not _entries(agent):
        return RunStatus.MISSING, "no agent files", ""
    # "Finished": non-empty output, valid command log with exit code 0, a known duration.
    exit_code = None if log.record is None else log.record.exit_code
    if not has_output:
        why = "output.txt is missing or empty"
    elif log.record is None:
        why = f"command_log.json {log.problem}"
    elif exit_code != 0:
        why = f"agent exited with code {exit_code}"
    else:
        why = _duration_missing(run, log.record)
        if why is None:
            return _results_status(run)
    if log.record is not None and exit_code != 0:
        return RunStatus.FAILED, agent_rate_limit(run) or _recorded_reason(log.record) or why, ""
    if not has_output and _text_in(_at(run, _Names.stderr)):
        return RunStatus.FAILED, "stderr.log present and no usable output", ""
    return RunStatus.PARTIAL, f"agent started and never finished ({why})", ""


def _duration_missing(run: str, log: CommandLog) -> str | None:
    """None when the agent's duration is on record, else what is wrong with ``timing.json``.

    ``agent/timing.json`` holds it; ProjectScylla wrote no timing files before
    2026-01-10, and its runs record the duration in ``run_result.json`` and in every
    ``command_log.json`` entry. A run whose agent exited 0 and left its output is
    finished whichever of them holds it. The command log is already read, so it is
    asked first: most runs then cost no read of timing.json at all.
    """
    if log.duration_seconds is not None:
        return None
    timing = read_record(_at(run, _Names.timing), AgentTiming)
    if timing.record is not None or read_record(_at(run, _Names.run_result), RunResult).record is not None:
        return None
    return f"timing.json {timing.problem}"


def _what_is_wrong(rel: str, problem: str | None) -> str:
    """``run_result.json missing``; ``agent/result.json lacks the required field exit_code``
    (read_record's account, with the file named once, by its place in the run)."""
    detail = (problem or "missing").removeprefix("invalid: ")
    base = os.path.basename(rel)
    if detail.startswith(base + " "):
        return rel + detail[len(base):]
    return f"{rel} {detail}" if detail == "missing" else f"{rel} is unusable: {detail}"


def _results_status(run: str) -> tuple[RunStatus, str, str]:
    """The agent finished: ``completed`` if its derived files are valid, else ``results``.

    ``judge/result.json`` counts too: it is derived the same way, and a run that
    lacks it would otherwise never get it back.
    """
    problems = []
    # O_NOFOLLOW guards only the last component: a judge/ that is a symlink would lead
    # the consensus read out of the experiment (agent/ is already checked to be a dir).
    judge_kind = _kind(_at(run, _Names.judge_dir))
    judge_linked = judge_kind == "symlink"
    for rel, model in (
        (_Names.agent_result, AgentResult),
        (_Names.consensus, Consensus),
        (_Names.run_result, RunResult),
    ):
        if judge_linked and rel == _Names.consensus:
            problems.append(f"{rel} not read: judge directory is a symlink (not followed)")
            continue
        read = read_record(_at(run, rel), model)
        if read.record is None:
            problems.append(_what_is_wrong(rel, read.problem))
    if not problems:
        return RunStatus.COMPLETED, "agent finished and result files are valid", judge_kind
    return RunStatus.RESULTS, "agent finished but " + "; ".join(problems), judge_kind


def classify_agent(paths: AgentRunPaths) -> tuple[RunStatus, str]:
    """Agent-side status of one run; first matching rule wins (see docs/recovery.md)."""
    return _classify_agent_at(os.fspath(paths.dir))


def is_fallback(judgment: Judgment) -> bool:
    """A heuristic stand-in its writer made when the judge's reply could not be used
    (``is_valid: false`` or ``fallback: true``): never a ``complete`` slot."""
    return judgment.fallback or not judgment.is_valid


def _judge_verdict_at(slot_dir: str, slot: int, model: str) -> tuple[JudgeClassification, Judgment | None]:
    """The slot's status, plus its judgment when (and only when) the status is ``complete``."""
    status, why, judgment = _slot_verdict(slot_dir)
    return JudgeClassification(slot, model, status, why), judgment


def _slot_verdict(slot_dir: str) -> tuple[JudgeStatus, str, Judgment | None]:
    kind = _kind(slot_dir)
    if kind == "symlink":
        return JudgeStatus.MISSING, "judge directory is a symlink (not followed)", None
    if kind != "dir":
        return JudgeStatus.MISSING, "no judge directory", None
    read = read_record(slot_dir + _JUDGMENT, Judgment)
    command_read = _read_if_present(slot_dir + _JUDGE_COMMAND, JudgeCommand)
    command = command_read.record
    if command is not None and command.exit_code not in (None, 0):
        return JudgeStatus.FAILED, command.reason or f"judge exited with code {command.exit_code}", None
    judgment = read.record
    if judgment is not None:
        if is_fallback(judgment):
            return JudgeStatus.FAILED, "judgment is a heuristic fallback", None
        return JudgeStatus.COMPLETE, f"score {judgment.score:.3f}", judgment
    if command is not None and command.ended_at is not None:
        # The judge ran to the end and its reply gave no judgment (e.g. unparseable).
        return JudgeStatus.FAILED, command.reason or "judge finished without a usable judgment.json", None
    if read.exists:
        return JudgeStatus.FAILED, _what_is_wrong(_SlotNames.judgment, read.problem), None
    timing = read_record(slot_dir + _SLOT_TIMING, JudgeTiming).record
    if timing is not None and timing.failed:  # ProjectScylla's failed judge: timing.json says so
        return JudgeStatus.FAILED, judge_failure_reason(timing.error), None
    if not command_read.exists and not _entries(slot_dir):
        return JudgeStatus.MISSING, "judge directory is empty", None
    return JudgeStatus.PARTIAL, "judge started, no judgment.json", None


_JUDGMENT = _SEP + _SlotNames.judgment
_JUDGE_COMMAND = _SEP + _SlotNames.judge_command
_SLOT_TIMING = _SEP + _SlotNames.timing
_ABSENT: ReadResult = ReadResult(None, "missing")


def _read_if_present(path: str, model: type[M]) -> ReadResult[M]:
    """``read_record`` of a file that is usually absent (ProjectScylla's judge slots hold no
    command_log.json; only this project's judge runs write one): asked first with
    access(), which answers "absent" in half the time of an open that fails. The access
    does not follow a symlink, so a link there is still read, and refused, by read_record."""
    if not os.access(path, os.F_OK, follow_symlinks=False):
        return _ABSENT
    return read_record(path, model)


def judge_verdict(slot_paths: JudgeSlotPaths, model: str) -> tuple[JudgeClassification, Judgment | None]:
    """``classify_judge`` plus the judgment a ``complete`` slot holds (read once, for consensus)."""
    if _kind(os.fspath(slot_paths.dir.parent)) == "symlink":
        why = "judge directory is a symlink (not followed)"
        return JudgeClassification(slot_paths.slot, model, JudgeStatus.MISSING, why), None
    return _judge_verdict_at(os.fspath(slot_paths.dir), slot_paths.slot, model)


def classify_judge(slot_paths: JudgeSlotPaths, model: str) -> JudgeClassification:
    return judge_verdict(slot_paths, model)[0]


def classify_run(paths: AgentRunPaths, judge_models: list[str]) -> RunClassification:
    """Agent status plus one judge status per model of the panel."""
    return classify_run_dir(os.fspath(paths.dir), judge_models)


def classify_run_dir(run: str, judge_models: list[str], checked: dict[str, str | None] | None = None) -> RunClassification:
    """``classify_run`` of the run directory ``run`` (a plain string: batches skip Path objects).

    ``checked``: one dict per batch, so runs of one subtest check its directories once.
    """
    return from_plain(*run_verdict(run, len(judge_models), checked), judge_models)


def run_verdict(run: str, slots: int, checked: dict[str, str | None] | None = None) -> PlainClassification:
    """``classify_run_dir`` as plain values (a ``PlainClassification``), for ``slots`` judges.

    What a batch sends back and the cache stores: a survey of ten thousand runs makes no
    status objects in the processes that read the files, only these tuples.
    """
    # ``_value_``: the member's value as a plain attribute (``.value`` is a property, and
    # a sixth of this function's own time went to it).
    status, reason, judge_kind = _agent_verdict(run, checked)
    if not agent_finished(status):
        return status._value_, reason, ((_AGENT_FAILED, f"agent run is {status._value_}"),) * slots
    if not judge_kind:  # the agent side's rules looked at it when the agent finished; else look now
        judge_kind = _kind(_at(run, _Names.judge_dir))
    if judge_kind != "dir":
        why = "judge directory is a symlink (not followed)" if judge_kind == "symlink" else "no judge directory"
        return status._value_, reason, ((_MISSING, why),) * slots
    judge_dir = _at(run, _Names.judge_dir)
    return status._value_, reason, tuple(_slot_plain(judge_dir + suffix) for suffix in _slot_suffixes(slots))


_AGENT_FAILED = JudgeStatus.AGENT_FAILED._value_
_MISSING = JudgeStatus.MISSING._value_


def _slot_plain(slot_dir: str) -> tuple[str, str]:
    status, why, _ = _slot_verdict(slot_dir)
    return status._value_, why


@functools.lru_cache(maxsize=16)
def _slot_suffixes(slots: int) -> tuple[str, ...]:
    """``/judge_01``, ``/judge_02``, ...: appended to a judge directory's path."""
    return tuple(_SEP + judge_slot_name(i) for i in range(1, slots + 1))


# The stat signature a classification cache is keyed on (status_cache.py) covers every
# entry the rules above consult for one run: the names ``_Names`` and ``_SlotNames``
# declare, enumerated (never listed a second time by hand): status_entries.py.
STATUS_RULES_VERSION = 5  # 5: ProjectScylla's failed judge slots and rate limits; 4: reasons reworded as sentences; a cached reason must not keep the old wording

