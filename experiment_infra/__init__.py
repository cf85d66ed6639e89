"""experiment_infra: the Prefect-free core of experiment suites and their recovery.

Plain functions over files. ``flows/`` and ``tasks/`` wrap these with Prefect.

The names below are imported on first use (PEP 562): a process that needs one module
(an entry point's config, the case waiter that runs beside every case) does not pay
for importing all of them, git and the reports included.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers and readers: the same names, imported eagerly
    from .case import ExperimentCase, validate_cases
    from .agent_eval import AgentEvalSuite, Condition, TaskSpec
    from .suite_main import run_experiments_cli
    from .config import NONE_SENTINEL, BaseExperimentConfig, ConfigError
    from .layout import (
        AgentRunPaths,
        CasePaths,
        ExperimentPaths,
        JudgeSlotPaths,
        SuiteRunPaths,
        UnsafeNameError,
        check_name,
    )
    from .provenance import git_provenance
    from .records import RecordError, load_record, read_record, write_record
    from .reports import ReportError, rebuild_reports
    from .lock import LockHeld, acquire_lock
    from .recovery.survey import RecoveryInputError, Selection, survey
    from .recovery.walk import scan_results_root, survey_root
    from .services import ServiceError
    from .suite import Suite, SuiteError, load_suite
    from .status import (
        CaseStatus,
        JudgeStatus,
        RunStatus,
        classify_case,
        classify_run,
    )

# name -> the module (relative to this package) that defines it
_EXPORTS: dict[str, str] = {
    'ExperimentCase': '.case',
    'validate_cases': '.case',
    'AgentEvalSuite': '.agent_eval',
    'Condition': '.agent_eval',
    'TaskSpec': '.agent_eval',
    'run_experiments_cli': '.suite_main',
    'NONE_SENTINEL': '.config',
    'BaseExperimentConfig': '.config',
    'ConfigError': '.config',
    'AgentRunPaths': '.layout',
    'CasePaths': '.layout',
    'ExperimentPaths': '.layout',
    'JudgeSlotPaths': '.layout',
    'SuiteRunPaths': '.layout',
    'UnsafeNameError': '.layout',
    'check_name': '.layout',
    'git_provenance': '.provenance',
    'RecordError': '.records',
    'load_record': '.records',
    'read_record': '.records',
    'write_record': '.records',
    'ReportError': '.reports',
    'rebuild_reports': '.reports',
    'LockHeld': '.lock',
    'acquire_lock': '.lock',
    'RecoveryInputError': '.recovery.survey',
    'Selection': '.recovery.survey',
    'survey': '.recovery.survey',
    'scan_results_root': '.recovery.walk',
    'survey_root': '.recovery.walk',
    'ServiceError': '.services',
    'Suite': '.suite',
    'SuiteError': '.suite',
    'load_suite': '.suite',
    'CaseStatus': '.status',
    'JudgeStatus': '.status',
    'RunStatus': '.status',
    'classify_case': '.status',
    'classify_run': '.status',
}

__all__ = [
    "AgentEvalSuite",
    "Condition",
    "TaskSpec",
    "NONE_SENTINEL",
    "AgentRunPaths",
    "BaseExperimentConfig",
    "CasePaths",
    "CaseStatus",
    "ConfigError",
    "ExperimentCase",
    "ExperimentPaths",
    "JudgeSlotPaths",
    "JudgeStatus",
    "RecordError",
    "ReportError",
    "LockHeld",
    "RecoveryInputError",
    "Selection",
    "acquire_lock",
    "survey",
    "survey_root",
    "scan_results_root",
    "ServiceError",
    "RunStatus",
    "Suite",
    "SuiteError",
    "SuiteRunPaths",
    "UnsafeNameError",
    "check_name",
    "classify_case",
    "classify_run",
    "git_provenance",
    "load_suite",
    "load_record",
    "read_record",
    "rebuild_reports",
    "run_experiments_cli",
    "validate_cases",
    "write_record",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
