"""What a reply shows (``range``, ``newText``) is exactly the edit applying writes, also where the replaced lines
end the document without a line break (the preview used to add one that applying did not)."""

from __future__ import annotations

from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from tests.support.lsp_client import command, editor_of, span

URI = "file:///tmp/codeconductor-lsp-tests/no_final_newline.py"
# The function to fix is the last thing in the file, with no line break after it.
TEXT = "import os\n\n\ndef add(a, b):\n    return a - b"


def _offset(text: str, line: int, character: int) -> int:
    lines = text.splitlines(keepends=True)
    return sum(len(x) for x in lines[:line]) + character


async def test_proposed_edit_is_what_accepting_it_writes(client: LanguageClient) -> None:
    editor = editor_of(client)
    editor.open(URI, TEXT)
    reply = await command(client, "codeconductor.run", {"uri": URI, "range": span(3, 5), "task": "fix", "apply": False})
    assert reply["status"] == "proposed"
    assert editor.applied == []
    shown_range, shown_text = reply["range"], reply["newText"]
    assert shown_range == {
        "start": {"line": 3, "character": 0},
        "end": {"line": 4, "character": len("    return a - b")},
    }

    out = await command(client, "codeconductor.applySuggestion", {"runId": reply["runId"], "cluster": 0})
    assert out["status"] == "applied"
    (params,) = editor.applied
    (change,) = params.edit.document_changes or []
    assert isinstance(change, lsp.TextDocumentEdit)
    (edit,) = change.edits
    assert isinstance(edit, lsp.TextEdit)
    written_range = {
        "start": {"line": edit.range.start.line, "character": edit.range.start.character},
        "end": {"line": edit.range.end.line, "character": edit.range.end.character},
    }
    assert written_range == shown_range
    assert edit.new_text == shown_text
    # What a client that previews builds from the reply (the extension's diff) is the file after accepting.
    start = _offset(TEXT, 3, 0)
    end = _offset(TEXT, shown_range["end"]["line"], shown_range["end"]["character"])
    assert editor.texts[URI] == TEXT[:start] + shown_text + TEXT[end:]
    assert "return a + b" in editor.texts[URI]
