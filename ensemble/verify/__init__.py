"""Verification by execution: a warm, contained sandbox for candidate code, the examples a docstring gives, and
generated inputs that tell candidates apart without labels."""

from __future__ import annotations

from .examples import Example, entry_point_of, extract_examples
from .inputs import generate_inputs
from .sandbox import CallOutcome, CallSpec, Sandbox, ScriptOutcome, shared_sandbox

__all__ = [
    "CallOutcome",
    "CallSpec",
    "Example",
    "Sandbox",
    "ScriptOutcome",
    "entry_point_of",
    "extract_examples",
    "generate_inputs",
    "shared_sandbox",
]
