"""experiment_infra: the Prefect-free core of experiment suites and their recovery.

Plain functions over files. ``flows/`` and ``tasks/`` wrap these with Prefect.
"""

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
