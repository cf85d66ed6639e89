"""Inspect AI mode: each case is an Inspect eval whose ``.eval`` log lands flat in
``results/{experiment}/`` as ``{timestamp}_{git7}_{variant}_{id}.eval``.

Inspect is an optional dependency (``pip install experiment-infra[inspect]``): it is
imported inside the functions that need it, so the core imports without it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .config import BaseExperimentConfig
from .layout import inspect_log_file_pattern, inspect_logs_for

if TYPE_CHECKING:  # pragma: no cover
    from inspect_ai.log import EvalLog

# Inspect reads these when it names and places a log; the runner sets them per case.
LOG_PATTERN_ENV = "INSPECT_EVAL_LOG_FILE_PATTERN"
LOG_DIR_ENV = "INSPECT_LOG_DIR"
VARIANT_ENV = "EXPERIMENT_VARIANT"

InspectLogStatus = Literal["started", "success", "cancelled", "error"]


class InspectNotInstalled(RuntimeError):
    pass


def require_inspect() -> None:
    try:
        import inspect_ai  # noqa: F401
    except ImportError:
        raise InspectNotInstalled(
            "inspect mode needs Inspect AI: pip install 'experiment-infra[inspect]'"
        ) from None


def case_env(log_dir: Path, git7: str, variant_name: str) -> dict[str, str]:
    """Environment for one case's subprocess: where and under which name Inspect logs."""
    return {
        LOG_PATTERN_ENV: inspect_log_file_pattern(git7, variant_name),
        LOG_DIR_ENV: str(log_dir),
        VARIANT_ENV: variant_name,
    }


def run_inspect_case(task: Any, config: BaseExperimentConfig, **eval_kwargs: Any) -> "EvalLog":
    """Run ``task`` for one case from inside its entry point; the config travels in the log.

    ``config.output_dir`` is the flat log directory; the log file name comes from
    the pattern the runner put in the environment.
    """
    require_inspect()
    from inspect_ai import eval as inspect_eval

    metadata = {
        **eval_kwargs.pop("metadata", {}),
        "config": config.model_dump(mode="json"),
        "config_class": f"{type(config).__module__}.{type(config).__qualname__}",
        "variant_name": os.environ.get(VARIANT_ENV),
    }
    eval_kwargs.setdefault("display", "none")
    logs = inspect_eval(task, log_dir=config.output_dir or None, metadata=metadata, **eval_kwargs)
    return logs[0]


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


def latest_log(log_dir: Path, variant_name: str) -> InspectLogHeader | None:
    logs = inspect_logs_for(log_dir, variant_name)
    return read_log_header(logs[-1]) if logs else None
