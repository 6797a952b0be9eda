"""The trust gate: which candidates may become an edit of the user's code.

The user's own code is the best oracle there is. It is run on the same probe as the candidates (its docstring's
examples and generated inputs), and what it returned or raised is what a candidate is held to:

* improve (any behaviour-preserving rewrite): the same value, or an error where the original raised one, on every
  input, and every docstring example the original passes still passes;
* docstring: the body is unchanged (the syntax trees are equal but for docstrings and comments), or else the
  candidate is held to the improve rule;
* fix: every example the original passes still passes, and the candidate does not behave exactly like the
  original when the original fails an example (that would fix nothing);
* implement: the original is a stub, so there is no oracle; a candidate that only crashes or returns nothing is out.

Pure functions over observed behaviour: nothing here runs code. Each rule returns the reason a candidate is out
(shown to the user next to that answer), or None when it may become an edit.
"""

from __future__ import annotations

import ast

from ..edits import function_named, parse_python
from ..types import TaskKind
from .behaviour import Behaviour, stopped

__all__ = ["NO_CHANGE", "UNSAFE", "behaviour_gate", "is_python_code", "oracle_usable", "same_code_but_docs"]


NO_CHANGE = "proposes no change to your code"  # not wrong, just nothing to apply: the history counts it neither way
UNSAFE = "unsafe: "  # the start of the reason for a candidate that tried what no code edit needs (history: failed)


def oracle_usable(original: Behaviour | None) -> bool:
    """Whether the original's run says something: it could be defined, and some call was not stopped."""
    return original is not None and original.loaded and any(not stopped(k) for k in original.keys)


def _lost_examples(candidate: Behaviour, original: Behaviour) -> list[int]:
    return [i for i, (was, now) in enumerate(zip(original.passed, candidate.passed, strict=False)) if was and not now]


def _changed_inputs(candidate: Behaviour, original: Behaviour) -> int:
    """Calls on which the candidate did something else than the original (an error where the original raised
    one counts as the same; an input the original could not finish is not counted)."""
    changed = 0
    for mine, theirs in zip(candidate.keys, original.keys, strict=False):
        if stopped(theirs):
            continue
        if theirs.startswith("!"):
            changed += not (mine.startswith("!") and not stopped(mine))
        else:
            changed += mine != theirs
    return changed


def _examples_phrase(indices: list[int]) -> str:
    shown = ", ".join(str(i + 1) for i in indices[:3]) + ("…" if len(indices) > 3 else "")
    return f"docstring example{'s' if len(indices) > 1 else ''} {shown}"


def behaviour_gate(
    task: TaskKind, candidate: Behaviour, original: Behaviour | None, *, original_hostile: str | None = None
) -> str | None:
    """The reason ``candidate`` (observed on the same probe as ``original``) may not replace the user's code for
    ``task``; None when it may. ``original`` is None (or unusable) when there is no oracle. A candidate that tried
    what no code edit needs is out first, as unsafe - unless the user's own code tried the same
    (``original_hostile``: it fetches a URL, say), when it is only a candidate that could not be run."""
    hostile = candidate.hostile
    if hostile is not None and hostile != original_hostile:
        return f"{UNSAFE}{hostile} (the sandbox stopped it; no code edit needs that)"
    if candidate.degenerate:
        return "crashes or returns nothing on every input"
    if not oracle_usable(original) or task is TaskKind.IMPLEMENT:
        return None
    assert original is not None
    lost = _lost_examples(candidate, original)
    if lost:
        return f"fails {_examples_phrase(lost)}, which your code passes"
    if task in (TaskKind.IMPROVE, TaskKind.DOCSTRING):
        changed = _changed_inputs(candidate, original)
        if changed:
            total = sum(not stopped(k) for k in original.keys)
            return f"does something else than your code on {changed} of {total} inputs"
    if task is TaskKind.FIX and not all(original.passed) and candidate.keys == original.keys:
        return "behaves exactly like your code, so it fixes nothing your examples show"
    return None


def _without_docs(tree: ast.AST) -> str:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            first = body[0].value if body and isinstance(body[0], ast.Expr) else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def same_code_but_docs(a: str, b: str, entry_point: str | None = None) -> bool | None:
    """Whether two Python sources are the same program but for docstrings and comments: the ``entry_point``
    functions when both define it (imports a model repeats around it do not matter), else the whole modules.
    None when either is not Python."""
    tree_a, tree_b = parse_python(a), parse_python(b)
    if tree_a is None or tree_b is None:
        return None
    fa, fb = function_named(tree_a, entry_point), function_named(tree_b, entry_point)
    if fa is not None and fb is not None:
        return _without_docs(fa) == _without_docs(fb)
    return _without_docs(tree_a) == _without_docs(tree_b)


def _is_inert(stmt: ast.stmt) -> bool:
    """A statement that does nothing: ``pass``, ``...``, a bare name or constant (what prose parses to)."""
    return isinstance(stmt, ast.Pass) or (
        isinstance(stmt, ast.Expr) and isinstance(stmt.value, (ast.Constant, ast.Name))
    )


def is_python_code(code: str, entry_point: str | None = None) -> bool:
    """Whether ``code`` is a program rather than prose that happens to parse: it parses, defines
    ``entry_point`` when one is named, and that function (or the module) has a statement that does something."""
    tree = parse_python(code)
    if tree is None:
        return False
    if entry_point is not None:
        function = function_named(tree, entry_point)
        if function is None:
            return False
        body = function.body
    else:
        body = tree.body
    return any(not _is_inert(stmt) for stmt in body)
