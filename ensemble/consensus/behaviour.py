"""What each candidate DOES: run it in the sandbox on the docstring's examples and on generated inputs, and
record one outcome key per input (value or error type) plus which examples it satisfies. Candidates are then
grouped by behaviour rather than by text, so two differently written correct solutions agree, and two broken
ones that merely look alike do not.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from ..verify.examples import Example, extract_examples, parameters_of
from ..verify.inputs import generate_inputs
from ..verify.sandbox import CallSpec, Sandbox

__all__ = ["Behaviour", "Probe", "build_probe", "observe"]


@dataclass(frozen=True)
class Probe:
    """The inputs every candidate is run on: examples (with expected values) first, then generated calls."""

    entry_point: str
    examples: tuple[Example, ...]
    extra: tuple[str, ...]

    @property
    def calls(self) -> list[CallSpec]:
        return [CallSpec(e.call, e.expected) for e in self.examples] + [CallSpec(c) for c in self.extra]

    @property
    def empty(self) -> bool:
        return not self.examples and not self.extra


@dataclass(frozen=True)
class Behaviour:
    keys: tuple[str, ...]  # one per probe call: "=<value repr>" or "!<ErrorType>"
    passed: tuple[bool, ...]  # one per example

    @property
    def degenerate(self) -> bool:
        """Crashes or returns None everywhere: such candidates must not win by agreeing with each other."""
        return all(k.startswith("!") or k == "=None" for k in self.keys)

    def agreement(self, other: Behaviour) -> float:
        """Share of inputs on which both did the same thing (errors of any kind count as different)."""
        if not self.keys:
            return 0.0
        same = sum(1 for a, b in zip(self.keys, other.keys, strict=False) if a == b and not a.startswith("!"))
        return same / len(self.keys)


def build_probe(context: str, entry_point: str, *, extra_inputs: int = 8) -> Probe:
    examples = extract_examples(context, entry_point)
    extra = generate_inputs(entry_point, parameters_of(context, entry_point), examples, limit=extra_inputs)
    return Probe(entry_point, tuple(examples), tuple(extra))


_CACHE: OrderedDict[str, Behaviour] = OrderedDict()
_CACHE_SIZE = 50_000


def _cache_key(code: str, probe: Probe) -> str:
    digest = hashlib.sha256(code.encode())
    for call in probe.calls:
        digest.update(b"\0" + call.expr.encode() + b"\1" + (call.expected or "").encode())
    return digest.hexdigest()


async def observe(sandbox: Sandbox, code: str, probe: Probe, *, call_timeout_s: float = 0.5) -> Behaviour:
    """Run ``code`` on ``probe`` (cached per process: the same code on the same probe runs once)."""
    key = _cache_key(code, probe)
    cached = _CACHE.get(key)
    if cached is not None:
        _CACHE.move_to_end(key)
        return cached
    calls = probe.calls
    budget = min(3.0 + 0.1 * len(calls), call_timeout_s * len(calls) + 1.0)
    outcomes = await sandbox.arun_calls(code, probe.entry_point, calls, budget, call_timeout_s=call_timeout_s)
    behaviour = Behaviour(
        keys=tuple(o.key for o in outcomes),
        passed=tuple(bool(o.matches) for o in outcomes[: len(probe.examples)]),
    )
    _CACHE[key] = behaviour
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return behaviour
