"""Cancelling a run stops every model call at once: from the progress notification
(``window/workDoneProgress/cancel``), from ``$/cancelRequest`` on the command, and with ``codeconductor.cancel``.
A hanging model makes the run last until cancelled; the fault server records the abandoned connection."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcRequestCancelled
from pytest_lsp import LanguageClient

from tests.support.fault_server import FaultServer
from tests.support.lsp_client import BUGGY, command, editor_of, settings_for, span, started_token

URI = "file:///tmp/codeconductor-lsp-tests/cancel.py"
RUN = {"uri": URI, "range": span(3, 5), "task": "fix"}


@pytest.fixture
def lsp_settings(lsp_models: FaultServer) -> dict[str, Any]:
    return settings_for(lsp_models.url, ["ok-lsp-a", "hang-lsp"], timeoutS=120, deadlineS=240)


async def _hang_asked(lsp_models: FaultServer, client: LanguageClient) -> None:
    """Wait until the hanging model has really been asked (the run is in flight, not just begun)."""

    def asked() -> bool:
        return any(isinstance(r.body, dict) and r.body.get("model") == "hang-lsp" for r in lsp_models.requests)

    await editor_of(client).wait_for(asked, timeout=20)


async def _hang_abandoned(lsp_models: FaultServer, client: LanguageClient) -> None:
    await editor_of(client).wait_for(lambda: "hang-lsp" in lsp_models.disconnects, timeout=10)


async def test_cancel_from_progress(client: LanguageClient, lsp_models: FaultServer) -> None:
    editor = editor_of(client)
    editor.open(URI, BUGGY)
    lsp_models.clear_log()
    run = asyncio.ensure_future(command(client, "codeconductor.run", RUN))
    token = await started_token(client, editor)
    await _hang_asked(lsp_models, client)
    client.window_work_done_progress_cancel(lsp.WorkDoneProgressCancelParams(token=token))
    reply = await asyncio.wait_for(run, 10)
    assert reply["status"] == "cancelled"
    assert editor.applied == []
    await _hang_abandoned(lsp_models, client)
    end = client.progress_reports[token][-1]
    assert isinstance(end, lsp.WorkDoneProgressEnd)
    assert end.message == "cancelled"


async def test_cancel_request(client: LanguageClient, lsp_models: FaultServer) -> None:
    editor = editor_of(client)
    editor.open(URI, BUGGY)
    lsp_models.clear_log()
    future = asyncio.ensure_future(
        client.protocol.send_request_async(
            lsp.WORKSPACE_EXECUTE_COMMAND,
            lsp.ExecuteCommandParams(command="codeconductor.run", arguments=[RUN]),
            msg_id="run-to-cancel",
        )
    )
    await started_token(client, editor)
    await _hang_asked(lsp_models, client)
    client.protocol.notify(lsp.CANCEL_REQUEST, lsp.CancelParams(id="run-to-cancel"))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(future, 10)
    await _hang_abandoned(lsp_models, client)
    status = await command(client, "codeconductor.status")
    assert status["running"] == 0


async def test_cancel_command(client: LanguageClient, lsp_models: FaultServer) -> None:
    editor = editor_of(client)
    editor.open(URI, BUGGY)
    lsp_models.clear_log()
    run = asyncio.ensure_future(command(client, "codeconductor.run", RUN))
    await started_token(client, editor)
    await _hang_asked(lsp_models, client)
    status = await command(client, "codeconductor.status")
    assert status["running"] == 1
    (run_id,) = status["runs"]
    assert await command(client, "codeconductor.cancel", {"runId": run_id}) == {"cancelled": [run_id]}
    reply = await asyncio.wait_for(run, 10)
    assert reply["status"] == "cancelled"
    await _hang_abandoned(lsp_models, client)
    # The status bar heard about the run starting and ending.
    await editor.wait_for(lambda: bool(editor.status) and editor.status[-1]["running"] == 0)
    assert any(s["running"] == 1 for s in editor.status)
