"""Show the user how the other answers differ from the pick: a unified diff per dissenting group."""

from __future__ import annotations

import difflib

__all__ = ["unified_diff"]


def unified_diff(pick: str, other: str, *, pick_label: str = "pick", other_label: str = "alternative") -> str:
    """A unified diff from ``pick`` to ``other`` ("" when they are the same text)."""
    if pick == other:
        return ""
    lines = difflib.unified_diff(
        pick.splitlines(keepends=True), other.splitlines(keepends=True), pick_label, other_label, n=2
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
