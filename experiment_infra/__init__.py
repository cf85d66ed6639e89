"""experiment_infra: the Prefect-free core of experiment suites and their recovery.

Plain functions over files. ``flows/`` and ``tasks/`` wrap these with Prefect.

The public names below are imported on first use (PEP 562): a command that needs
only the status rules (a dry run, a recovery survey) does not pay for pydantic-settings,
GitPython and the report plots at start-up.
"""

from __future__ import annotations

# Not imported from typing, which costs the case waiter (beside every case) a tenth of its
# start-up; static checkers treat this name the same.
TYPE_CHECKING = False

from .lazy import lazy_exports

# Public name -> the module (relative to this package) that defines it.
_WHERE = {
    "AgentEvalSuite": "agent_eval",
    "Condition": "agent_eval",
    "TaskSpec": "agent_eval",
    "NONE_SENTINEL": "config",
    "AgentRunPaths": "layout",
    "BaseExperimentConfig": "config",
    "CasePaths": "layout",
    "CaseStatus": "status",
    "ConfigError": "config",
    "ExperimentCase": "case",
    "ExperimentPaths": "layout",
    "JudgeSlotPaths": "layout",
    "JudgeStatus": "status",
    "RecordError": "records",
    "ReportError": "reports",
    "LockHeld": "lock",
    "RecoveryInputError": "recovery.survey",
    "Selection": "recovery.survey",
    "acquire_lock": "lock",
    "survey": "recovery.survey",
    "survey_root": "recovery.walk",
    "scan_results_root": "recovery.walk",
    "ServiceError": "services",
    "RunStatus": "status",
    "Suite": "suite",
    "SuiteError": "suite",
    "SuiteRunPaths": "layout",
    "UnsafeNameError": "layout",
    "check_name": "layout",
    "classify_case": "status",
    "classify_run": "status",
    "git_provenance": "provenance",
    "load_suite": "suite",
    "load_record": "records",
    "read_record": "records",
    "rebuild_reports": "reports",
    "run_experiments_cli": "suite_main",
    "validate_cases": "case",
    "write_record": "records",
}

__all__ = list(_WHERE)


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())

# `python SUITE.py`: an error in the suite file's top level is the loader's one line, exit 2.
from .suite_errors import watch_suite_script as _watch_suite_script  # noqa: E402

_watch_suite_script()


if TYPE_CHECKING:  # static checkers and IDEs see the real imports
    from .case import ExperimentCase, validate_cases
    from .agent_eval import AgentEvalSuite, Condition, TaskSpec
    from .suite_main import run_experiments_cli
    from .config import NONE_SENTINEL, BaseExperimentConfig, ConfigError
    from .layout import AgentRunPaths, CasePaths, ExperimentPaths, JudgeSlotPaths, SuiteRunPaths, UnsafeNameError, check_name
    from .provenance import git_provenance
    from .records import RecordError, load_record, read_record, write_record
    from .reports import ReportError, rebuild_reports
    from .lock import LockHeld, acquire_lock
    from .recovery.survey import RecoveryInputError, Selection, survey
    from .recovery.walk import scan_results_root, survey_root
    from .services import ServiceError
    from .suite import Suite, SuiteError, load_suite
    from .status import CaseStatus, JudgeStatus, RunStatus, classify_case, classify_run
