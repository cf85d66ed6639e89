"""Names that become directory names: the portable subset every layout allows."""

from __future__ import annotations

import re

from ..errors import ExperimentError

# Names become directory names and travel on command lines, so only a portable
# subset is allowed (no separators, no NUL, no unicode look-alikes, no leading dot
# or dash that would hide the directory or read as a flag).
# \Z, not $: "$" also matches before a trailing newline, which would let "a\n" through.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+=@,-]*\Z")
MAX_NAME_LENGTH = 128

DIRTY_SUFFIX = "-dirty"
NOGIT = "nogit"
# ProjectScylla's layout since 2026-03-28: a run is written under in_progress/ while its
# agent works and moved to completed/ before it is judged; tiers' own files are in completed/.
COMPLETED = "completed"
IN_PROGRESS = "in_progress"
SLURM_LOGS = ".slurm-logs"  # in a run or experiment directory: its Slurm worker jobs' output
RUN_DIR_PATTERN = re.compile(r"^[0-9]{8}_[0-9]{6}_[0-9a-z]+(-dirty)?\Z")


class UnsafeNameError(ExperimentError, ValueError):
    """A variant, tier or subtest name that cannot be a single directory name."""


def check_name(kind: str, name: object) -> str:
    """Return ``name`` if it is a safe single directory name, else raise a one-line error."""
    if not isinstance(name, str) or not name:
        raise UnsafeNameError(f"{kind} name {name!r} is empty or not a string")
    shown = name if len(name) <= 40 else name[:37] + "..."
    if len(name) > MAX_NAME_LENGTH:
        raise UnsafeNameError(f"{kind} name {shown!r} is longer than {MAX_NAME_LENGTH} characters")
    if name in (".", "..") or not _SAFE_NAME.match(name):
        raise UnsafeNameError(
            f"{kind} name {shown!r} is not a safe directory name: use letters, digits and ._+=@,- "
            "(no path separators, no leading dot or dash, ASCII only)"
        )
    return name


