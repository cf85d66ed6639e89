"""Where a suite's and a case's imports are found: the suite's directory and its project root.

The experiment-infrastructure spec's layout keeps the config module and the entry point
at the project root and the suite in ``experiments/<name>/``; a suite there says
``from my_config import MyConfig``. Python puts only the script's own directory on
``sys.path``, so the loader and each case's process also get the project root: the
nearest directory above the file holding ``.git`` or ``pyproject.toml``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

_MARKERS = (".git", "pyproject.toml")


def project_root(path: Path) -> Path | None:
    """The nearest directory above ``path`` (a file) with ``.git`` or ``pyproject.toml``, else None."""
    for parent in Path(path).resolve().parents:
        if any((parent / marker).exists() for marker in _MARKERS):
            return parent
    return None


def suite_import_dirs(suite_file: Path) -> list[str]:
    """What ``sys.path`` gets, in order, while a suite file is loaded."""
    dirs = [str(suite_file.parent)]
    root = project_root(suite_file)
    if root is not None and str(root) not in dirs:
        dirs.append(str(root))
    return dirs


def case_environment(env: Mapping[str, str], entry_point: Path) -> dict[str, str]:
    """``env`` with the entry point's project root after any ``PYTHONPATH`` the user set
    (the entry point's own directory is first on ``sys.path`` already)."""
    out = dict(env)
    root = project_root(entry_point)
    if root is None:
        return out
    parts = [p for p in out.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(root) not in parts:
        out["PYTHONPATH"] = os.pathsep.join([*parts, str(root)])
    return out
