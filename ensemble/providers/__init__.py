"""Providers: one module per model-server API (and the in-process embedded runtime).

Each module declares what the engine needs to know of its kind (a
:class:`~codeconductor.ensemble.providers.base.ProviderSpec`); :mod:`.registry` lists them. The server providers share
their ``generate()`` (:mod:`._server`). The embedded provider imports llama-cpp-python only when a model is loaded,
so importing this package is cheap.
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
