"""The manifest a ``--resume`` names: found, read and matched to the suite, one way for
every mode (a standard run directory's ``manifest.json``, an agent-evaluation
experiment's ``config/manifest.json``), so each refusal reads the same."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from ..errors import ExperimentError
from .base import RecordError, load_record

__all__ = ["load_resume_manifest"]

M = TypeVar("M", bound=BaseModel)


def load_resume_manifest(
    resume: str | Path, directory: Path, manifest: Path, model: type[M], experiment_name: str,
    error: type[ExperimentError], *, missing: str, layout: Callable[[], str | None] | None = None,
) -> M:
    """``manifest`` (of ``directory``, the resolved ``resume``) as ``model``, whose
    ``experiment_name`` must be the suite's; else ``error`` with one line naming ``resume``.

    ``missing``: what to say when the directory has no manifest (and how to fix it);
    ``layout``: a problem with the directory's layout, checked once its manifest is found
    and before it is read (None: no problem).
    """
    if not directory.is_dir():
        raise error(f"--resume {resume}: directory does not exist")
    if not manifest.is_file():
        raise error(f"--resume {resume}: {missing}")
    problem = layout() if layout is not None else None
    if problem is not None:
        raise error(f"--resume {resume}: {problem}")
    try:
        found = load_record(manifest, model)
    except RecordError as exc:
        raise error(f"--resume: {exc}") from None
    held = found.experiment_name  # type: ignore[attr-defined]  # every manifest names its experiment
    if held != experiment_name:
        raise error(f"--resume {resume}: it holds experiment {held!r}, this suite is {experiment_name!r}")
    return found
