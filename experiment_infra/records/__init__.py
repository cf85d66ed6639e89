"""Pydantic models of every JSON file this project reads or writes, and the only reader,
one module per layout they describe:

- ``base``: ``read_record`` / ``write_record`` and the model bases (foreign files keep
  unknown keys, our own refuse them);
- ``standard``: a standard- or inspect-mode suite run (manifest, run records, metrics);
- ``agent_eval``: an agent-evaluation experiment in ProjectScylla's layout (``checkpoint``: its checkpoint.json);
- ``reports``: the report files rebuilt from ``run_result.json`` files;
- ``state``: the lock a recovery keeps beside an experiment;
- ``status_cache_file``: the classification cache it keeps there (no pydantic);
- ``raw``: the bounded, link-refusing byte reads every reader shares (no pydantic);
- ``resume_manifest``: the manifest a ``--resume`` names, read and matched to the suite.

Import from here (``from experiment_infra.records import RunResult``); the modules
are how the schemas are kept, not a second way to reach them.

The names are imported on first use (PEP 562), one module at a time: a process that
needs the run record alone (the case waiter) does not build every report model.

Beside them, ``inspect_logs``: Inspect AI's ``.eval`` logs (header and metadata only),
read through Inspect's own reader.

May import: files, layout, processes
"""

from __future__ import annotations

# Not imported from typing, which costs the case waiter (beside every case) a tenth of its
# start-up; static checkers treat this name the same.
TYPE_CHECKING = False

from ..lazy import lazy_exports

# Public name -> the module of this package that defines it.
_WHERE = {
    "annotations": "__future__",
    "MAX_RECORD_BYTES": "raw",
    "utc_now": "base",
    "utc_now_iso": "base",
    "RecordError": "base",
    "ReadResult": "base",
    "read_record": "base",
    "read_once": "base",
    "forget": "base",
    "explain_validation": "base",
    "NOFOLLOW_READ_FLAGS": "raw",
    "load_record": "base",
    "record_json": "base",
    "write_record": "base",
    "load_resume_manifest": "resume_manifest",
    "GitProvenance": "standard",
    "CodeVersion": "standard",
    "AttemptCode": "standard",
    "ManifestCase": "standard",
    "CodeFingerprint": "standard",
    "CaseIdentity": "standard",
    "ManifestAddition": "standard",
    "SuiteManifest": "standard",
    "RunRecord": "standard",
    "InspectRunRecord": "standard",
    "CaseMetrics": "standard",
    "ExperimentConfig": "agent_eval",
    "CommandEntry": "agent_eval",
    "CommandLog": "agent_eval",
    "AgentTiming": "agent_eval",
    "TokenStats": "agent_eval",
    "AgentResult": "agent_eval",
    "ClaudeUsage": "agent_eval",
    "ClaudeCodeOutput": "agent_eval",
    "Judgment": "agent_eval",
    "JudgeTiming": "agent_eval",
    "ProcessRecord": "agent_eval",
    "JudgeCommand": "agent_eval",
    "Consensus": "agent_eval",
    "JudgeSummary": "agent_eval",
    "RunResult": "agent_eval",
    "RunReport": "agent_eval",
    "ConditionRecord": "agent_eval",
    "AgentEvalManifest": "agent_eval",
    "ScyllaCheckpoint": "checkpoint",
    "INFINITE": "reports",
    "cost_of_pass_value": "reports",
    "MissingRun": "reports",
    "SubtestResult": "reports",
    "TierResult": "reports",
    "ExperimentResult": "reports",
    "SubtestReportSummary": "reports",
    "SubtestReportChild": "reports",
    "SubtestReport": "reports",
    "TierReportSummary": "reports",
    "TierReportBest": "reports",
    "TierReportChild": "reports",
    "TierReport": "reports",
    "ExperimentReportSummary": "reports",
    "ExperimentReportBest": "reports",
    "ExperimentReportChild": "reports",
    "ExperimentReport": "reports",
    "TierComparisonEntry": "reports",
    "TierComparison": "reports",
    "SubtestVote": "reports",
    "BestSubtest": "reports",
    "LockInfo": "state",
    "STATUS_CACHE_FORMAT": "status_cache_file",
    "CachedClass": "status_cache_file",
    "CachedRun": "status_cache_file",
    "cached_class_ok": "status_cache_file",
    "StatusCacheFile": "status_cache_file",
    "cached_run_ok": "status_cache_file",
    "read_status_cache": "status_cache_file",
    "write_status_cache": "status_cache_file",
}

__all__ = list(_WHERE)


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())


if TYPE_CHECKING:  # static checkers see the real imports
    from .raw import MAX_RECORD_BYTES, NOFOLLOW_READ_FLAGS
    from .base import utc_now, utc_now_iso, RecordError, ReadResult, read_record, read_once, forget, explain_validation, load_record, record_json, write_record
    from .standard import AttemptCode, CaseIdentity, CodeFingerprint, ManifestAddition, CodeVersion, GitProvenance, ManifestCase, SuiteManifest, RunRecord, InspectRunRecord, CaseMetrics
    from .agent_eval import ExperimentConfig, CommandEntry, CommandLog, AgentTiming, TokenStats, AgentResult, ClaudeUsage, ClaudeCodeOutput, Judgment, JudgeTiming, ProcessRecord, JudgeCommand, Consensus, JudgeSummary, RunResult, RunReport, ConditionRecord, AgentEvalManifest
    from .reports import INFINITE, cost_of_pass_value, MissingRun, SubtestResult, TierResult, ExperimentResult, SubtestReportSummary, SubtestReportChild, SubtestReport, TierReportSummary, TierReportBest, TierReportChild, TierReport, ExperimentReportSummary, ExperimentReportBest, ExperimentReportChild, ExperimentReport, TierComparisonEntry, TierComparison, SubtestVote, BestSubtest
    from .checkpoint import ScyllaCheckpoint
    from .resume_manifest import load_resume_manifest
    from .state import LockInfo
    from .status_cache_file import STATUS_CACHE_FORMAT, CachedClass, CachedRun, StatusCacheFile, cached_class_ok, cached_run_ok, read_status_cache, write_status_cache
