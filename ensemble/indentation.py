"""Indentation of code moved between places: one rule for the consensus, the language layer and the edits."""

from __future__ import annotations

import textwrap

__all__ = ["reindent"]


def reindent(code: str, like: str) -> str:
    """``code`` re-indented to the indentation of the first non-blank line of ``like``.

    Models often answer a method at column 0; inserting that into a class would break it.
    """
    target = next((line for line in like.splitlines() if line.strip()), "")
    indent = target[: len(target) - len(target.lstrip())]
    body = textwrap.dedent(code)
    if not indent:
        return body
    return "\n".join(indent + line if line.strip() else line for line in body.splitlines()) + (
        "\n" if code.endswith("\n") else ""
    )
