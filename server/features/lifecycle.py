"""The end of a session (``shutdown``): runs in flight are cancelled and the pipeline (models, sandbox, HTTP
client, history) is released before the client says ``exit``."""

from __future__ import annotations

import asyncio

from lsprotocol import types as lsp

from ..server import CodeConductorServer

__all__ = ["register"]

_SHUTDOWN_S = 5.0  # a client waits for the shutdown reply: release what can be released in this time


def register(ls: CodeConductorServer) -> None:
    @ls.feature(lsp.SHUTDOWN)
    async def on_shutdown(server: CodeConductorServer, params: None) -> None:
        await asyncio.wait_for(server.aclose(), _SHUTDOWN_S)
