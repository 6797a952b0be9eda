"""Providers: one module per model-server API (and the in-process embedded runtime)."""

from __future__ import annotations

from .base import OnToken, Provider, translate_transport_errors

__all__ = ["OnToken", "Provider", "translate_transport_errors"]
