"""The trust gate: which candidates may become an edit of the user's code.

The user's own code is the best oracle there is. It is run on the same probe as the candidates (its docstring's
examples and generated inputs), and what it returned or raised is what a candidate is held to:

* improve (any behaviour-preserving rewrite): the same value, or an error where the original raised one, on every
  input, and every docstring example the original passes still passes;
* docstring: the body is unchanged (the language says so: in Python the syntax trees are equal but for docstrings
  and comments), never run;
* fix: every example the original passes still passes, and the candidate does not behave exactly like the
  original when the original fails an example (that would fix nothing). Where the original passes every
  example nothing shows that a fix fixes anything: such a pick is offered as "not checked" (the consensus says so);
* implement: the original is a stub, so there is no oracle; a candidate that only crashes or returns nothing is out.

Pure functions over observed behaviour: nothing here runs code. Each rule returns the reason a candidate is out
(shown to the user next to that answer), or None when it may become an edit.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..types import TaskKind
from .behaviour import Behaviour, Probe, stopped

__all__ = [
    "NO_CHANGE",
    "UNCHECKED_IN_PROJECT",
    "UNSAFE",
    "behaviour_gate",
    "fewer_fixed",
    "fix_shown",
    "fixed_tests",
    "oracle_usable",
    "project_gate",
    "project_oracle_usable",
    "unsafe_reason",
    "used_in_project",
]


NO_CHANGE = "proposes no change to your code"  # not wrong, just nothing to apply: the history counts it neither way
UNSAFE = "unsafe: "  # the start of the reason for a candidate that tried what no code edit needs (history: failed)
UNCHECKED_IN_PROJECT = "could not be checked in your project"  # a refusal for want of evidence, not the answer's fault


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


def unsafe_reason(candidate: Behaviour, original_hostile: str | None = None) -> str | None:
    """Why ``candidate`` is out as unsafe: it tried what no code edit needs - unless the user's own code tried the
    same (``original_hostile``: it fetches a URL, say), when it is only a candidate that could not be run."""
    hostile = candidate.hostile
    if hostile is not None and hostile != original_hostile:
        return f"{UNSAFE}{hostile} (the sandbox stopped it; no code edit needs that)"
    return None


def behaviour_gate(
    task: TaskKind, candidate: Behaviour, original: Behaviour | None, *, original_hostile: str | None = None
) -> str | None:
    """The reason ``candidate`` (observed on the same probe as ``original``) may not replace the user's code for
    ``task``; None when it may. ``original`` is None (or unusable) when there is no oracle. A candidate that tried
    what no code edit needs is out first, as unsafe - unless the user's own code tried the same
    (``original_hostile``: it fetches a URL, say), when it is only a candidate that could not be run."""
    if (unsafe := unsafe_reason(candidate, original_hostile)) is not None:
        return unsafe
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


def project_oracle_usable(original: Behaviour | None) -> bool:
    """Whether the original's run in its project says something: an input it handled, or a test that ran."""
    if original is None:
        return False
    return any(not stopped(k) for k in original.keys) or any(o in ("passed", "failed") for _, o in original.tests)


def _evidence(original: Behaviour, probe: Probe) -> list[int]:
    """The inputs a candidate is held to: every example and recorded call the original finished, and the
    generated inputs it accepted (one it rejects says nothing about what the code is for)."""
    generated = probe.generated
    return [
        i for i, key in enumerate(original.keys) if not stopped(key) and not (i in generated and key.startswith("!"))
    ]


def used_in_project(original: Behaviour, probe: Probe) -> bool:
    """Whether the project's own use of the function was observed on the user's code: a test that calls it
    passed, or a call recorded from the tests was replayed to an outcome. Generated inputs and docstring
    examples alone are not that (a broken rewrite often agrees with the original on all of them)."""
    if any(outcome == "passed" for _, outcome in original.tests):
        return True
    first_recorded = len(probe.examples) + len(probe.extra)
    return any(not stopped(k) for k in original.keys[first_recorded:])


def fixed_tests(candidate: Behaviour, original: Behaviour) -> frozenset[str]:
    """The tests failing on the user's code that pass on ``candidate``: what shows that it fixes something."""
    after = dict(candidate.tests)
    return frozenset(t for t, o in original.tests if o not in ("passed", "skipped") and after.get(t) == "passed")


