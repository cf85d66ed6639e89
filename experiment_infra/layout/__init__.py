"""Every path this project reads or writes, in one place, one module per layout.

Nothing else in the code base spells a file name. The layouts:

- ``standard``: ``results/{experiment}/{YYYYmmdd_HHMMSS}_{git7}[-dirty]/{variant}/...``
- ``inspect``: ``results/{experiment}/{timestamp}_{git7}_{variant}_{id}.eval``
- ``agent_eval`` (ProjectScylla's layout): ``{experiment_dir}/{tier}/{subtest}/run_{NN}/{agent,judge}/...``

beside ``names`` (the portable names all of them allow), ``files`` (lock files and
the temp files of atomic writes) and ``case_files`` (the names of a standard-mode
case's files, for the case waiter). Import from here (``from experiment_infra.layout import
ExperimentPaths``). The names are imported on first use (PEP 562), one module at a
time: the case waiter, beside every case, needs a case's and the temp files' names alone.

May import: nothing (errors, lazy and clock only)
"""

from __future__ import annotations

# Not imported from typing, which costs the case waiter (beside every case) a tenth of its
# start-up; static checkers treat this name the same.
TYPE_CHECKING = False

from ..lazy import lazy_exports

# Public name -> the module of this package that defines it.
_WHERE = {
    "MAX_NAME_LENGTH": "names",
    "DIRTY_SUFFIX": "names",
    "NOGIT": "names",
    "COMPLETED": "names",
    "IN_PROGRESS": "names",
    "RUN_DIR_PATTERN": "names",
    "UnsafeNameError": "names",
    "check_name": "names",
    "run_dir_name": "standard",
    "free_run_dir": "standard",
    "CasePaths": "standard",
    "waiter_files": "case_files",
    "SuiteRunPaths": "standard",
    "inspect_log_dir": "inspect",
    "inspect_log_file_pattern": "inspect",
    "INSPECT_LOG_SUFFIX": "inspect",
    "parse_inspect_log_name": "inspect",
    "inspect_logs_for": "inspect",
    "INSPECT_RECORDS_DIR": "inspect",
    "InspectCasePaths": "inspect",
    "inspect_lock": "inspect",
    "run_dir_name_for": "agent_eval",
    "run_label": "agent_eval",
    "parse_run_number": "agent_eval",
    "judge_slot_name": "agent_eval",
    "JudgeSlotPaths": "agent_eval",
    "AgentRunPaths": "agent_eval",
    "ExperimentPaths": "agent_eval",
    "TierPaths": "agent_eval",
    "SubtestPaths": "agent_eval",
    "next_aside": "agent_eval",
    "lock_takeover_marker": "files",
    "lock_temp": "files",
    "TEMP_SUFFIX": "files",
    "temp_host": "files",
    "temp_prefix": "files",
    "TempOwner": "files",
    "parse_temp_name": "files",
    "SWEEP_SKIP_DIRS": "files",
    "SWEEP_TOP_ONLY_DIRS": "files",
    "lock_aside": "files",
}

__all__ = list(_WHERE)

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())

if TYPE_CHECKING:  # static checkers see the real imports
    from .names import MAX_NAME_LENGTH, DIRTY_SUFFIX, NOGIT, COMPLETED, IN_PROGRESS, RUN_DIR_PATTERN, UnsafeNameError, check_name
    from .standard import run_dir_name, free_run_dir, CasePaths, SuiteRunPaths
    from .case_files import waiter_files
    from .inspect import inspect_log_dir, inspect_log_file_pattern, INSPECT_LOG_SUFFIX, parse_inspect_log_name, inspect_logs_for, INSPECT_RECORDS_DIR, InspectCasePaths, inspect_lock
    from .agent_eval import run_dir_name_for, run_label, parse_run_number, judge_slot_name, JudgeSlotPaths, AgentRunPaths, ExperimentPaths, TierPaths, SubtestPaths, next_aside
    from .files import lock_takeover_marker, lock_temp, TEMP_SUFFIX, temp_host, temp_prefix, TempOwner, parse_temp_name, SWEEP_SKIP_DIRS, SWEEP_TOP_ONLY_DIRS, lock_aside
