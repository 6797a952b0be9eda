"""Cancelling a run from the editor's progress notification: ``window/workDoneProgress/cancel`` on a run's
token stops every model call of that run at once (the progress itself is reported by the server object)."""

from __future__ import annotations

from lsprotocol import types as lsp

from ..server import CodeConductorServer

__all__ = ["register"]


def register(ls: CodeConductorServer) -> None:
    @ls.feature(lsp.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def on_cancel(server: CodeConductorServer, params: lsp.WorkDoneProgressCancelParams) -> None:
        server.cancel_token(params.token)
