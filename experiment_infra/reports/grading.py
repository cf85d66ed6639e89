"""Letter grades of consensus scores, as ProjectScylla gives them."""

from __future__ import annotations

__all__ = ["grade_for"]


def grade_for(score: float) -> str:
    """Letter grade of a consensus score (S only at exactly 1.0)."""
    if score >= 1.0:
        return "S"
    for floor, letter in ((0.8, "A"), (0.6, "B"), (0.4, "C"), (0.2, "D")):
        if score >= floor:
            return letter
    return "F"
