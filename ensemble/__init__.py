"""CodeConductor's engine: an ensemble of local LLMs and a consensus among them. No LSP code lives here."""

from __future__ import annotations

from .discovery import EndpointStatus
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
from .pipeline import Pipeline
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
