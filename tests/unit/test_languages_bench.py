"""The pure parts of ``bench/languages.py``: the request an editor sends for a HumanEvalPack-JS task (what is
selected, where the examples come from) and what the user ends up with under each reading. Nothing is run."""

from __future__ import annotations

from typing import Any

from bench.languages import Outcome, request_for
from codeconductor.ensemble.consensus import probe_for
from codeconductor.ensemble.types import TaskKind

# Shaped like a HumanEvalPack-JS row: a helper with its own comment, then the entry point's comment and declaration.
TASK: dict[str, Any] = {
    "task_id": "JavaScript/x",
    "prompt": (
        "/* Twice x. */\nconst twice = (x) => {\n  return 2 * x;\n}\n\n"
        "/* Add one to twice x.\n  >>> addOne(2)\n  5\n  >>> addOne(0)\n  1\n  */\nconst addOne = (x) => {\n"
    ),
    "declaration": "\nconst twice = (x) => {\n  return 2 * x;\n}\n\nconst addOne = (x) => {\n",
    "buggy_solution": "  return twice(x);\n}\n",
    "canonical_solution": "  return twice(x) + 1;\n}\n",
    "entry_point": "addOne",
}


def test_function_selection_is_the_entry_point_and_its_comment_gives_the_examples() -> None:
    request = request_for(TASK, "fix")
    assert request.task is TaskKind.FIX
    assert request.context.language == "javascript"
    assert request.context.selection == "const addOne = (x) => {\n  return twice(x);\n}"
    assert ">>> addOne(2)" in request.context.before
    probe = probe_for(request)
    assert probe is not None
    assert [(e.call, e.expected) for e in probe.examples] == [("addOne(2)", "5"), ("addOne(0)", "1")]


def test_file_selection_takes_the_comment_and_the_improve_code() -> None:
    request = request_for(TASK, "improve", "file")
    assert request.task is TaskKind.IMPROVE
    assert request.context.selection.startswith("/* Twice x. */")
    assert request.context.selection.endswith("return twice(x) + 1;\n}")


def test_the_user_ends_up_with_the_applied_edit_or_their_code() -> None:
    unchecked_right = Outcome(offered=True, checked=False, passes=True, confidence=0.3, unchecked="nothing ran")
    checked_wrong = Outcome(offered=True, checked=True, passes=False, confidence=0.9)
    nothing = Outcome(offered=False, checked=False, passes=False, confidence=0.0, no_edit="no fix found")
    assert unchecked_right.ends_ok(False, checked_only=False)
    assert not unchecked_right.ends_ok(False, checked_only=True)  # not applied: the buggy code stays
    assert not checked_wrong.ends_ok(True, checked_only=True)
    assert nothing.ends_ok(True, checked_only=False)
    assert not nothing.ends_ok(False, checked_only=False)
