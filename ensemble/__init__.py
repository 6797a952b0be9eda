"""CodeConductor's engine: an ensemble of local LLMs and a consensus among them. No LSP code lives here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    CodeConductorError,
    ModelError,
    ProviderClosed,
    ProviderError,
    ProviderHTTPError,
    ProviderProtocolError,
    ProviderTimeout,
    ProviderUnavailable,
    RequestError,
    SandboxError,
    SettingsError,
)
from .settings import EndpointSettings, Settings, load_settings, parse_settings
from .types import (
    AnswerStatus,
    ChatMessage,
    Cluster,
    CodeContext,
    ConsensusResult,
    Finding,
    GenerationParams,
    GenerationResult,
    ModelAnswer,
    ModelInfo,
    ProgressEvent,
    ProviderKind,
    Request,
    Result,
    TaskKind,
)

__all__ = [
    "AnswerStatus",
    "ChatMessage",
    "Cluster",
    "CodeConductorError",
    "CodeContext",
    "ConsensusResult",
    "EndpointSettings",
    "EndpointStatus",
    "Finding",
    "GenerationParams",
    "GenerationResult",
    "ModelAnswer",
    "ModelError",
    "ModelInfo",
    "Pipeline",
    "ProgressEvent",
    "ProviderClosed",
    "ProviderError",
    "ProviderHTTPError",
    "ProviderKind",
    "ProviderProtocolError",
    "ProviderTimeout",
    "ProviderUnavailable",
    "Request",
    "RequestError",
    "Result",
    "SandboxError",
    "Settings",
    "SettingsError",
    "TaskKind",
    "load_settings",
    "parse_settings",
]

if TYPE_CHECKING:
    from .discovery import EndpointStatus
    from .pipeline import Pipeline


def __getattr__(name: str) -> Any:
    # The pipeline pulls in httpx, the providers and the consensus: imported on first use so that a language
    # server (or a CLI call that only reads settings) starts fast.
    if name == "Pipeline":
        from .pipeline import Pipeline

        return Pipeline
    if name == "EndpointStatus":
        from .discovery import EndpointStatus

        return EndpointStatus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
