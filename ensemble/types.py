"""The data that flows through CodeConductor, as pydantic models serialisable to JSON.

The CLI, the language server and the VS Code extension all speak these shapes (``docs/protocol.md``).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from .settings import Settings

__all__ = [
    "AnswerStatus",
    "ChatMessage",
    "Cluster",
    "CodeContext",
    "ConsensusResult",
    "Finding",
    "GenerationParams",
    "GenerationResult",
    "ModelAnswer",
    "ModelInfo",
    "ProgressEvent",
    "ProjectInfo",
    "ProviderKind",
    "Request",
    "Result",
    "TaskKind",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class ProviderKind(enum.StrEnum):
    OLLAMA = "ollama"
    OPENAI = "openai"  # any OpenAI-compatible server: LM Studio, llama.cpp, vLLM, LocalAI, Jan, remote
    EMBEDDED = "embedded"


class TaskKind(enum.StrEnum):
    FIX = "fix"
    IMPROVE = "improve"
    IMPLEMENT = "implement"
    DOCSTRING = "docstring"
    REVIEW = "review"
    ASK = "ask"
    TESTS = "tests"  # generate tests

    @property
    def produces_code(self) -> bool:
        return self not in (TaskKind.REVIEW, TaskKind.ASK)


class ModelInfo(_Model):
    """One model that can generate text, on one endpoint."""

    name: str  # the server's own name for it, e.g. "llama3.1:8b"
    provider: ProviderKind
    endpoint: str  # base URL, e.g. "http://127.0.0.1:11434"; "embedded://" for in-process models
    family: str | None = None
    parameter_size: str | None = None
    quantization: str | None = None
    size_bytes: int | None = None
    context_length: int | None = None
    loaded: bool | None = None  # None: the server does not say
    chat: bool = True  # False: completion mode only (base models)
    digest: str | None = None  # the weights' digest when the server reports it (Ollama)
    server: str | None = None  # what serves it when detected: "litellm", "vllm", "llama.cpp", "ollama"
    deployments: int | None = None  # replicas behind a gateway (LiteLLM model group), when it says
    # The same model on several endpoints (see codeconductor.ensemble.replicas): every replica, this one first. Empty: only this.
    replicas: list[ModelInfo] = Field(default_factory=list)

    @property
    def id(self) -> str:
        """Unique key across endpoints: ``name@endpoint``."""
        return f"{self.name}@{self.endpoint}"


class ChatMessage(_Model):
    role: Literal["system", "user", "assistant"]
    content: str


class GenerationParams(_Model):
    temperature: float = 0.2
    max_tokens: int = 512
    seed: int | None = None
    stop: list[str] = Field(default_factory=list)
    keep_alive: str | None = None  # Ollama only

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """What a run asks of every model by default: the settings' temperature, token limit and keep-alive."""
        return cls(temperature=settings.temperature, max_tokens=settings.max_tokens, keep_alive=settings.keep_alive)


class GenerationResult(_Model):
    """What one provider call produced (before any consensus)."""

    text: str
    tokens_in: int | None = None
    tokens_out: int | None = None
    load_s: float | None = None  # time the server spent loading the model, when it reports it
    first_token_s: float | None = None
    served_by: str | None = None  # the deployment a gateway routed the call to, when it says (LiteLLM)


class ProjectInfo(_Model):
    """The project the code lives in (``codeconductor.ensemble.project``): what the sandbox needs to run it there."""

    root: str  # absolute; shown read-only in the sandbox
    path: str  # the module's file, absolute
    module: str  # the dotted name it is imported by (``pkg.sub.mod``); Go: the package's import path
    import_root: str  # the folder that must be on sys.path for that name (the root, or ``src``); Go: the package's
    language: str = "python"  # the language layer's name: ``python`` or ``go`` (run with ``go test``)
    # The module's full current text (the editor's buffer, unsaved changes included); not serialised: results
    # and the history hold the request without a copy of the whole file.
    module_text: str = Field(default="", exclude=True, repr=False)
    python: str = ""  # the project's interpreter, absolute ("" for Go: the server's toolchain runs it)
    python_source: str = "server"  # where it came from: editor, setting, .venv, venv, VIRTUAL_ENV, server


class CodeContext(_Model):
    """The code a request is about, and what an expert would look at around it."""

    path: str | None = None
    language: str = "python"
    selection: str = ""
    start_line: int = 0  # 0-based, inclusive
    end_line: int = 0  # 0-based, exclusive
    before: str = ""  # text just above the selection, within the prompt budget
    after: str = ""
    enclosing: str | None = None  # enclosing function/class signature lines
    imports: str = ""
    project: ProjectInfo | None = None  # set when the file belongs to a project its code can be run in


