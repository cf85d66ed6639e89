"""What a suite run ends with: one row per case and the summary printed, published and
turned into the flow run's final state (read back from the files on disk by ``run_suite``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from prefect.states import State

from experiment_infra.layout import SuiteRunPaths
from experiment_infra.status.attempts import failures_text
from experiment_infra.status.rules import CaseStatus
from flows.final_state import final_state

__all__ = ["MAX_LISTED", "REUSED", "CaseRow", "SuiteSummary"]


@dataclass(frozen=True)
class CaseRow:
    variant: str
    status: str
    duration_seconds: float | None
    exit_code: int | None
    attempt: int | None
    output_dir: str
    reason: str
    code: str = ""  # the commit the last attempt ran (abc1234[-dirty]); "" before attempts named it
    devices: str = ""  # host and GPUs its last attempt held ("" when the run handed out none)
    # Each attempt's failure class, oldest first (status.attempts, as recovery shows them);
    # () when no attempt failed.
    failures: tuple[str | None, ...] = ()

    @property
    def failures_text(self) -> str:
        """``signal, -``: killed from outside, then completed on the retry (``-``: none failed)."""
        return failures_text(self.failures)

    @property
    def reason_and_failures(self) -> str:
        """The reason, then the classes (``attempt 2: exit code 3 [signal, exit]``), for the
        places that list cases one per line, without a failures column."""
        return f"{self.reason} [{self.failures_text}]" if self.failures else self.reason


REUSED = "Reused"  # a case --reuse took from an earlier run (no task run)
MAX_LISTED = 25  # cases the printed summary lists one by one; beyond, only those that did not complete


@dataclass(frozen=True)
class SuiteSummary:
    experiment_name: str
    run_dir: str
    dry_run: bool = False
    rows: tuple[CaseRow, ...] = field(default_factory=tuple)
    not_in_suite: tuple[str, ...] = ()  # cases of a resumed run the suite no longer has (left on disk)
    errors: tuple[str, ...] = ()  # what failed besides the cases (the report rebuild)
    budget_spent: int | None = None  # cases failed when the failure budget stopped the run, if it did
    resumable: bool = True  # `--resume run_dir` continues it (inspect mode has no resume)

    @property
    def failed(self) -> list[CaseRow]:
        return [r for r in self.rows if r.status != CaseStatus.COMPLETED.value]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.errors

    def final_state(self) -> State:
        """``Completed``, or ``Failed`` naming each case that did not complete and each error."""
        parts = [f"{len(self.failed)} of {len(self.rows)} case(s) did not complete"] if self.failed else []
        parts += [f"{len(self.errors)} error(s)"] if self.errors else []
        if self.budget_spent is not None:
            parts.append(f"the failure budget stopped the run after {self.budget_spent} failure(s)")
        return final_state(
            self, done=f"{len(self.rows)} case(s) completed", headline=", ".join(parts),
            reasons=[f"{r.variant} {r.status}: {r.reason_and_failures}" for r in self.failed] + list(self.errors),
        )

    def failed_first(self) -> list[CaseRow]:
        return sorted(self.rows, key=lambda r: r.status == CaseStatus.COMPLETED.value)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.rows:
            out[row.status] = out.get(row.status, 0) + 1
        return out

    def counts_text(self) -> str:
        return ", ".join(f"{n} {s}" for s, n in sorted(self.counts().items()))

    @property
    def any_failures(self) -> bool:
        """Whether some case had a failed attempt (then the tables have a failures column)."""
        return any(r.failures for r in self.rows)

    @property
    def mixed_code(self) -> bool:
        """Whether the cases' last attempts ran on more than one code version."""
        return len({r.code for r in self.rows if r.code}) > 1

    def format(self) -> str:
        """The summary printed at the end: every case that did not complete, and the
        completed ones too unless there are more than MAX_LISTED rows (then a count: the
        full table is the run's report.md and the cases artifact). A ``code`` column
        shows which commit each case ran when they ran on more than one, a ``failures``
        column each attempt's failure class when some listed case had a failed attempt."""
        lines = [f"{self.experiment_name}: {len(self.rows)} case(s): {self.counts_text()}", f"run directory: {self.run_dir}"]
        if self.budget_spent is not None:
            lines.append(
                f"stopped by the failure budget: {self.budget_spent} case(s) failed, so no new case started "
                "(--resume runs the rest)"
            )
        shown = self.failed_first()
        if len(shown) > MAX_LISTED:
            shown = self.failed
        width = max([len(r.variant) for r in shown] + [7])
        mixed = self.mixed_code
        cw = max([len(r.code) for r in shown] + [4])
        failed_before = any(r.failures for r in shown)
        fw = max([len(r.failures_text) for r in shown] + [8])
        if shown:
            head = f"  {'code':<{cw}}" if mixed else ""
            head += f"  {'failures':<{fw}}" if failed_before else ""
            lines.append(f"  {'variant':<{width}}  {'status':<9}  {'seconds':>8}  {'exit':>4}{head}  reason")
        for r in shown:
            secs = f"{r.duration_seconds:.1f}" if r.duration_seconds is not None else "-"
            code = str(r.exit_code) if r.exit_code is not None else "-"
            ran = f"  {r.code or '-':<{cw}}" if mixed else ""
            ran += f"  {r.failures_text:<{fw}}" if failed_before else ""
            lines.append(f"  {r.variant:<{width}}  {r.status:<9}  {secs:>8}  {code:>4}{ran}  {r.reason}".rstrip())
        if len(shown) < len(self.rows):
            rest = len(self.rows) - len(shown)
            lines.append(
                f"  {'... and ' if shown else 'all '}{rest} completed case(s), not listed "
                f"(every case: {SuiteRunPaths(Path(self.run_dir)).report_md})"
            )
        if self.not_in_suite:
            lines.append(f"  not in the suite (left on disk, not run): {', '.join(self.not_in_suite)}")
        lines += [f"error: {e}" for e in self.errors]
        return "\n".join(lines)
