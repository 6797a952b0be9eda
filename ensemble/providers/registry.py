"""The provider registry: what the engine knows of each kind of provider, declared once, in the provider's module.

A provider is one module under ``ensemble/providers/`` that declares a
:class:`~codeconductor.ensemble.providers.base.ProviderSpec` named ``SPEC`` (its
:class:`~codeconductor.ensemble.types.ProviderKind`, how to make one for an endpoint, how discovery recognises its
API, and its quirks) and is listed in :data:`PROVIDERS` here. Discovery, the dispatcher, the pipeline, the gateways'
load monitor and the prompt ask the spec (:func:`provider_spec`) instead of branching on the kind.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..prompts import build_messages
from ..types import ChatMessage, ModelInfo, ProviderKind, Request
from . import embedded, ollama, openai_compat
from .base import ProviderSpec

__all__ = ["PROVIDERS", "detectable_specs", "messages_for", "provider_spec"]

# Every provider, in discovery's probing order (Ollama first: it speaks the OpenAI API too). A new provider: its
# module, its kind in ProviderKind, and its SPEC here.
PROVIDERS: dict[ProviderKind, ProviderSpec] = {
    spec.kind: spec for spec in (ollama.SPEC, openai_compat.SPEC, embedded.SPEC)
}


def provider_spec(kind: ProviderKind) -> ProviderSpec:
    """The spec of providers of ``kind``."""
    return PROVIDERS[kind]


def detectable_specs() -> Sequence[ProviderSpec]:
    """The providers discovery probes servers for, in probing order."""
    return [spec for spec in PROVIDERS.values() if spec.probe is not None]


def messages_for(request: Request, model: ModelInfo) -> list[ChatMessage]:
    """The messages ``model`` is sent for ``request``: the prompt (:func:`codeconductor.ensemble.prompts.build_messages`)
    with its provider's quirk applied."""
    messages = build_messages(request, model)
    adjust = provider_spec(model.provider).adjust_messages
    return adjust(messages, request, model) if adjust is not None else messages
