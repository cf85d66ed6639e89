"""What a recovery is asked to look at: the filters and switches of the command line.

Filters combine (AND); a status name that does not exist is refused with the valid
ones. Every refusal is a ``RecoveryInputError`` with a one-line message.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Iterable, Sequence

from ..errors import ExperimentError
from ..status.rules import CaseStatus, JudgeStatus, RunStatus
from ..status.limits import is_rate_limited


class RecoveryInputError(ExperimentError, ValueError):
    """Bad input to a recovery (one line naming the field or file and the fix)."""


class Mode(str, Enum):
    AGENT_EVAL = "agent_eval"
    STANDARD = "standard"
    INSPECT = "inspect"


RUN_STATUS_NAMES = tuple(s.value for s in RunStatus)
JUDGE_STATUS_NAMES = tuple(s.value for s in JudgeStatus)
# ``rate_limited`` is not a status of its own: it selects the ``failed`` runs and slots whose
# reason is a rate limit (``status_limits``), so counts and statuses stay the five and five.
RATE_LIMITED_NAME = "rate_limited"
AGENT_EVAL_STATUS_NAMES = (
    RUN_STATUS_NAMES + tuple(n for n in JUDGE_STATUS_NAMES if n not in RUN_STATUS_NAMES) + (RATE_LIMITED_NAME,)
)


def status_wanted(status: str, reason: str, wanted: frozenset[str] | None) -> bool:
    """Does ``--status`` select a run or slot of this status and reason? ``rate_limited``
    selects those ``failed`` on a rate limit."""
    if wanted is None or status in wanted:
        return True
    return RATE_LIMITED_NAME in wanted and status == "failed" and is_rate_limited(reason)
CASE_STATUS_NAMES = tuple(s.value for s in CaseStatus)


# ----------------------------------------------------------------------- selection


def parse_runs(value: str | Iterable[int] | None) -> frozenset[int] | None:
    """``"1,3,5"`` (or a list of ints) -> run numbers; None means every run."""
    if value is None:
        return None
    items: list[object] = value.split(",") if isinstance(value, str) else list(value)
    runs = set()
    for item in items:
        text = str(item).strip()
        if isinstance(item, bool) or not text.isdigit() or int(text) < 1:
            raise RecoveryInputError(f"--runs: {text!r} is not a run number (use positive integers, e.g. --runs 1,3,5)")
        runs.add(int(text))
    if not runs:
        raise RecoveryInputError("--runs is empty (use e.g. --runs 1,3,5)")
    return frozenset(runs)


@dataclass(frozen=True)
class Selection:
    """The user's filters (AND-combined; None = no filter) and action switches."""

    statuses: frozenset[str] | None = None
    tiers: frozenset[str] | None = None
    subtests: frozenset[str] | None = None
    runs: frozenset[int] | None = None
    agents_only: bool = False
    judges_only: bool = False
    judge_model: str | None = None

    @classmethod
    def build(
        cls,
        *,
        statuses: Sequence[str] | None = None,
        tiers: Sequence[str] | None = None,
        subtests: Sequence[str] | None = None,
        runs: str | Iterable[int] | None = None,
        agents_only: bool = False,
        judges_only: bool = False,
        judge_model: str | None = None,
    ) -> Selection:
        if agents_only and judges_only:
            raise RecoveryInputError("--agents-only and --judges-only exclude each other: pass at most one")
        if judge_model is not None and not str(judge_model).strip():
            raise RecoveryInputError("--judge-model is empty: name the model the judge reruns should use")
        return cls(
            statuses=frozenset(statuses) if statuses else None,
            tiers=frozenset(tiers) if tiers else None,
            subtests=frozenset(subtests) if subtests else None,
            runs=parse_runs(runs),
            agents_only=agents_only,
            judges_only=judges_only,
            judge_model=judge_model,
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "statuses": sorted(self.statuses) if self.statuses else None,
            "tiers": sorted(self.tiers) if self.tiers else None,
            "subtests": sorted(self.subtests) if self.subtests else None,
            "runs": sorted(self.runs) if self.runs else None,
            "agents_only": self.agents_only,
            "judges_only": self.judges_only,
            "judge_model": self.judge_model,
        }


def shown_names(names: Iterable[str]) -> str:
    """Names typed by a user, for a one-line message: one holding a newline, NUL or other
    control character is shown quoted and escaped, so the message stays one line."""
    return ", ".join(n if n and n.isprintable() and n.strip() == n else repr(n) for n in names)


def check_statuses(selection: Selection, valid: Sequence[str], kind: str) -> None:
    unknown = sorted(set(selection.statuses or ()) - set(valid))
    if unknown:
        raise RecoveryInputError(
            f"--status {shown_names(unknown)}: no such {kind} status; valid statuses are {', '.join(valid)}"
        )
