"""Bad requests get LSP errors, never a crash: unknown documents, positions outside the text, unknown commands,
wrong argument types; and the server keeps answering afterwards."""

from __future__ import annotations

from typing import Any

import pytest
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pytest_lsp import LanguageClient

from tests.support.lsp_client import BUGGY, command, editor_of, span

URI = "file:///tmp/codeconductor-lsp-tests/bad.py"
UNKNOWN = "file:///tmp/codeconductor-lsp-tests/never-opened.py"


def _actions(uri: str, line: int, char: int = 0) -> lsp.CodeActionParams:
    return lsp.CodeActionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri),
        range=lsp.Range(lsp.Position(line, char), lsp.Position(line, char)),
        context=lsp.CodeActionContext(diagnostics=[]),
    )


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("codeconductor.run", [{"uri": UNKNOWN, "range": span(0, 1), "task": "fix"}]),
        ("codeconductor.run", [{"uri": URI, "range": span(40, 50), "task": "fix"}]),
        ("codeconductor.run", [{"uri": URI, "range": span(0, 1), "task": "explode"}]),
        (
            "codeconductor.run",
            [
                {
                    "uri": URI,
                    "range": {"start": {"line": "3", "character": 0}, "end": {"line": 4, "character": 0}},
                    "task": "fix",
                }
            ],
        ),
        ("codeconductor.run", [{"uri": URI, "task": "fix"}]),
        ("codeconductor.run", ["not an object"]),
        ("codeconductor.run", [{"uri": URI, "range": span(0, 1), "task": "fix"}, {"extra": 1}]),
        ("codeconductor.review", [{"uri": 42}]),
        ("codeconductor.ask", [{"question": ""}]),
        ("codeconductor.applySuggestion", [{"cluster": 1}]),
        ("codeconductor.listModels", [{"refresh": "yes"}]),
        ("codeconductor.cancel", [{"runId": 7}]),
        ("codeconductor.doesNotExist", []),
    ],
)
async def test_bad_command_arguments(client: LanguageClient, name: str, args: list[Any]) -> None:
    editor_of(client).open(URI, BUGGY)
    with pytest.raises(JsonRpcInvalidParams):
        await command(client, name, *args)
    assert await command(client, "codeconductor.status")  # still alive


async def test_bad_document_requests(client: LanguageClient) -> None:
    editor_of(client).open(URI, BUGGY)
    with pytest.raises(JsonRpcInvalidParams):
        await client.text_document_code_action_async(_actions(UNKNOWN, 0))
    with pytest.raises(JsonRpcInvalidParams):
        await client.text_document_code_action_async(_actions(URI, 500))
    # A character past the end of the line means the end of the line (LSP spec): answered, not an error.
    assert await client.text_document_code_action_async(_actions(URI, 0, 400))
    with pytest.raises(JsonRpcException):
        await client.text_document_hover_async(
            lsp.HoverParams(text_document=lsp.TextDocumentIdentifier(uri=UNKNOWN), position=lsp.Position(0, 0))
        )
    with pytest.raises(JsonRpcInvalidParams):
        await client.text_document_hover_async(
            lsp.HoverParams(text_document=lsp.TextDocumentIdentifier(uri=URI), position=lsp.Position(999, 0))
        )
    actions = await client.text_document_code_action_async(_actions(URI, 4))
    assert actions  # and the server still works
