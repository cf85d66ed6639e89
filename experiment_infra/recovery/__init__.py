"""Recovery, Prefect-free, in the stages a recovery goes through.

- ``select``: what the user asked to look at (statuses, tiers, subtests, runs, switches);
- ``survey``: which runs an experiment expects, what their files say (``status``), and
  the one action each needs (the plan) - the whole dry run;
- ``suite_runs`` / ``inspect_dirs``: the same for standard-mode run directories and
  inspect-mode log directories;
- ``act``: what a recovery does to the disk around a rerun, and how it tells one worked;
- ``render``: the dry-run text, the ``--json`` document, the artifact rows;
- ``outcome``: the checks before a real recovery, and its summary afterwards;
- ``walk`` / ``nightly``: every experiment directory under a results root, and the
  night's account of them.

Data flows down these modules once; the flows call them, they never call the flows.
"""

from .outcome import RecoverySummary, check_recovery
from .select import RecoveryInputError, Selection
from .survey import survey
from .walk import scan_results_root, survey_root

__all__ = ["RecoveryInputError", "RecoverySummary", "Selection", "check_recovery", "scan_results_root", "survey", "survey_root"]
