"""What each candidate DOES, as data: the probe (the inputs every candidate and the user's own code are run on)
and the observed :class:`Behaviour` (one outcome key per input, which docstring examples it satisfies).

Candidates are grouped by behaviour rather than by text, so two differently written correct solutions agree and
two broken ones that merely look alike do not; the user's original code, observed on the same probe, is the
oracle that behaviour-preserving edits must reproduce (``gate.py``). The probe's inputs come from the language
layer (``ensemble.languages``); observing is someone else's job: an :class:`Executor` (the sandbox's, owned by
the ``Pipeline``) is passed in. Nothing here starts a process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..languages import Example

__all__ = ["HOSTILE_KEY", "Behaviour", "Executor", "Probe"]


@dataclass(frozen=True)
class Probe:
    """The inputs every candidate is run on: examples (with expected values) first, then generated calls."""

    entry_point: str
    examples: tuple[Example, ...]
    extra: tuple[str, ...]
    language: str = "python"  # the language layer's name for the code (``ensemble.languages``)

    @property
    def empty(self) -> bool:
        return not self.examples and not self.extra


# Outcome keys that say nothing about the function's behaviour: it never ran (could not be defined), or it was
# stopped by the sandbox. Neither may count as "behaves like the original".
_NO_VERDICT_PREFIXES = ("!load:", "!Timeout", "!Killed", "!Forged", "!Lost", "!Hostile:")
# The sandbox saw the code try what no code edit needs (``ensemble.verify.sandbox.HOSTILE_ERROR``); the reason
# follows, e.g. "!Hostile:tried to open a network connection".
HOSTILE_KEY = "!Hostile:"


@dataclass(frozen=True)
class Behaviour:
    keys: tuple[str, ...]  # one per probe call: "=<value repr>" or "!<ErrorType>"
    passed: tuple[bool, ...]  # one per example

    @property
    def degenerate(self) -> bool:
        """Crashes or returns None everywhere: such candidates must not win by agreeing with each other."""
        return all(k.startswith("!") or k == "=None" for k in self.keys)

    @property
    def loaded(self) -> bool:
        """Whether the code could be defined at all (not a load error on every call)."""
        return not self.keys or not all(k.startswith("!load:") for k in self.keys)

    @property
    def hostile(self) -> str | None:
        """What the code tried that no code edit needs (seen by the sandbox), or None."""
        for key in self.keys:
            if key.startswith(HOSTILE_KEY):
                return key[len(HOSTILE_KEY) :] or "tried something no code edit needs"
        return None

    @property
    def crashed(self) -> float:
        """Share of calls that raised or were stopped."""
        return sum(k.startswith("!") for k in self.keys) / len(self.keys) if self.keys else 0.0

    def agreement(self, other: Behaviour) -> float:
        """Share of inputs on which both did the same thing (errors of any kind count as different)."""
        if not self.keys:
            return 0.0
        same = sum(1 for a, b in zip(self.keys, other.keys, strict=False) if a == b and not a.startswith("!"))
        return same / len(self.keys)


def stopped(key: str) -> bool:
    """An outcome that is no observation of the function (it could not load, or the sandbox stopped it)."""
    return key.startswith(_NO_VERDICT_PREFIXES)


class Executor(Protocol):
    """Runs code on a probe and reports what it did (``ensemble.verify.observe.SandboxExecutor``)."""

    async def observe(self, code: str, probe: Probe) -> Behaviour: ...

    @property
    def notes(self) -> list[str]:
        """What the user should know about how candidates were run (e.g. a weaker sandbox)."""
        ...
