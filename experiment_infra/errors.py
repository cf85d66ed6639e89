"""The core's one error hierarchy: every refusal a user can act on carries its exit code.

A command line catches ``ExperimentError`` once and prints ``error: <message>`` (the
message names the file, field or flag and the fix) and exits with ``exit_code``. See
the exit-code table in docs/exit-codes.md.
"""

from __future__ import annotations

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_LOCKED = 0, 1, 2, 3


class ExperimentError(Exception):
    """Input a user can fix, or a service they must start: one line, ``exit_code``."""

    exit_code: int = EXIT_BAD_INPUT


class LockedError(ExperimentError):
    """Another run or recovery holds the directory: wait for it, or take over a stale lock."""

    exit_code = EXIT_LOCKED


class LinkedPathError(ExperimentError):
    """A symlink where this project writes, moves or deletes (a directory of the experiment
    or run, or a file it rewrites): never written through, never replaced; the user
    replaces it with a real directory or file."""
