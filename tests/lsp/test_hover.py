"""Hover over code the ensemble worked on: confidence, k of n agree, the models table and the diff to the
alternative; anywhere else, nothing."""

from __future__ import annotations

from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from tests.support.lsp_client import BUGGY, command, editor_of, span

URI = "file:///tmp/codeconductor-lsp-tests/hover.py"


def _hover(line: int) -> lsp.HoverParams:
    return lsp.HoverParams(text_document=lsp.TextDocumentIdentifier(uri=URI), position=lsp.Position(line, 2))


async def test_hover_shows_the_ensemble_result(client: LanguageClient) -> None:
    editor = editor_of(client)
    editor.open(URI, BUGGY)
    assert await client.text_document_hover_async(_hover(4)) is None  # nothing run yet: nothing to show
    reply = await command(client, "codeconductor.run", {"uri": URI, "range": span(3, 5), "task": "fix"})
    assert reply["status"] == "applied"

    hover = await client.text_document_hover_async(_hover(4))
    assert hover is not None
    assert isinstance(hover.contents, lsp.MarkupContent)
    assert hover.contents.kind == lsp.MarkupKind.Markdown
    text = hover.contents.value
    assert f"**Confidence {reply['confidence']:.2f}**" in text
    assert "3 of 4 models agree" in text
    assert "· **not checked**: " in text  # the fixture runs nothing (verify off): the pick is a guess, and says so
    for name in ("ok-lsp-a", "ok-lsp-b", "ok-lsp-c", "ok-lsp-d"):
        assert f"| {name} | answered |" in text
    assert "| ok-lsp-d | answered |" in text
    assert "alternative 1 |" in text
    assert "```diff" in text
    assert "sum((a, b))" in text
    assert hover.range is not None
    assert hover.range.start.line == 3

    # Elsewhere: nothing.
    assert await client.text_document_hover_async(_hover(0)) is None
    assert await client.text_document_hover_async(_hover(8)) is None
