"""Diagnostics carrying the confidence: a review's findings with the models' severity and a quick fix, the run
diagnostic after a fix, and both kept true while the text changes (moved by edits above, dropped when their own
lines are edited, cleared on close)."""

from __future__ import annotations

from typing import Any

import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from tests.support.fault_server import FaultServer
from tests.support.lsp_client import BUGGY, command, editor_of, settings_for, span

URI = "file:///tmp/codeconductor-lsp-tests/diagnostics.py"


@pytest.fixture
def lsp_settings(lsp_models: FaultServer) -> dict[str, Any]:
    return settings_for(lsp_models.url, ["ok-lsp-review-a", "ok-lsp-review-b"])


def _ours(client: LanguageClient) -> list[lsp.Diagnostic]:
    return [d for d in client.diagnostics.get(URI, []) if d.source == "codeconductor"]


async def test_review_findings_become_diagnostics_with_quick_fix(client: LanguageClient) -> None:
    editor = editor_of(client)
    editor.open(URI, BUGGY)
    reply = await command(client, "codeconductor.review", {"uri": URI, "range": span(3, 5)})
    assert reply["status"] == "reviewed"
    (finding,) = reply["findings"]
    assert finding["line"] == 4  # line 2 of the selection, as a 0-based document line
    await editor.wait_for(lambda: bool(_ours(client)))
    (diag,) = _ours(client)
    assert diag.range.start.line == 4
    assert diag.severity == lsp.DiagnosticSeverity.Error  # both models say error, with confidence >= 0.5
    assert diag.message.startswith("subtracts instead of adding (2/2 models, confidence ")

    actions = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI),
            range=diag.range,
            context=lsp.CodeActionContext(diagnostics=[diag]),
        )
    )
    assert actions is not None
    quick = next(a for a in actions if isinstance(a, lsp.CodeAction) and a.title.startswith("Apply fix:"))
    assert list(quick.diagnostics or []) == [diag]
    assert quick.command is not None
    out = await command(client, quick.command.command, *(quick.command.arguments or []))
    assert out["status"] == "applied"
    assert editor.texts[URI] == BUGGY.replace("return a - b", "return a + b")
    # The fixed line's diagnostic is gone.
    await editor.wait_for(lambda: not _ours(client))


async def test_diagnostics_move_with_edits_above_and_drop_when_edited(client: LanguageClient) -> None:
    editor = editor_of(client)
    editor.open(URI, BUGGY)
    await command(client, "codeconductor.review", {"uri": URI, "range": span(3, 5)})
    await editor.wait_for(lambda: bool(_ours(client)))

    # Two lines inserted at the top: the finding moves down by two.
    editor.change(URI, lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0)), "# one\n# two\n")
    await editor.wait_for(lambda: bool(_ours(client)) and _ours(client)[0].range.start.line == 6)
    assert client.diagnostics[URI][0].message.startswith("subtracts")

    # An edit below it leaves it where it is.
    editor.change(URI, lsp.Range(lsp.Position(10, 0), lsp.Position(10, 0)), "# below\n")
    hover = await client.text_document_hover_async(
        lsp.HoverParams(text_document=lsp.TextDocumentIdentifier(uri=URI), position=lsp.Position(6, 4))
    )
    assert hover is not None
    assert _ours(client)[0].range.start.line == 6

    # Typing on its own line removes it: it would describe code that is not there any more.
    editor.change(URI, lsp.Range(lsp.Position(6, 11), lsp.Position(6, 16)), "a * b")
    await editor.wait_for(lambda: not _ours(client))


async def test_close_clears_diagnostics(client: LanguageClient) -> None:
    editor = editor_of(client)
    editor.open(URI, BUGGY)
    await command(client, "codeconductor.review", {"uri": URI})
    await editor.wait_for(lambda: bool(_ours(client)))
    client.text_document_did_close(lsp.DidCloseTextDocumentParams(text_document=lsp.TextDocumentIdentifier(uri=URI)))
    await editor.wait_for(lambda: not _ours(client))