def fix_shown(candidate: Behaviour, original: Behaviour) -> bool:
    """Whether a fix was seen to fix something: a test failing on the user's code passes, or a docstring example
    it fails passes."""
    gained = any(now and not was for was, now in zip(original.passed, candidate.passed, strict=False))
    return gained or bool(fixed_tests(candidate, original))


def fewer_fixed(candidates: Sequence[Behaviour], original: Behaviour) -> list[str | None]:
    """Per fix candidate (each already through :func:`project_gate`): why it is out because another one fixes
    every failing test it fixes and more (it would leave a bug the other removes), or None."""
    fixed = [fixed_tests(c, original) for c in candidates]
    failing = sum(o not in ("passed", "skipped") for _, o in original.tests)
    out: list[str | None] = []
    for mine in fixed:
        best = max((other for other in fixed if mine < other), key=len, default=None)
        out.append(
            None
            if best is None
            else f"makes {len(mine)} of your {failing} failing tests pass, another answer {len(best)}"
        )
    return out


def _tests_phrase(names: list[str], total: int) -> str:
    first = names[0].rsplit("::", 1)[-1]
    return f"{len(names)} of {total} of your tests" + (f" ({first}{', ...' if len(names) > 1 else ''})")


def project_gate(task: TaskKind, candidate: Behaviour, original: Behaviour, probe: Probe) -> str | None:
    """The reason ``candidate``, run in the user's project on ``probe`` (examples, generated and recorded calls,
    the project's tests), may not replace the user's code for ``task``; None when it may. Improve and docstring:
    every test passing on the user's code passes, and every input the original handled gives the same value, the
    same exception type and the same changes to its arguments, and the project's own use of the function was
    observed (:func:`used_in_project`; generated inputs alone let broken rewrites through). Fix: no passing test
    may fail, examples passing still pass, and when tests fail on the user's code the candidate must make one of
    them pass (among candidates, :func:`fewer_fixed`; a fix seen to fix nothing is labelled not checked by the
    consensus, :func:`fix_shown`)."""
    if candidate.keys and not candidate.loaded:
        return f"does not load in your module ({candidate.keys[0].removeprefix('!load:')})"
    before, after = dict(original.tests), dict(candidate.tests)
    passing = [t for t, o in before.items() if o == "passed"]
    broken = [t for t in passing if after.get(t) != "passed"]
    if broken:
        return f"fails {_tests_phrase(broken, len(passing))} that pass on your code"
    lost = _lost_examples(candidate, original)
    if lost:
        return f"fails {_examples_phrase(lost)}, which your code passes"
    evidence = _evidence(original, probe)
    if task is TaskKind.IMPLEMENT:
        # A stub is no oracle: only what nothing can excuse, crashing or returning nothing everywhere.
        return "crashes or returns nothing on every input" if candidate.degenerate else None
    if task in (TaskKind.IMPROVE, TaskKind.DOCSTRING):
        changed = [i for i in evidence if i >= len(candidate.keys) or candidate.keys[i] != original.keys[i]]
        if changed:
            return f"does something else than your code on {len(changed)} of {len(evidence)} inputs"
        if not evidence and not passing:
            return "nothing your code does could be observed (no test of it passes, no input it accepts)"
        if not used_in_project(original, probe):
            # Inputs nobody wrote (and a docstring's few examples) let broken rewrites through: not a check.
            target = probe.project.target if probe.project is not None else "it"
            return (
                f"{UNCHECKED_IN_PROJECT}: no test of yours calls {target}, so it was compared with your code on "
                "generated inputs and docstring examples only, which do not show that it keeps what your code "
                "does (add a test that uses it)"
            )
        return None
    if task is TaskKind.FIX:
        failing = [t for t, o in before.items() if o not in {"passed", "skipped"}]
        fixed = [t for t in failing if after.get(t) == "passed"]
        if failing and not fixed:
            return f"makes none of the {len(failing)} failing tests pass"
        if not failing and candidate.keys == original.keys and candidate.tests == original.tests:
            return "behaves exactly like your code, so it fixes nothing your tests or examples show"
    return None
