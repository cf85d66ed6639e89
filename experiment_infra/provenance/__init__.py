"""Which code produced a result: a repository's commit, branch and uncommitted changes
(``git``), the code a run directory ran on across resumes and recoveries
(``code_versions``), and which files of a repository an experiment uses (``used_files``).
``from experiment_infra.provenance import git_provenance`` keeps working: the names of
``git`` are re-exported, imported on first use.

May import: layout, records
"""

from __future__ import annotations

from ..lazy import lazy_exports

# Public name -> the module of this package that defines it (imported on first use, so
# importing a module of this package does not import ``git``).
_WHERE = {
    "log": "git",
    "git_provenance": "git",
    "CodeSnapshot": "git",
    "code_snapshot": "git",
    "git_diff": "git",
}

__all__ = list(_WHERE)

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
