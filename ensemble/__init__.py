"""CodeConductor's engine: an ensemble of local LLMs and a consensus among them. No LSP code lives here; the
language server imports the engine from here only."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._targets import FunctionAt, breaks_code, find_project_tests, find_tests, finding_lines, function_at
from .context import Block, build_context, enclosing_block, find_imports, is_stub, language_from_path, parse_blocks
from .edits import fit_code, replace_span, span_lines
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
    SandboxUnavailable,
    SettingsError,
)
from .languages import is_python, language_for
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
    "Block",
    "ChatMessage",
    "Cluster",
    "CodeConductorError",
    "CodeContext",
    "ConsensusResult",
    "EndpointSettings",
    "EndpointStatus",
    "Finding",
    "FixOutcome",
    "FixProgress",
    "FixTarget",
    "FunctionAt",
    "Generate",
    "GenerationParams",
    "GenerationResult",
    "History",
    "ModelAnswer",
    "ModelError",
    "ModelInfo",
    "NullHistory",
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
    "SandboxUnavailable",
    "Settings",
    "SettingsError",
    "TaskKind",
    "breaks_code",
    "build_context",
    "enclosing_block",
    "find_imports",
    "find_project_tests",
    "find_tests",
    "finding_lines",
    "fit_code",
    "fix_with_tests",
    "function_at",
    "generate_tests",
    "is_python",
    "is_stub",
    "language_for",
    "language_from_path",
    "load_settings",
    "open_history",
    "parse_blocks",
    "parse_settings",
    "render_report",
    "replace_span",
    "span_lines",
]

if TYPE_CHECKING:
    from .discovery import EndpointStatus
    from .fixloop import FixOutcome, FixProgress, FixTarget, Generate, fix_with_tests
    from .history import History, NullHistory, open_history, render_report
    from .pipeline import Pipeline
    from .testgen import generate_tests

# The pipeline pulls in httpx, the providers and the consensus (the fix loop and test generation too; the history
# and its report, sqlite): imported on first use so that a language server (or a CLI call that only reads
# settings) starts fast.
_LAZY = {
    "EndpointStatus": ".discovery",
    "Pipeline": ".pipeline",
    "FixOutcome": ".fixloop",
    "FixProgress": ".fixloop",
    "FixTarget": ".fixloop",
    "Generate": ".fixloop",
    "fix_with_tests": ".fixloop",
    "History": ".history",
    "NullHistory": ".history",
    "open_history": ".history",
    "render_report": ".history",
    "generate_tests": ".testgen",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
