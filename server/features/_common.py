"""What the editor features share, so that none reaches into another: the target a code action hands to its
command, the command arguments' models, the labels the user reads, the function at a line, and the one way a long
command runs (progress, cancellation, the reply when it stops).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypedDict, TypeVar

from lsprotocol import types as lsp
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from pygls.exceptions import JsonRpcInvalidParams
from pygls.workspace import TextDocument

from codeconductor.ensemble import CodeConductorError, FunctionAt, ProgressEvent, Result, function_at

from ..edits import language_of
from ..protocol import LspRange, RunResponse, RunStatus, Status, StoppedStatus, lsp_range
from ..server import CodeConductorServer, RunCancelled

__all__ = [
    "Args",
    "PositionArgs",
    "Progress",
    "RangeArgs",
    "Stopped",
    "Target",
    "alternative_title",
    "consensus_label",
    "function_at_line",
    "parse",
    "run_reply",
    "target_argument",
    "tracked_run",
]

logger = logging.getLogger(__name__)

_A = TypeVar("_A", bound="Args")
_O = TypeVar("_O")


# ---- command arguments ---------------------------------------------------------------------------------------


class Args(BaseModel):
    # strict: a client sending "3" for a line gets InvalidParams instead of a silent guess.
    model_config = ConfigDict(strict=True, alias_generator=to_camel, populate_by_name=True, extra="ignore")


class PositionArgs(Args):
    # LSP positions are uintegers: a larger number is InvalidParams here, not an internal error later.
    line: int = Field(ge=0, le=2**31 - 1)
    character: int = Field(ge=0, le=2**31 - 1)


class RangeArgs(Args):
    start: PositionArgs
    end: PositionArgs

    def to_lsp(self) -> lsp.Range:
        return lsp.Range(
            lsp.Position(self.start.line, self.start.character), lsp.Position(self.end.line, self.end.character)
        )


def parse(args: tuple[Any, ...], model: type[_A]) -> _A:
    """The one argument object of a command, validated; InvalidParams naming the bad fields otherwise."""
    if len(args) > 1:
        raise JsonRpcInvalidParams(f"expected one argument object, got {len(args)} arguments")
    raw = args[0] if args else {}
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise JsonRpcInvalidParams(f"expected an argument object, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        fields = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise JsonRpcInvalidParams(f"invalid arguments: {fields}") from exc


# ---- targets and labels --------------------------------------------------------------------------------------


class Target(TypedDict):
    """The argument a code action hands to its command: the document and whole lines."""

    uri: str
    range: LspRange


def target_argument(doc: TextDocument, start: int, end: int) -> Target:
    """The ``{uri, range}`` a code action hands to its command: whole lines ``[start, end)``."""
    return {"uri": doc.uri, "range": lsp_range(start, 0, end, 0)}


def function_at_line(ls: CodeConductorServer, doc: TextDocument, line: int) -> FunctionAt:
    """The function at ``line`` (``Class.method`` inside a class); InvalidParams when no function encloses it."""
    found = function_at(ls.blocks(doc, language_of(doc), line), line, language_of(doc))
    if found is None:
        raise JsonRpcInvalidParams("put the cursor in a function (no function encloses that line)")
    return found


def consensus_label(result: Result) -> str:
    c = result.consensus
    checked = ", not checked" if c.unchecked else ""
    return f"Apply consensus ({c.agree}/{c.asked} models, confidence {c.confidence:.2f}{checked})"


def alternative_title(result: Result, index: int) -> str:
    cluster = result.consensus.clusters[index]
    name = cluster.members[0].split("@", 1)[0] if cluster.members else f"cluster {index}"
    others = len(cluster.members) - 1
    more = f" (+{others} model{'s' if others != 1 else ''})" if others > 0 else ""
    # An unchecked run checked none of its answers: the alternatives say so like the pick.
    checked = " (not checked)" if result.consensus.unchecked else ""
    return f"Apply {name}'s alternative{more}{checked}"


# ---- long commands -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Progress:
    """A run's ``$/progress`` (nothing is sent when the client cannot show progress: ``token`` None)."""

    ls: CodeConductorServer
    token: str | None

    def report(self, message: str, percentage: int | None = None) -> None:
        if self.token is not None:
            self.ls.work_done_progress.report(
                self.token, lsp.WorkDoneProgressReport(message=message, percentage=percentage, cancellable=True)
            )

    def models_answered(self, event: ProgressEvent) -> None:
        """A model's answer (or its failure) as "k/n models answered"; the steps before it are not shown."""
        if event.status not in ("queued", "loading", "started"):
            percentage = int(100 * event.done / event.total) if event.total else None
            self.report(f"{event.done}/{event.total} models answered", percentage)


@dataclass(frozen=True, slots=True)
class Stopped:
    """A run that gave no result: the user cancelled it, or the engine failed (``message`` says why)."""

    status: StoppedStatus
    message: str


def run_reply(run_id: str, status: RunStatus, message: str) -> RunResponse:
    """A command's reply about run ``run_id``, nothing applied (yet)."""
    return {"runId": run_id, "status": status, "applied": False, "message": message}


async def tracked_run(
    ls: CodeConductorServer,
    run_id: str,
    title: str,
    work: Callable[[Progress], Coroutine[Any, Any, _O]],
    *,
    summary: Callable[[_O], str],
) -> _O | Stopped:
    """Run ``work`` (given the run's progress) as the cancellable run ``run_id``
    (:meth:`~codeconductor.server.server.CodeConductorServer.track_run`) under a progress titled ``title``, ended with the
    outcome's ``summary`` (or why it stopped). On cancellation or an engine error: :class:`Stopped` instead."""
    token = await ls.create_progress(title)
    end_message = "cancelled"
    try:
        outcome = await ls.track_run(run_id, work(Progress(ls, token)), token=token)
        end_message = summary(outcome)
        return outcome
    except RunCancelled:
        return Stopped(Status.CANCELLED, "cancelled")
    except CodeConductorError as exc:
        logger.warning("run %s failed: %s", run_id, exc)
        end_message = str(exc)
        ls.show(f"CodeConductor: {exc}", 1)
        return Stopped(Status.FAILED, str(exc))
    finally:
        if token is not None:
            ls.work_done_progress.end(token, lsp.WorkDoneProgressEnd(message=end_message))
            # pygls keeps every token it ever saw (one future per run): forget finished ones.
            ls.work_done_progress.tokens.pop(token, None)
