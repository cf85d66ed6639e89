"""Every path this project reads or writes, in one place, one module per layout.

Nothing else in the code base spells a file name. The layouts:

- ``standard``: ``results/{experiment}/{YYYYmmdd_HHMMSS}_{git7}[-dirty]/{variant}/...``
- ``inspect``: ``results/{experiment}/{timestamp}_{git7}_{variant}_{id}.eval``
- ``agent_eval`` (ProjectScylla's layout): ``{experiment_dir}/{tier}/{subtest}/run_{NN}/{agent,judge}/...``

beside ``names`` (the portable names all of them allow) and ``files`` (lock files and
the temp files of atomic writes). Import from here (``from experiment_infra.layout import
ExperimentPaths``).
"""

from __future__ import annotations

from .names import (
    MAX_NAME_LENGTH,
    DIRTY_SUFFIX,
    NOGIT,
    RUN_DIR_PATTERN,
    UnsafeNameError,
    check_name,
)
from .standard import (
    run_dir_name,
    free_run_dir,
    CasePaths,
    SuiteRunPaths,
)
from .inspect import (
    inspect_log_dir,
    inspect_log_file_pattern,
    INSPECT_LOG_SUFFIX,
    parse_inspect_log_name,
    inspect_logs_for,
    INSPECT_RECORDS_DIR,
    InspectCasePaths,
)
from .agent_eval import (
    run_dir_name_for,
    parse_run_number,
    judge_slot_name,
    JudgeSlotPaths,
    AgentRunPaths,
    ExperimentPaths,
    TierPaths,
    SubtestPaths,
    next_aside,
)
from .files import (
    lock_takeover_marker,
    lock_temp,
    TEMP_SUFFIX,
    temp_host,
    temp_prefix,
    TempOwner,
    parse_temp_name,
    SWEEP_SKIP_DIRS,
    SWEEP_TOP_ONLY_DIRS,
    lock_aside,
)

__all__ = [
    "MAX_NAME_LENGTH",
    "DIRTY_SUFFIX",
    "NOGIT",
    "RUN_DIR_PATTERN",
    "UnsafeNameError",
    "check_name",
    "run_dir_name",
    "free_run_dir",
    "CasePaths",
    "SuiteRunPaths",
    "inspect_log_dir",
    "inspect_log_file_pattern",
    "INSPECT_LOG_SUFFIX",
    "parse_inspect_log_name",
    "inspect_logs_for",
    "INSPECT_RECORDS_DIR",
    "InspectCasePaths",
    "run_dir_name_for",
    "parse_run_number",
    "judge_slot_name",
    "JudgeSlotPaths",
    "AgentRunPaths",
    "ExperimentPaths",
    "TierPaths",
    "SubtestPaths",
    "next_aside",
    "lock_takeover_marker",
    "lock_temp",
    "TEMP_SUFFIX",
    "temp_host",
    "temp_prefix",
    "TempOwner",
    "parse_temp_name",
    "SWEEP_SKIP_DIRS",
    "SWEEP_TOP_ONLY_DIRS",
    "lock_aside",
]
