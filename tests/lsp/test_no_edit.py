"""An honest "no edit": when every answer fails the trust gate (the user's own code is the oracle), the server
applies nothing, offers nothing to apply, and says why, in the response, a diagnostic and the hover, with each
refused answer still viewable."""

from __future__ import annotations

from typing import Any

import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from tests.support.fault_server import FaultServer
from tests.support.lsp_client import command, editor_of, fenced, settings_for, span

URI = "file:///tmp/codeconductor-lsp-tests/no_edit.py"
CLAMP = '''def clamp(x: int, lo: int, hi: int) -> int:
    """Clamp x into [lo, hi].
    >>> clamp(5, 0, 10)
    5
    >>> clamp(-3, 0, 10)
    0
    >>> clamp(12, 0, 10)
    10
    """
    return max(lo, x)
'''
BREAKS_PASSING = "def clamp(x, lo, hi):\n    return min(hi, x)\n"  # fixes clamp(12) but breaks clamp(-3)


@pytest.fixture
def lsp_settings(fault_server: FaultServer) -> dict[str, Any]:
    for name in ("gate-lsp-a", "gate-lsp-b"):
        fault_server.add_model(name, text=fenced(BREAKS_PASSING))
    return settings_for(fault_server.url, ["gate-lsp-a", "gate-lsp-b"], verify=True)


async def test_every_answer_refused_leaves_the_code_and_says_why(client: LanguageClient) -> None:
    editor = editor_of(client)
    editor.open(URI, CLAMP)
    reply = await command(client, "codeconductor.run", {"uri": URI, "range": span(0, 10), "task": "fix", "version": 1})

    assert reply["status"] == "noEdit"
    assert "your code is unchanged" in reply["message"]
    assert "which your code passes" in reply["message"]
    assert editor.applied == []
    assert editor.texts[URI] == CLAMP
    consensus = reply["result"]["consensus"]
    assert consensus["pick"] == ""
    assert consensus["no_edit"]
    assert consensus["clusters"][0]["rejected"]

    await editor.wait_for(lambda: any(d.source == "codeconductor" for d in client.diagnostics.get(URI, [])))
    (diag,) = client.diagnostics[URI]
    assert "no edit" in diag.message

    actions = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI),
            range=lsp.Range(lsp.Position(3, 0), lsp.Position(3, 0)),
            context=lsp.CodeActionContext(diagnostics=[diag]),
        )
    )
    titles = [a.title for a in actions or [] if isinstance(a, lsp.CodeAction)]
    assert not any(t.startswith(("Apply consensus", "Apply gate-lsp")) for t in titles)

    hover = await client.text_document_hover_async(
        lsp.HoverParams(text_document=lsp.TextDocumentIdentifier(uri=URI), position=lsp.Position(3, 4))
    )
    assert hover is not None
    assert isinstance(hover.contents, lsp.MarkupContent)
    assert "No edit" in hover.contents.value
    assert "not offered" in hover.contents.value

    refused = await command(client, "codeconductor.applySuggestion", {"runId": reply["runId"], "cluster": 0})
    assert refused["applied"] is False
    assert refused["status"] == "refused"
    assert editor.texts[URI] == CLAMP
