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
    "NONE_SENTINEL": "suites.config",
    "AgentRunPaths": "layout",
    "BaseExperimentConfig": "suites.config",
    "CasePaths": "layout",
    "CaseStatus": "status.rules",
    "ConfigError": "suites.config",
    "ExperimentCase": "suites.case",
    "ExperimentPaths": "layout",
    "JudgeSlotPaths": "layout",
    "JudgeStatus": "status.rules",
    "RecordError": "records",
    "ReportError": "reports",
    "LockHeld": "files.lock",
    "RecoveryInputError": "recovery.survey",
    "Selection": "recovery.survey",
    "acquire_lock": "files.lock",
    "survey": "recovery.survey",
    "survey_root": "recovery.walk",
    "scan_results_root": "recovery.walk",
    "ServiceError": "running.services",
    "RunStatus": "status.rules",
    "Suite": "suites.suite",
    "SuiteError": "suites.suite",
    "SuiteRunPaths": "layout",
    "UnsafeNameError": "layout",
    "check_name": "layout",
    "classify_case": "status.rules",
    "classify_run": "status.rules",
    "git_provenance": "provenance.git",
    "load_suite": "suites.suite",
    "load_record": "records",
    "read_record": "records",
    "rebuild_reports": "reports",
    "run_experiments_cli": "suites.main",
    "validate_cases": "suites.case",
    "write_record": "records",
    "atomic_write_json": "files.atomic",
    "run_inspect_case": "running.inspect_mode",
}

__all__ = list(_WHERE)


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())

# `python SUITE.py`: an error in the suite file's top level is the loader's one line, exit 2.
from .suites.errors import watch_suite_script as _watch_suite_script  # noqa: E402

_watch_suite_script()


if TYPE_CHECKING:  # static checkers and IDEs see the real imports
    from .suites.case import ExperimentCase, validate_cases
    from .agent_eval import AgentEvalSuite, Condition, TaskSpec
    from .suites.main import run_experiments_cli
    from .suites.config import NONE_SENTINEL, BaseExperimentConfig, ConfigError
    from .layout import AgentRunPaths, CasePaths, ExperimentPaths, JudgeSlotPaths, SuiteRunPaths, UnsafeNameError, check_name
    from .provenance.git import git_provenance
    from .records import RecordError, load_record, read_record, write_record
    from .reports import ReportError, rebuild_reports
    from .files.lock import LockHeld, acquire_lock
    from .recovery.survey import RecoveryInputError, Selection, survey
    from .recovery.walk import scan_results_root, survey_root
    from .running.services import ServiceError
    from .suites.suite import Suite, SuiteError, load_suite
    from .status.rules import CaseStatus, JudgeStatus, RunStatus, classify_case, classify_run
    from .files.atomic import atomic_write_json
    from .running.inspect_mode import run_inspect_case
