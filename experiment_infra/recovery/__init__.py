"""Recovery, Prefect-free, in the stages a recovery goes through.

- ``select``: what the user asked to look at (statuses, tiers, subtests, runs, switches);
- ``survey``: which runs an experiment expects, what their files say (``status``), and
  the one action each needs (the plan) - the whole dry run;
- ``suite_runs`` / ``inspect_dirs``: the same for standard-mode run directories and
  inspect-mode log directories;
- ``act``: what a recovery does to the disk around a rerun, and how it tells one worked;
- ``checkpoint_sync``: ProjectScylla's checkpoint.json brought up to date afterwards;
- ``render``: the dry-run text, the ``--json`` document, the artifact rows;
- ``outcome``: the checks before a real recovery, and its summary afterwards;
- ``walk`` / ``nightly``: every experiment directory under a results root, and the
  night's account of them.

Data flows down these modules once; the flows call them, they never call the flows.

Beside them, ``regenerate``: an agent run's derived JSON rebuilt from its logs and
judgments (pure JSON, no subprocess), which ``batch`` runs in helper processes.

May import: agent_eval, files, layout, processes, provenance, records, reports, status, suites
"""

from __future__ import annotations

from ..lazy import lazy_exports

# A recovery's task runs at once, unless -p says otherwise. Here, not in ``outcome``: the
# command line's parser names it, and a dry run must parse before it imports the rules.
DEFAULT_PARALLELISM = 8

# The names are imported on first use (PEP 562): a module of this package can be imported
# without the others (a dry run starts its checks before the models are loaded). The
# function ``survey`` is reached through its module, ``recovery.survey.survey``: a package
# attribute of that name is the submodule once it is imported.
_WHERE = {
    "RecoverySummary": "outcome",
    "check_recovery": "outcome",
    "sync_checkpoint": "checkpoint_sync",
    "RecoveryInputError": "select",
    "Selection": "select",
    "scan_results_root": "walk",
    "survey_root": "walk",
}

__all__ = ["DEFAULT_PARALLELISM", *_WHERE]

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
