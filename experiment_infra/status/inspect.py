"""Status rules of inspect-mode cases: the run record of their latest attempt and the
``.eval`` log Inspect wrote (kept apart from ``status``, whose case statuses they use)."""

from __future__ import annotations

from pathlib import Path

from ..records.inspect_logs import InspectLogHeader, latest_log
from ..layout import InspectCasePaths
from ..records import InspectRunRecord, read_record
from .rules import CaseClassification, CaseStatus, never_finished, why_it_ended

__all__ = ["classify_inspect_case"]

_INSPECT_STATUS = {
    "success": CaseStatus.COMPLETED,
    "error": CaseStatus.FAILED,
    "cancelled": CaseStatus.FAILED,
    "started": CaseStatus.PARTIAL,  # the process died before Inspect closed the log
}


def _from_log(header: InspectLogHeader | None) -> CaseClassification:
    if header is None:
        return CaseClassification(CaseStatus.MISSING, "no .eval log")
    if header.status is None:
        return CaseClassification(CaseStatus.PARTIAL, f"{header.path.name}: {header.problem}")
    reason = f"{header.path.name}: {header.status}" + (f" ({header.error})" if header.error else "")
    return CaseClassification(_INSPECT_STATUS[header.status], reason)


def classify_inspect_case(log_dir: Path, variant_name: str) -> CaseClassification:
    """Status of an inspect-mode case: its run record (the latest attempt) and the log it wrote.

    Without a record (logs this project did not run), or when a newer log than the
    record's exists (written since, by hand), the newest log alone decides.
    """
    read = read_record(InspectCasePaths.of(log_dir, variant_name).run_record, InspectRunRecord)
    record = read.record
    if record is None and read.exists:
        return CaseClassification(CaseStatus.PARTIAL, f"run record unusable ({read.problem})")
    header = latest_log(log_dir, variant_name)
    if record is None or (record.eval_log is not None and (header is None or header.path.name != record.eval_log)):
        return _from_log(header)
    unfinished = never_finished(record)
    if unfinished is not None:
        return unfinished
    why = why_it_ended(record)
    if record.eval_log is None:
        # Never read as the success of an older log: the latest attempt wrote none.
        if header is None:
            return CaseClassification(CaseStatus.MISSING, f"no .eval log written ({why})", record)
        return CaseClassification(
            CaseStatus.FAILED, f"no .eval log written ({why}); {header.path.name} is an earlier attempt's", record
        )
    now = _from_log(header)
    if now.status is CaseStatus.COMPLETED and record.exit_code != 0:
        return CaseClassification(CaseStatus.FAILED, f"{now.reason}, but the entry point then failed: {why}", record)
    return CaseClassification(now.status, now.reason, record)
