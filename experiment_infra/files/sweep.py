"""Sweep the temp files that atomic writers killed mid-write left behind.

A temp file (``layout.temp_prefix``) names the host and pid of its writer. It is stale
when that writer was on this host and is no longer running: then the file it was
writing holds its old or its new version, and the temp is only a half-written copy.
A temp of a live writer, of another host (which cannot be checked from here), or of
an older name without a writer is left alone. Called where a run directory or an
experiment is opened for writing again (``run_suite --resume``, a real recovery),
under its lock: a standard run directory is swept whole (it holds a few cases); an
agent-evaluation experiment, tens of thousands of runs with their workspaces, only
where this recovery or resume is about to write (``sweep_experiment``).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterable
from pathlib import Path

from ..layout import ExperimentPaths, AgentRunPaths, SWEEP_SKIP_DIRS, SWEEP_TOP_ONLY_DIRS, TEMP_SUFFIX, parse_temp_name, temp_host
from ..processes.process import pid_alive


def _is_stale(name: str, host: str) -> bool:
    owner = parse_temp_name(name)
    return owner is not None and owner.host == host and owner.pid != os.getpid() and not pid_alive(owner.pid)


def _sweep_dir(directory: str, host: str, removed: list[Path], *, recurse: bool, depth: int = -1) -> None:
    """``depth``: levels of subdirectories to enter (-1: no limit)."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                if recurse and depth != 0 and entry.name not in SWEEP_SKIP_DIRS:
                    _sweep_dir(entry.path, host, removed, recurse=entry.name not in SWEEP_TOP_ONLY_DIRS, depth=depth - 1)
            elif entry.name.endswith(TEMP_SUFFIX) and entry.name.startswith(".") and _is_stale(entry.name, host):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except FileNotFoundError:
            continue  # renamed into place or removed by someone else meanwhile


def sweep_stale_temps(root: Path) -> list[Path]:
    """Remove the stale temp files under ``root`` (symlinks never followed); returns them."""
    removed: list[Path] = []
    _sweep_dir(os.fspath(root), temp_host(socket.gethostname()), removed, recurse=True)
    return removed


def _subdirs(path: str) -> list[str]:
    """The directories in ``path`` (links never followed) a sweep may look in."""
    with contextlib.suppress(OSError), os.scandir(path) as entries:
        return [e.path for e in entries if e.is_dir(follow_symlinks=False) and e.name not in SWEEP_SKIP_DIRS]
    return []


def sweep_experiment(exp: ExperimentPaths, runs: Iterable[AgentRunPaths]) -> list[Path]:
    """Remove the stale temps where a recovery or resume of ``exp`` writes: the files of
    the experiment, its tiers and subtests (reports, config), and those of ``runs`` (each
    run directory, its agent/ and judge/ and the judge slots; never a workspace)."""
    host = temp_host(socket.gethostname())
    removed: list[Path] = []
    levels = [os.fspath(exp.dir), *_subdirs(os.fspath(exp.dir))]
    for tier in levels[1:]:
        levels += _subdirs(tier)
    if exp.split:  # the tiers' homes are a level down, in completed/: their subtests too
        levels += [sub for tier in _subdirs(os.fspath(exp.tier_top)) for sub in _subdirs(tier)]
    for directory in levels:
        _sweep_dir(directory, host, removed, recurse=False)
    for run in runs:
        for directory, depth in ((run.dir, 0), (run.agent_dir, 0), (run.judge_dir, 1)):
            _sweep_dir(os.fspath(directory), host, removed, recurse=depth > 0, depth=depth)
    return removed
