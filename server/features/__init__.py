"""The editor features, one module each, and what the server answers: :func:`register_all` declares every LSP
method and command (:class:`~codeconductor.server.protocol.Command`) on a server. A feature imports only
:mod:`._common` and the server layer (``server/*.py``), never another feature.

The features that need the engine (code actions, hover, following edits, the commands) are imported on their first
request, not at start: answering ``initialize`` then imports nothing of the engine or of pydantic, and the server
answers it about as fast as a pygls server that does nothing (docs/benchmarks.md). A lazy handler keeps the kind of
the function it stands for (synchronous or a coroutine), so messages are handled in the same order as before.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from lsprotocol import types as lsp

from ..protocol import Command
from ..server import CodeConductorServer
from . import configuration, lifecycle, progress

__all__ = ["COMMAND_HANDLERS", "handler_of", "register_all"]

# Each command's handler, as "module:function" of this package.
COMMAND_HANDLERS: dict[Command, str] = {
    Command.RUN: "commands:run_code",
    Command.REVIEW: "commands:review",
    Command.ASK: "commands:ask",
    Command.APPLY_SUGGESTION: "commands:apply_suggestion",
    Command.LIST_MODELS: "commands:list_models",
    Command.REFRESH_MODELS: "commands:refresh_models",
    Command.CANCEL: "commands:cancel",
    Command.STATUS: "commands:status",
    Command.REJECT: "commands:reject_suggestion",
    Command.PREVIEW: "commands:preview_suggestion",
    Command.HISTORY_REPORT: "commands:history_report",
    Command.FIX_WITH_TESTS: "fix_with_tests:fix_command",
    Command.GENERATE_TESTS: "fix_with_tests:generate_command",
}


def handler_of(target: str) -> Callable[..., Any]:
    """The function ``module:function`` of this package (its module imported now, if it was not yet)."""
    module, _, name = target.partition(":")
    handler: Callable[..., Any] = getattr(importlib.import_module(f".{module}", __name__), name)
    return handler


def _lazy(target: str) -> Callable[..., Any]:
    """A synchronous handler for ``target``, imported when first called (didChange must stay synchronous: it is
    handled before the next message, as the user typed)."""

    def handler(ls: CodeConductorServer, *args: Any) -> Any:
        return handler_of(target)(ls, *args)

    return handler


def _lazy_command(target: str) -> Callable[..., Any]:
    """A command's handler, imported when first called (a command is a request answered when done: a coroutine)."""

    async def handler(ls: CodeConductorServer, *args: Any) -> Any:
        reply = handler_of(target)(ls, *args)
        return await reply if inspect.isawaitable(reply) else reply

    return handler


def register_all(ls: CodeConductorServer) -> None:
    for module in (configuration, progress, lifecycle):
        module.register(ls)
    ls.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)(_lazy("tracking:did_change"))
    ls.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)(_lazy("tracking:did_close"))
    ls.feature(
        lsp.TEXT_DOCUMENT_CODE_ACTION,
        lsp.CodeActionOptions(
            code_action_kinds=[
                lsp.CodeActionKind.QuickFix,
                lsp.CodeActionKind.RefactorRewrite,
                lsp.CodeActionKind.Refactor,
            ],
            resolve_provider=False,
        ),
    )(_lazy("code_actions:code_actions"))
    ls.feature(lsp.TEXT_DOCUMENT_HOVER)(_lazy("hover:hover"))
    for command, target in COMMAND_HANDLERS.items():
        ls.command(command.value)(_lazy_command(target))
