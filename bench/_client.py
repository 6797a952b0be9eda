"""The LSP client the benchmarks drive servers with: answers applyEdit and progress creation, ignores the server's
notifications, and times start-up to the ``initialize`` reply."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

__all__ = ["start_client"]


async def start_client(
    cmd: list[str],
    options: dict[str, Any] | None,
    name: str = "bench",
    on_initialize_reply: Callable[[LanguageClient], None] | None = None,
) -> tuple[LanguageClient, float]:
    """Start ``cmd`` as a stdio language server, initialize it with ``options``; return the client and the seconds
    from spawn to the ``initialize`` reply. ``on_initialize_reply`` runs at the reply, before ``initialized``."""
    client = LanguageClient(name, "0")

    @client.feature(lsp.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: lsp.ApplyWorkspaceEditParams) -> lsp.ApplyWorkspaceEditResult:
        return lsp.ApplyWorkspaceEditResult(applied=True)

    @client.feature(lsp.WINDOW_WORK_DONE_PROGRESS_CREATE)
    def create_progress(params: lsp.WorkDoneProgressCreateParams) -> None:
        return None

    def ignore(params: Any) -> None:
        return None

    # The bench client has no use for the server's notifications; registering them keeps pygls from warning.
    for method in (
        lsp.PROGRESS,
        lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS,
        lsp.WINDOW_LOG_MESSAGE,
        lsp.WINDOW_SHOW_MESSAGE,
        "codeconductor/status",
    ):
        client.feature(method)(ignore)

    started = time.perf_counter()
    await client.start_io(*cmd)
    await client.initialize_async(
        lsp.InitializeParams(
            capabilities=lsp.ClientCapabilities(
                window=lsp.WindowClientCapabilities(work_done_progress=True),
                workspace=lsp.WorkspaceClientCapabilities(apply_edit=True),
            ),
            initialization_options=options,
        )
    )
    startup = time.perf_counter() - started
    if on_initialize_reply is not None:
        on_initialize_reply(client)
    client.initialized(lsp.InitializedParams())
    return client, startup
