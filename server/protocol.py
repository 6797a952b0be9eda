"""The server's side of the wire, declared once: the commands a client calls (``workspace/executeCommand``), the
statuses their replies carry, and the replies' shapes, with their camelCase keys exactly as they go out.

Every ``server/`` module names a command or a status through this module, and
``scripts/gen_vscode_protocol.py`` writes the VS Code extension's ``src/protocol.ts`` (command ids, status unions,
reply interfaces) from it, so the extension cannot drift from the server (``--check`` and
``tests/unit/test_vscode_protocol_sync.py`` fail when the generated file is stale). ``docs/protocol.md`` says what
each field means.

Replies are ``TypedDict``s: a reply *is* the JSON object pygls sends (keys present only where the command sets
them, as before), typed for mypy, at no import cost when the server starts. Objects the engine's pydantic models
dump (``Result``, ``Finding``, ...) keep their snake_case keys; they are :class:`EngineJSON` here and their
TypeScript shapes are hand-written in the extension's ``src/engine.ts``.

Importing this module must stay cheap (the server imports it before its first reply): standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal, TypedDict

__all__ = [
    "STATUS_NOTIFICATION",
    "CancelResponse",
    "Command",
    "EditStatus",
    "EngineJSON",
    "FixStatus",
    "FixWithTestsResponse",
    "GenerateStatus",
    "GenerateTestsResponse",
    "HistoryReportResponse",
    "LspPosition",
    "LspRange",
    "ModelsResponse",
    "OfferStatus",
    "PreviewWhere",
    "RunResponse",
    "RunStatus",
    "Status",
    "StatusNotification",
    "StatusResponse",
    "StoppedStatus",
    "lsp_range",
]

STATUS_NOTIFICATION = "codeconductor/status"


class Command(StrEnum):
    """The server's commands (``workspace/executeCommand``); the extension's palette commands use other ids."""

    RUN = "codeconductor.run"
    REVIEW = "codeconductor.review"
    ASK = "codeconductor.ask"
    APPLY_SUGGESTION = "codeconductor.applySuggestion"
    LIST_MODELS = "codeconductor.listModels"
    REFRESH_MODELS = "codeconductor.refreshModels"
    CANCEL = "codeconductor.cancel"
    STATUS = "codeconductor.status"
    REJECT = "codeconductor.reject"
    PREVIEW = "codeconductor.preview"
    HISTORY_REPORT = "codeconductor.historyReport"
    FIX_WITH_TESTS = "codeconductor.fixWithTests"
    GENERATE_TESTS = "codeconductor.generateTests"


class Status(StrEnum):
    """Every ``status`` a command's reply can carry; each reply type says which ones it uses."""

    APPLIED = "applied"  # the editor applied the edit
    PREVIEW = "preview"  # shown to the user, waiting for accept or reject (``preview`` says where)
    PROPOSED = "proposed"  # not applied (``apply: false`` or setting ``apply: never``): offered as a code action
    REJECTED = "rejected"  # the user or the editor said no; nothing changed
    STALE = "stale"  # the document changed since the request; nothing changed
    GONE = "gone"  # the stored result was edited away (or never existed)
    REFUSED = "refused"  # the answer failed the trust gate: shown, never applied
    NO_CONSENSUS = "noConsensus"  # no usable answer
    NO_EDIT = "noEdit"  # an honest "no answer is good enough": nothing offered
    REVIEWED = "reviewed"
    ANSWERED = "answered"
    CANCELLED = "cancelled"
    FAILED = "failed"  # the engine failed (or, for fixWithTests, no candidate passed)
    NO_TESTS = "noTests"
    PASSED = "passed"
    ALREADY_PASSING = "already_passing"
    GENERATED = "generated"


# What applying an edit through ``workspace/applyEdit`` ends in (server/edits.py).
EditStatus = Literal[Status.APPLIED, Status.REJECTED, Status.STALE]
# What offering an edit ends in (server/preview.py).
OfferStatus = Literal[Status.APPLIED, Status.REJECTED, Status.STALE, Status.PREVIEW, Status.PROPOSED]
# A run that gave no result.
StoppedStatus = Literal[Status.CANCELLED, Status.FAILED]
RunStatus = Literal[
    Status.APPLIED,
    Status.REJECTED,
    Status.STALE,
    Status.PREVIEW,
    Status.PROPOSED,
    Status.CANCELLED,
    Status.FAILED,
    Status.GONE,
    Status.REFUSED,
    Status.NO_CONSENSUS,
    Status.NO_EDIT,
    Status.REVIEWED,
    Status.ANSWERED,
]
FixStatus = Literal[
    Status.PASSED,
    Status.ALREADY_PASSING,
    Status.FAILED,
    Status.NO_TESTS,
    Status.STALE,
    Status.PROPOSED,
    Status.PREVIEW,
    Status.REJECTED,
    Status.CANCELLED,
]
GenerateStatus = Literal[Status.GENERATED, Status.NO_TESTS, Status.FAILED, Status.CANCELLED]
# Where a preview is shown (server/preview.py): the client's diff, a change annotation, or code actions.
PreviewWhere = Literal["client", "annotation", "codeAction"]


