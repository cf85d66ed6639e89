"""The run-record updates of the case waiter, in the standard library alone.

A waiter process sits beside every standard-mode case (``case_waiter.py``); loading
pydantic and building the models would cost it more CPU than a trivial case takes, so
it reads and updates ``run_record.json`` as plain JSON. The schema is still
``standard.RunRecord``'s: the waiter only fills in the fields named here, in the text
``write_record`` writes, and tests/test_suite_flow.py reads every record it wrote back
through ``RunRecord``.
"""

from __future__ import annotations

import json

from ..files.atomic import atomic_write_text, json_text

TYPE_CHECKING = False  # neither typing nor pathlib at run time: the case waiter runs beside every case
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

__all__ = ["END_FIELDS", "START_FIELDS", "read_run_record_json", "update_run_record_json"]

START_FIELDS = ("pid", "pid_start")
END_FIELDS = ("ended_at", "exit_code", "duration_seconds", "timed_out", "reason", "interrupted", "failure")


def read_run_record_json(path: Path | str) -> tuple[dict[str, Any] | None, str | None]:
    """The record as a dict holding what the waiter needs (``command``, ``cwd``), or why not."""
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read())
    except FileNotFoundError:
        return None, "missing"
    except (OSError, ValueError) as exc:
        return None, f"unreadable ({exc})"
    if not isinstance(data, dict):
        return None, "not a JSON object"
    command, cwd = data.get("command"), data.get("cwd")
    if not (isinstance(command, list) and command and all(isinstance(c, str) for c in command)):
        return None, "field command should be a non-empty list of text"
    if not isinstance(cwd, str):
        return None, "field cwd should be text"
    return data, None


def update_run_record_json(path: Path | str, record: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``record`` with ``changes`` (START_FIELDS or END_FIELDS only), written atomically."""
    unknown = set(changes) - set(START_FIELDS) - set(END_FIELDS)
    if unknown:
        raise ValueError(f"not a field the waiter writes: {sorted(unknown)}")
    updated = {**record, **changes}
    atomic_write_text(path, json_text(updated))
    return updated
