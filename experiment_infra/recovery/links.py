"""Before a recovery writes anything: no symlink where it would write, move or delete.

A link where the recovery needs a directory of its own (``completed/``, ``in_progress/``,
a tier or subtest, ``.failed/``, ``.attempts/``, ``plots/``) or a report file it rewrites
would take its writes, or the earlier attempts it moves aside, out of the experiment (or
replace a file the user linked in). It is refused up front, as bad input: one line naming
it, exit 2, nothing written. A link in place of a run, its ``agent/``, ``judge/`` or a
judge slot is not refused: those are moved aside whole (the link, not what it points to)
as a foreign attempt, and rerun. The moves themselves (``atomic.move_aside``) refuse a link
planted later, so this check is what makes the refusal early and whole, not what makes it safe.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import LinkedPathError
from ..layout import ExperimentPaths, SuiteRunPaths
from ..layout.names import COMPLETED, IN_PROGRESS
from .select import Mode
from .suite_runs import SuiteRunSurvey
from .survey import ExperimentSurvey

__all__ = ["refuse_linked_places"]

_REPORTS = ("report_json", "report_md", "result", "summary_md", "best_subtest")


def _reports(place: object) -> list[Path]:
    return [getattr(place, name) for name in _REPORTS if hasattr(type(place), name)]


def _experiment_places(s: ExperimentSurvey) -> list[tuple[Path, str]]:
    exp: ExperimentPaths = s.exp
    if not s.planned:
        return []
    places = [(exp.dir / COMPLETED, "directory"), (exp.dir / IN_PROGRESS, "directory"), (exp.plots_dir, "directory")]
    places += [(p, "file") for p in _reports(exp)]
    tiers = sorted({r.tier for r in s.planned} | {m.tier for m in s.missing_tiers})
    for tier in tiers:
        places += [(d, "directory") for d in exp.tier_places(tier)] + [(p, "file") for p in _reports(exp.tier(tier))]
    for tier, subtest in sorted({(r.tier, r.subtest) for r in s.planned}):
        places += [(sp.dir, "directory") for sp in exp.subtest_places(tier, subtest)]
        home = exp.subtest(tier, subtest)
        places += [(home.failed_dir, "directory")] + [(p, "file") for p in _reports(home)]
    for r in s.planned:
        for run in {exp.run(r.tier, r.subtest, r.run).dir, exp.run_found(r.tier, r.subtest, r.run).dir}:
            if os.path.islink(run) or not os.path.isdir(run):
                continue  # a linked run is moved aside whole; an absent one is made fresh
            places += [(run / ".failed", "directory")] + [(run / name, "file") for name in ("report.json", "report.md")]
            for part in ("agent", "judge"):  # where an invalid derived file is moved aside
                if not os.path.islink(run / part):
                    places.append((run / part / ".failed", "directory"))
    return places


def _suite_run_places(s: SuiteRunSurvey) -> list[tuple[Path, str]]:
    run: SuiteRunPaths = s.run
    if not s.planned or s.mode is not Mode.STANDARD:
        return []
    places = [(run.summary, "file"), (run.report_md, "file"), (run.metrics_plot, "file")]
    for case in s.planned:
        paths = run.case(case.variant)
        places += [(paths.dir, "directory"), (paths.attempts_dir, "directory")]
    return places


def refuse_linked_places(s: ExperimentSurvey | SuiteRunSurvey) -> None:
    """Raise ``LinkedPathError`` (exit 2) for the first symlink where this recovery would
    write, move or delete; parents are listed before what is in them, so the link named
    is the one to replace."""
    places = _experiment_places(s) if isinstance(s, ExperimentSurvey) else _suite_run_places(s)
    for path, kind in places:
        if os.path.islink(path):
            raise LinkedPathError(
                f"{path} is a symlink; a recovery never writes or moves anything through one, nor replaces it: "
                f"replace it with a real {kind}"
            )
