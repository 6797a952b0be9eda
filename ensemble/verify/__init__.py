"""Verification by execution: a warm, contained sandbox for candidate code (and for the user's tests), and the
executor that observes candidates on a probe for the consensus."""

from __future__ import annotations

from .sandbox import CallOutcome, CallSpec, Sandbox, ScriptOutcome, shared_sandbox

__all__ = ["CallOutcome", "CallSpec", "Sandbox", "ScriptOutcome", "shared_sandbox"]
