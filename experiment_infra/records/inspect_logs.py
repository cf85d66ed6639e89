"""Reading Inspect AI's ``.eval`` logs (header and metadata only), through Inspect's own reader.

Inspect AI is optional (the ``inspect`` extra): it is imported inside the functions that
need it, and ``require_inspect`` turns its absence into one line naming the install.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import ExperimentError
from ..layout import inspect_logs_for

__all__ = [
    "InspectLogHeader", "InspectLogStatus", "InspectNotInstalled", "latest_log", "read_log_header",
    "read_log_metadata", "require_inspect",
]

InspectLogStatus = Literal["started", "success", "cancelled", "error"]


class InspectNotInstalled(ExperimentError):
    """Inspect mode without the ``inspect`` extra installed (bad input: one line, exit 2)."""


def require_inspect() -> None:
    try:
        import inspect_ai  # noqa: F401
    except ImportError:
        raise InspectNotInstalled(
            "inspect mode needs Inspect AI: pip install 'experiment-infra[inspect]'"
        ) from None


@dataclass(frozen=True)
class InspectLogHeader:
    path: Path
    status: InspectLogStatus | None
    problem: str | None = None
    error: str | None = None


def read_log_header(path: Path) -> InspectLogHeader:
    """Status of one ``.eval`` log via Inspect's own reader (header only: fast)."""
    require_inspect()
    from inspect_ai.log import read_eval_log

    try:
        log = read_eval_log(str(path), header_only=True)
    except Exception as exc:  # a torn or foreign file: say so, never crash a scan
        return InspectLogHeader(path, None, problem=f"unreadable ({type(exc).__name__}: {exc})"[:200])
    error = log.error.message[:200] if log.error else None
    return InspectLogHeader(path, log.status, error=error)


def read_log_metadata(path: Path) -> dict[str, Any]:
    """The metadata ``run_inspect_case`` stored in a log (config, variant, suite file, git)."""
    require_inspect()
    from inspect_ai.log import read_eval_log

    try:
        return dict(read_eval_log(str(path), header_only=True).eval.metadata or {})
    except Exception:  # a torn or foreign log: no metadata, never a crash
        return {}


def latest_log(log_dir: Path, variant_name: str) -> InspectLogHeader | None:
    logs = inspect_logs_for(log_dir, variant_name)
    return read_log_header(logs[-1]) if logs else None
