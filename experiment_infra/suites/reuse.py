"""``--reuse``: a case whose identity matches a completed case of an earlier run is not run.

``plan_reuse`` decides, for each case, ``run`` or ``reuse`` and says why (the dry run
prints it): it scans the experiment's earlier run directories newest first, reading each
one's manifest and its cases' run records once (the identity is stored in each run
record, never recomputed), and stops as soon as every case is decided. ``reuse_case``
then puts the earlier case's files into the new case directory: hard links (copies
across filesystems; symbolic links are recreated, never followed), with a fresh
``config.json`` (its own ``output_dir``) and a run record that names where they came from
(``reused_from``).
"""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal

from ..files.atomic import atomic_write_json
from .identity import identity_change
from ..layout import CasePaths, SuiteRunPaths
from ..running.runner import set_aside_previous_attempt
from ..records import CaseIdentity, RunRecord, SuiteManifest, read_record, write_record
from ..status.rules import CaseClassification, CaseStatus, classify_case

__all__ = ["ReuseDecision", "WantedCase", "plan_reuse", "reuse_case"]


@dataclass(frozen=True)
class WantedCase:
    """What ``plan_reuse`` needs of a case of the new run."""

    variant_name: str
    config: dict[str, Any]
    identity: CaseIdentity


@dataclass(frozen=True)
class ReuseDecision:
    action: Literal["run", "reuse"]
    why: str = ""  # for a run: "new", "entry point changed: fit.py", "config: degree 3 -> 5"
    source: Path | None = None  # for a reuse: the earlier case's directory

    @property
    def reused(self) -> bool:
        return self.action == "reuse"

    def text(self) -> str:
        """``reuse (RUN/variant)`` or ``run (why)``."""
        if self.source is not None:
            return f"reuse ({self.source.parent.name}/{self.source.name})"
        return f"run ({self.why})"


@dataclass
class _EarlierRun:
    """One earlier run directory, read once: its cases' configs, identities and whether
    each completed."""

    run: SuiteRunPaths
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    identities: dict[str, CaseIdentity | None] = field(default_factory=dict)
    completed: dict[tuple[str, str], str] = field(default_factory=dict)  # identity key -> variant

    @classmethod
    def read(cls, run: SuiteRunPaths, experiment_name: str) -> _EarlierRun | None:
        manifest = read_record(run.manifest, SuiteManifest).record
        if manifest is None or manifest.experiment_name != experiment_name or manifest.mode != "standard":
            return None
        earlier = cls(run)
        for case in manifest.cases:
            earlier.configs[case.variant_name] = case.config
            try:
                found = classify_case(run.case(case.variant_name))
            except ValueError:  # a variant name unsafe as a directory: nothing of it to reuse
                continue
            identity = found.record.identity if found.record is not None else None
            earlier.identities[case.variant_name] = identity
            if identity is not None and found.status is CaseStatus.COMPLETED:
                earlier.completed.setdefault(identity.key, case.variant_name)
        return earlier


def earlier_runs(experiment_dir: Path, exclude: Path | None = None) -> list[SuiteRunPaths]:
    """The run directories of an experiment, newest first (names start with their time);
    symbolic links are not followed."""
    try:
        entries = list(os.scandir(experiment_dir))
    except OSError:
        return []
    runs = [
        SuiteRunPaths(Path(e.path)) for e in entries
        if e.is_dir(follow_symlinks=False) and not e.name.startswith(".") and (exclude is None or Path(e.path) != exclude)
    ]
    return sorted(runs, key=lambda r: r.dir.name, reverse=True)


def plan_reuse(
    experiment_name: str, experiment_dir: Path, wanted: Iterable[WantedCase], *, exclude: Path | None = None
) -> dict[str, ReuseDecision]:
    """For each wanted case: reuse the newest completed earlier case with its identity, else
    run, saying why (compared with the newest earlier case of the same variant name)."""
    todo = {w.variant_name: w for w in wanted}
    decisions: dict[str, ReuseDecision] = {}
    nearest: dict[str, tuple[_EarlierRun, str]] = {}
    for run in earlier_runs(experiment_dir, exclude):
        if not todo:
            break
        earlier = _EarlierRun.read(run, experiment_name)
        if earlier is None:
            continue
        for name, want in list(todo.items()):
            match = earlier.completed.get(want.identity.key)
            if match is not None:
                decisions[name] = ReuseDecision("reuse", source=run.case(match).dir)
                del todo[name]
            elif name in earlier.configs and name not in nearest:
                nearest[name] = (earlier, name)
    for name, want in todo.items():
        decisions[name] = ReuseDecision("run", _why(want, nearest.get(name)))
    return decisions


def _why(want: WantedCase, nearest: tuple[_EarlierRun, str] | None) -> str:
    if nearest is None:
        return "new"
    earlier, variant = nearest
    where = f"{earlier.run.dir.name}/{variant}"
    before = earlier.identities.get(variant)
    if before is None:
        return f"{where} has no identity recorded"
    change = identity_change(before, earlier.configs.get(variant), want.identity, want.config)
    return change or f"{where} did not complete"


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
        shutil.copy2(src, dst, follow_symlinks=False)


def _copy_tree(src: Path, dst: Path, skip: set[str]) -> None:
    """Hard-link (or copy) every file under ``src`` into ``dst``; symbolic links are
    recreated as links (never followed); top-level names in ``skip`` are left out."""
    for here, dirs, files in os.walk(src, followlinks=False):
        rel = os.path.relpath(here, src)
        target = dst if rel == "." else dst / rel
        target.mkdir(parents=True, exist_ok=True)
        if rel == ".":
            dirs[:] = [d for d in dirs if d not in skip]
            files = [f for f in files if f not in skip]
        for name in [*files, *(d for d in dirs if os.path.islink(os.path.join(here, d)))]:
            source = os.path.join(here, name)
            if os.path.islink(source):
                os.symlink(os.readlink(source), target / name)
            else:
                _link_or_copy(source, str(target / name))


def reuse_case(paths: CasePaths, config: dict[str, Any], source: Path) -> CaseClassification:
    """Fill ``paths.dir`` with the completed case at ``source`` (see the module's docstring);
    what the disk then says about it. Anything already in ``paths.dir`` is moved aside first
    (``.attempts``), as before a rerun."""
    earlier = CasePaths(source)
    record = read_record(earlier.run_record, RunRecord).record
    if record is None or source.is_symlink():
        raise ValueError(f"{source}: not a completed case to reuse")
    paths.dir.mkdir(parents=True, exist_ok=True)
    set_aside_previous_attempt(paths, fresh=True)
    runner_own = {earlier.config.name, earlier.run_record.name, earlier.attempts_dir.name}
    _copy_tree(source, paths.dir, runner_own)
    atomic_write_json(paths.config, config)
    # Written last: until it exists, the case reads as never started and a resume redoes this.
    write_record(paths.run_record, record.model_copy(update={"reused_from": str(source)}))
    return classify_case(paths)
