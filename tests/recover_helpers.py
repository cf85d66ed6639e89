"""Shared helpers of the recovery tests: damage a fixture copy one way, hash a tree."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

from conftest import PYTHON, REPO_ROOT, shared_server_env

from experiment_infra.layout import AgentRunPaths, ExperimentPaths

RUN = ("T1", "01", 1)  # the run most tests damage
OTHER = ("T4", "01", 1)  # a run they leave alone


def run_paths(exp_dir: Path, tier: str = RUN[0], subtest: str = RUN[1], number: int = RUN[2]) -> AgentRunPaths:
    return ExperimentPaths(exp_dir).run(tier, subtest, number)


def edit_json(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text())
    for key, value in changes.items():
        if value is _DELETE:
            data.pop(key)
        else:
            data[key] = value
    path.write_text(json.dumps(data, indent=2))


class _Delete:
    pass


_DELETE = _Delete()
DELETE = _DELETE


def truncate(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


CACHE_NAME = ExperimentPaths(Path(".")).status_cache.name


REPORT_NAMES = {"report.json", "report.md", "summary.md", "best_subtest.json", "tier_comparison.json"}


def is_report(rel: str) -> bool:
    """Report files: views a recovery rebuilds from run files at its end (issue 8), and
    ProjectScylla's checkpoint.json, which it brings up to date then too (issue 29)."""
    parts = rel.rstrip("/").split("/")
    return (
        parts[-1] in REPORT_NAMES
        or rel == "checkpoint.json"
        or parts[0] == "plots"
        or (parts[-1] == "result.json" and len(parts) <= 2)  # experiment and tier result.json
    )


def tree_hash(root: Path, skip: Path | None = None, *, ignore_reports: bool = False) -> dict[str, str]:
    """Every entry under ``root`` (files by content, links by target, dirs by name) -> digest.

    The classification cache a real recovery leaves at the top is not experiment data;
    with ``ignore_reports``, neither are the reports it rebuilds at its end.
    """
    out = _tree_hash(root, skip)
    return {k: v for k, v in out.items() if not is_report(k)} if ignore_reports else out


def _tree_hash(root: Path, skip: Path | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        if skip is not None and (Path(dirpath) == skip or skip in Path(dirpath).parents):
            dirnames[:] = []
            continue
        for name in dirnames:
            p = Path(dirpath) / name
            out[(rel_dir / name).as_posix() + "/"] = "link:" + os.readlink(p) if p.is_symlink() else "dir"
        for name in filenames:
            p = Path(dirpath) / name
            if name == CACHE_NAME and Path(dirpath) == root:
                continue
            if p.is_symlink():
                out[(rel_dir / name).as_posix()] = "link:" + os.readlink(p)
            else:
                out[(rel_dir / name).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def recover_cli(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    """``python flows/recover.py ARGS`` as a user runs it (a real subprocess)."""
    return subprocess.run(
        [PYTHON, str(REPO_ROOT / "flows" / "recover.py"), *args],
        cwd=cwd, capture_output=True, text=True, timeout=300, env=shared_server_env(**(env or {})),
    )
