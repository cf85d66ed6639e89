"""How much a Prefect UI artifact may hold: summaries, never a large run's full tables.

The server refuses an event over 1.5 MB (``Refusing to publish event of size ...``) and
the artifact is lost; well below that a table of thousands of rows is unreadable anyway.
Every publisher caps its tables and lines here and names the file holding them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["MAX_ARTIFACT_BYTES", "MAX_ARTIFACT_ROWS", "MAX_INLINE_IMAGE_BYTES", "cap_markdown", "capped_lines", "capped_rows"]

MAX_ARTIFACT_ROWS = 200  # rows of a table artifact; lines of a list in a markdown artifact
MAX_INLINE_IMAGE_BYTES = 300_000  # one PNG inlined as base64 (a third more once encoded)
MAX_ARTIFACT_BYTES = 1_000_000  # a whole markdown artifact, the last guard


def capped_rows(rows: Sequence[dict[str, Any]], where: str, limit: int = MAX_ARTIFACT_ROWS) -> list[dict[str, Any]]:
    """The first ``limit`` rows, and one more saying how many were left out and where they are."""
    if len(rows) <= limit:
        return list(rows)
    first = next(iter(rows[0]), "item")
    return [*rows[:limit], {first: f"... {len(rows) - limit} more rows: see {where}"}]


def capped_lines(lines: Sequence[str], where: str, limit: int = MAX_ARTIFACT_ROWS) -> list[str]:
    if len(lines) <= limit:
        return list(lines)
    return [*lines[:limit], f"- ... {len(lines) - limit} more: see {where}"]


def cap_markdown(text: str, where: str, limit: int = MAX_ARTIFACT_BYTES) -> str:
    """``text`` cut at a line before ``limit`` bytes (UTF-8), with a line naming ``where``."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    cut = data[:limit].decode("utf-8", errors="ignore")
    cut = cut[: cut.rfind("\n") + 1] if "\n" in cut else cut
    return cut + f"\n\n*Cut here: {len(data) - len(cut.encode('utf-8')):,} more bytes; see {where}.*\n"
