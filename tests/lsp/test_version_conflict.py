"""The edit is applied only on the version the request was made on: a document edited before or during the run
gets a clear message and stays untouched."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from tests.support.fault_server import FaultServer
from tests.support.lsp_client import BUGGY, FIXED, command, editor_of, settings_for, span, started_token

URI = "file:///tmp/codeconductor-lsp-tests/conflict.py"


async def test_stale_version_before_the_run(client: LanguageClient) -> None:
    editor = editor_of(client)
    editor.open(URI, BUGGY)
    editor.change(URI, lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0)), "# edited\n")
    reply = await command(client, "codeconductor.run", {"uri": URI, "range": span(3, 5), "task": "fix", "version": 1})
    assert reply["status"] == "stale"
    assert editor.applied == []
    assert editor.texts[URI] == "# edited\n" + BUGGY
    assert any("changed" in m.message and m.type == lsp.MessageType.Warning for m in client.messages)


async def test_document_edited_while_the_models_answer(client: LanguageClient) -> None:
    editor = editor_of(client)
    editor.open(URI, BUGGY)
    run = asyncio.ensure_future(
        command(client, "codeconductor.run", {"uri": URI, "range": span(3, 5), "task": "fix", "version": 1})
    )
    await started_token(client, editor)
    editor.change(URI, lsp.Range(lsp.Position(8, 4), lsp.Position(8, 7)), "pass")
    reply = await run
    assert reply["status"] == "stale"
    assert reply["applied"] is False
    assert editor.applied == []
    assert FIXED not in editor.texts[URI]
    assert any("nothing was changed" in m.message for m in client.messages)
    # Nothing stored for stale results: no hover there.
    hover = await client.text_document_hover_async(
        lsp.HoverParams(text_document=lsp.TextDocumentIdentifier(uri=URI), position=lsp.Position(4, 4))
    )
    assert hover is None


@pytest.fixture
def lsp_settings(lsp_models: FaultServer) -> dict[str, object]:
    # A slow model (one chunk a second) leaves time to edit while the run is in flight.
    return settings_for(lsp_models.url, ["ok-lsp-a", "slow-lsp"])
