"""Sweep the temp files that atomic writers killed mid-write left behind.

A temp file (``layout.temp_prefix``) names the host and pid of its writer. It is stale
when that writer was on this host and is no longer running: then the file it was
writing holds its old or its new version, and the temp is only a half-written copy.
A temp of a live writer, of another host (which cannot be checked from here), or of
an older name without a writer is left alone. Called where a run directory or an
experiment is opened for writing again (``run_suite --resume``, a real recovery),
under its lock.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from .layout import SWEEP_SKIP_DIRS, SWEEP_TOP_ONLY_DIRS, TEMP_SUFFIX, parse_temp_name, temp_host
from .process import pid_alive


def _is_stale(name: str, host: str) -> bool:
    owner = parse_temp_name(name)
    return owner is not None and owner.host == host and owner.pid != os.getpid() and not pid_alive(owner.pid)


def _sweep_dir(directory: str, host: str, removed: list[Path], *, recurse: bool) -> None:
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                if recurse and entry.name not in SWEEP_SKIP_DIRS:
                    _sweep_dir(entry.path, host, removed, recurse=entry.name not in SWEEP_TOP_ONLY_DIRS)
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
