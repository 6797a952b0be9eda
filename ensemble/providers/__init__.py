"""Providers: one module per model-server API (and the in-process embedded runtime).

The embedded provider imports llama-cpp-python only when a model is loaded, so importing this package is cheap.
"""

from __future__ import annotations

from .base import OnToken, Provider, translate_transport_errors
from .embedded import EmbeddedProvider
from .ollama import OllamaProvider
from .openai_compat import OpenAICompatProvider

__all__ = [
    "EmbeddedProvider",
    "OllamaProvider",
    "OnToken",
    "OpenAICompatProvider",
    "Provider",
    "translate_transport_errors",
]
