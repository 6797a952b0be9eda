"""What each candidate DOES, as data: the probe (the inputs every candidate and the user's own code are run on)
and the observed :class:`Behaviour` (one outcome key per input, which docstring examples it satisfies).

Candidates are grouped by behaviour rather than by text, so two differently written correct solutions agree and
two broken ones that merely look alike do not; the user's original code, observed on the same probe, is the
oracle that behaviour-preserving edits must reproduce (``gate.py``). The probe's inputs come from the language
layer (``codeconductor.ensemble.languages``); observing is someone else's job: an :class:`Executor` (the sandbox's, owned by
the ``Pipeline``) is passed in. Nothing here starts a process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ..languages import Example

if TYPE_CHECKING:
    from ..types import Request

__all__ = ["HOSTILE_KEY", "Behaviour", "Executor", "Probe", "ProjectProbe"]


@dataclass(frozen=True)
class ProjectProbe:
    """The user's code where it lives: the module (its text, the name it is imported by), the target in it, the
    project's interpreter, the tests that exercise the target, and the calls recorded while they ran.

    ``recorded`` calls follow the probe's examples and generated calls in every :class:`Behaviour`'s keys; the
    recordings themselves stay with the executor (opaque bytes from one sandbox, for the next). ``problem``: why
    the user's code cannot run here, in words that say how to fix it (then nothing is run)."""

    root: str
    module: str
    target: str  # ``name`` or ``Class.method``
    python: str
    module_text: str
    start: int  # the target's lines [start, end) in module_text
    end: int
    path: str = ""  # the module's file (its ``__file__`` in the sandbox)
    import_root: str = ""  # the folder on sys.path for the module's name
    tests: tuple[str, ...] = ()
    plugins: tuple[str, ...] = ()  # pytest plugins the tests use (loaded when the interpreter has them)
    recorded: int = 0
    recording: str = ""  # the executor's key for the recorded calls
    problem: str | None = None
    notes: tuple[str, ...] = ()
    language: str = "python"  # ``go``: ``tests`` are the package's Test/Example functions, run by ``go test``


@dataclass(frozen=True)
class Probe:
    """The inputs every candidate is run on: examples (with expected values) first, then generated calls."""

    entry_point: str
    examples: tuple[Example, ...]
    extra: tuple[str, ...]
    language: str = "python"  # the language layer's name for the code (``codeconductor.ensemble.languages``)
    project: ProjectProbe | None = None  # run inside the user's project (recorded calls and tests too)

    @property
    def empty(self) -> bool:
        return (
            not self.examples
            and not self.extra
            and (self.project is None or (not self.project.recorded and not self.project.tests))
        )

    @property
    def generated(self) -> range:
        """Indices of the generated calls in a behaviour's keys (inputs nobody wrote: the original may reject them)."""
        return range(len(self.examples), len(self.examples) + len(self.extra))


# Outcome keys that say nothing about the function's behaviour: it never ran (could not be defined), or it was
# stopped by the sandbox. Neither may count as "behaves like the original".
_NO_VERDICT_PREFIXES = ("!load:", "!Timeout", "!Killed", "!Forged", "!Lost", "!Unreplayable", "!Hostile:")
# The sandbox saw the code try what no code edit needs (``codeconductor.ensemble.verify.sandbox.HOSTILE_ERROR``); the reason
# follows, e.g. "!Hostile:tried to open a network connection".
HOSTILE_KEY = "!Hostile:"


@dataclass(frozen=True)
class Behaviour:
    keys: tuple[str, ...]  # one per probe call: "=<value repr>" or "!<ErrorType>"
    passed: tuple[bool, ...]  # one per example
    tests: tuple[tuple[str, str], ...] = ()  # (pytest node id, outcome) for a project probe's tests, sorted

    @property
    def degenerate(self) -> bool:
        """Crashes or returns None everywhere: such candidates must not win by agreeing with each other."""
        if any(outcome == "passed" for _, outcome in self.tests):
            return False
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
    """Runs code on a probe and reports what it did (``codeconductor.ensemble.verify.observe.SandboxExecutor``)."""

    async def observe(self, code: str, probe: Probe) -> Behaviour: ...

    async def project_probe(self, request: Request, probe: Probe | None) -> Probe | None:
        """``probe`` extended to run inside the request's project (recorded calls, the project's tests), or None
        when the request has no project; a probe whose ``project.problem`` says why the code cannot run there."""
        ...

    @property
    def notes(self) -> list[str]:
        """What the user should know about how candidates were run (e.g. a weaker sandbox)."""
        ...