class Request(_Model):
    task: TaskKind
    context: CodeContext
    instruction: str = ""
    samples_per_model: int = Field(default=1, ge=1, le=20)


class AnswerStatus(enum.StrEnum):
    ANSWERED = "answered"
    TIMEOUT = "timeout"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"  # not asked: deadline too tight, excluded, history says unreliable


class ModelAnswer(_Model):
    """The honest record of one model's part in a run."""

    model: ModelInfo
    sample: int = 0
    status: AnswerStatus
    text: str = ""
    error: str | None = None  # human-readable reason when not answered
    reason: str | None = None  # machine reason: timeout, http_500, protocol, ...
    latency_s: float | None = None  # from dispatch to last token
    queue_s: float | None = None  # time spent waiting for the endpoint's concurrency slot
    load_s: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    replica: str | None = None  # the endpoint that answered (for a gateway: the deployment behind it, if known)
    tried: list[str] = Field(default_factory=list)  # replicas that failed before this one: "endpoint: reason"

    @property
    def model_id(self) -> str:
        return self.model.id


class ProgressEvent(_Model):
    """One step of a run, reported to progress callbacks (CLI progress lines, LSP ``$/progress``)."""

    model_id: str
    sample: int = 0
    status: Literal["queued", "loading", "started", "answered", "timeout", "failed", "cancelled", "skipped"]
    done: int  # answers finished (any final status) so far
    total: int  # answers expected
    detail: str | None = None  # e.g. the error reason, or tokens so far


class Finding(_Model):
    """One review finding, after matching across models."""

    line: int  # 0-based, in the document
    end_line: int | None = None
    severity: Literal["error", "warning", "info", "hint"] = "warning"
    message: str
    fix: str | None = None  # replacement code for the lines, when a model gave one
    models: list[str] = Field(default_factory=list)  # model ids that reported it
    support: int = 0
    confidence: float = 0.0


class Cluster(_Model):
    """Candidates that agree (same behaviour, same normalised code, or similar text)."""

    members: list[str]  # model ids (with ``#sample`` suffix when several samples)
    representative: str  # the code or text standing for the cluster
    support: float  # reliability-weighted support
    passes_examples: bool | None = None  # passes every example of the user's docstring; None: none, or not run
    diff: str = ""  # unified diff from the pick to this representative ("" for the pick's own cluster)
    rejected: str | None = None  # why this answer may not become an edit (fails the trust gate); None: eligible


class ConsensusResult(_Model):
    kind: Literal["code", "findings", "text", "none"]
    pick: str = ""  # the chosen code (or text); "" when nothing usable came back
    pick_models: list[str] = Field(default_factory=list)
    confidence: float = 0.0
    agree: int = 0  # how many answering models are in the pick's cluster
    answered: int = 0  # how many models answered at all
    asked: int = 0  # how many models were asked
    clusters: list[Cluster] = Field(default_factory=list)  # pick's cluster first
    findings: list[Finding] = Field(default_factory=list)
    method: str = ""  # how the pick was made, for the curious
    notes: list[str] = Field(default_factory=list)
    no_edit: str | None = None  # code tasks: why no edit is offered (your code stays as it is); pick is then ""
    executed: bool = False  # whether candidates were run (verified by behaviour) before this decision
    # Code edits: why the pick was NOT checked against the user's code (nothing ran, or the user's code could not
    # be observed); every front end shows it as "not checked". None: it was checked, or nothing is offered.
    unchecked: str | None = None

    @property
    def offers_edit(self) -> bool:
        """Whether this decision proposes an edit of the user's code (the one rule every front end uses)."""
        return self.kind == "code" and bool(self.pick.strip()) and self.no_edit is None

    @property
    def may_apply_unseen(self) -> bool:
        """Whether this edit may ever be applied without the user seeing it first (``apply: auto``): only a
        checked one. An unchecked pick is a guess, however many models wrote it."""
        return self.offers_edit and self.unchecked is None


class Result(_Model):
    """One ensemble run, end to end."""

    id: str
    request: Request
    answers: list[ModelAnswer]
    consensus: ConsensusResult
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    wall_s: float = 0.0
    notes: list[str] = Field(default_factory=list)

    @property
    def summary(self) -> str:
        c = self.consensus
        checked = ", not checked" if c.unchecked else ""
        return f"{c.agree}/{c.asked} models agree, confidence {c.confidence:.2f}{checked}"