@dataclass(frozen=True, slots=True)
class EngineJSON:
    """Marks a field holding the JSON of one of the engine's pydantic models (``model_dump(mode="json")``,
    snake_case keys); ``ts`` names its TypeScript interface in the extension's ``src/engine.ts``."""

    ts: str


ResultJSON = Annotated[dict[str, Any], EngineJSON("Result")]
FindingJSON = Annotated[dict[str, Any], EngineJSON("Finding")]
ModelInfoJSON = Annotated[dict[str, Any], EngineJSON("ModelInfo")]
EndpointJSON = Annotated[dict[str, Any], EngineJSON("EndpointInfo")]
FixOutcomeJSON = Annotated[dict[str, Any], EngineJSON("FixOutcome")]
TestGenOutcomeJSON = Annotated[dict[str, Any], EngineJSON("TestGenOutcome")]


class LspPosition(TypedDict):
    line: int
    character: int


class LspRange(TypedDict):
    start: LspPosition
    end: LspPosition


def lsp_range(start_line: int, start_character: int, end_line: int, end_character: int) -> LspRange:
    return {
        "start": {"line": start_line, "character": start_character},
        "end": {"line": end_line, "character": end_character},
    }


class RunResponse(TypedDict, total=False):
    """What codeconductor.run / review / ask / applySuggestion / preview / reject return (ask adds ``answer``,
    review ``findings``; an edit offered adds where and what: ``uri``, ``range``, ``newText``, ``oldText``)."""

    runId: str
    status: RunStatus
    applied: bool
    message: str
    label: str
    confidence: float
    agree: int
    answered: int
    asked: int
    alternatives: int
    # Why the offered edit was not checked against the user's code (the consensus' ``unchecked``), when it was not.
    unchecked: str | None
    result: ResultJSON
    # Why no edit is offered (the consensus' ``no_edit``), when none is.
    noEdit: str
    uri: str
    cluster: int
    version: int | None
    range: LspRange
    newText: str
    oldText: str
    preview: PreviewWhere
    answer: str
    findings: list[FindingJSON]


class FixWithTestsResponse(TypedDict, total=False):
    """What codeconductor.fixWithTests returns (with the preview's fields when the passing edit is previewed)."""

    runId: str
    status: FixStatus
    applied: bool
    message: str
    tests: list[str]
    outcome: FixOutcomeJSON
    newText: str
    uri: str
    version: int | None
    range: LspRange
    oldText: str
    preview: PreviewWhere


class GenerateTestsResponse(TypedDict, total=False):
    """What codeconductor.generateTests returns."""

    runId: str
    status: GenerateStatus
    applied: bool
    message: str
    uri: str
    content: str
    outcome: TestGenOutcomeJSON


class ModelsResponse(TypedDict):
    """What codeconductor.listModels / refreshModels return: the models, and what discovery found at each server."""

    models: list[ModelInfoJSON]
    endpoints: list[EndpointJSON]


class CancelResponse(TypedDict):
    """What codeconductor.cancel returns: the runs it cancelled."""

    cancelled: list[str]


class StatusResponse(TypedDict):
    """What codeconductor.status returns."""

    models: int
    running: int
    runs: list[str]


class HistoryReportResponse(TypedDict):
    """What codeconductor.historyReport returns (``html`` empty, with the reason in ``message``, when it is off)."""

    html: str
    message: str


class StatusNotification(TypedDict):
    """The ``codeconductor/status`` notification, for status bars."""

    models: int
    running: int


# The reply types the extension gets as TypeScript interfaces, in this order.
RESPONSES: tuple[type, ...] = (
    RunResponse,
    FixWithTestsResponse,
    GenerateTestsResponse,
    ModelsResponse,
    CancelResponse,
    StatusResponse,
    HistoryReportResponse,
    StatusNotification,
)
