"""A batch of a recovery's pure-JSON work: many runs done in one call.

A batch does every run it holds and records each one's outcome: one run's trouble
never costs the others. What the caller (a Prefect task run) needs back is plain and
picklable, so the batch can run in a helper process (``experiment_infra.processes.helpers``):
the outcome text of each run done, the reason of each run that failed, and the first
transient error (an I/O hiccup worth retrying the batch for), if any.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..layout import ExperimentPaths, judge_slot_name, run_label
from .regenerate import regenerate_run
from .act import bring_home

__all__ = [
    "HELPER_WARMUP", "PLOTS_WARMUP", "BatchOutcome", "RunNotDone", "is_transient_io", "regenerate_batch", "run_batch",
    "slot_label",
]

# What the helper processes of a recovery load before its first batch: the batches and
# the report rebuild; and in one of them (``helpers.prewarm(first=...)``), the plots' own
# helpers, matplotlib imported before the plots are due: the experiment's reports, the
# one call that draws plots, go to that helper (``helpers.call(..., first=True)``).
HELPER_WARMUP = (
    "experiment_infra.recovery.batch",
    "experiment_infra.reports.rebuild",
)
PLOTS_WARMUP = ("experiment_infra.reports.plot_worker:prewarm",)

_TRANSIENT_ERRNOS = frozenset(
    {errno.EAGAIN, errno.EBUSY, errno.EINTR, errno.EIO, errno.ESTALE, errno.ETIMEDOUT, errno.EMFILE, errno.ENFILE}
)


def is_transient_io(exc: BaseException | None) -> bool:
    """An error a second try may not meet: timeouts, lost connections, busy or stale files."""
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    return isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS


def slot_label(tier: str, subtest: str, run_number: int, slot: int) -> str:
    return f"{run_label(tier, subtest, run_number)}/{judge_slot_name(slot)}"


@dataclass
class BatchOutcome:
    label: str
    total: int
    done: dict[str, str] = field(default_factory=dict)  # run label -> what was done
    failed: dict[str, str] = field(default_factory=dict)  # run label -> why not
    transient: BaseException | None = None  # the first error worth a retry of the batch

    def log_text(self) -> str:
        lines = [f"{run}: {what}" for run, what in self.done.items()]
        lines += [f"{run}: failed: {why}" for run, why in self.failed.items()]
        return f"{self.label}: {len(self.done)} of {self.total} run(s) done\n" + "\n".join(lines)


Run = tuple[str, str, int]  # (tier, subtest, run number)


class RunNotDone(Exception):
    """A run of a batch that was left undone for a reason its message says in full (no
    type name, no traceback): e.g. a consensus not rebuilt because the agent run failed."""


def run_batch(label: str, runs: list[Run], one: Callable[[str, str, int], str]) -> BatchOutcome:
    """``one(tier, subtest, run_number) -> outcome text`` for every run, each failure recorded, none raised."""
    outcome = BatchOutcome(label, len(runs))
    for tier, subtest, number in runs:
        run = run_label(tier, subtest, number)
        try:
            outcome.done[run] = one(tier, subtest, number)
        except RunNotDone as exc:
            outcome.failed[run] = str(exc)
        except Exception as exc:  # one run's trouble must not cost the others
            outcome.failed[run] = f"{type(exc).__name__}: {exc}"
            if outcome.transient is None and is_transient_io(exc):
                outcome.transient = exc
    return outcome


def _relative(written: list[Path], base: Path) -> str:
    return ", ".join(str(p.relative_to(base)) for p in written) or "nothing (already valid)"


def regenerate_batch(label: str, experiment_dir: str, judge_models: list[str], runs: list[Run]) -> BatchOutcome:
    """Rebuild the missing or invalid result files of ``runs``."""
    exp = ExperimentPaths(Path(experiment_dir))

    def one(tier: str, subtest: str, number: int) -> str:
        paths = bring_home(exp, tier, subtest, number)
        return "wrote " + _relative(regenerate_run(paths, judge_models), paths.dir)

    return run_batch(label, runs, one)
