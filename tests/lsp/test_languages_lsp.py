"""Languages beyond Python end to end: the server offers its actions on JavaScript / TypeScript / Go documents,
a model's prose is never written into the file (the bug issue 13 measured: a paragraph offered as the edit of a
JavaScript function), and the code answer is applied and hovered."""

from __future__ import annotations

from typing import Any

import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from tests.support.fault_server import FaultServer
from tests.support.lsp_client import command, editor_of, settings_for, span

JS_URI = "file:///tmp/codeconductor-lsp-tests/sum.js"
JS_BUGGY = "// add(1, 2) === 3\nfunction add(a, b) {\n  return a - b;\n}\n"
JS_FIXED = "function add(a, b) {\n  return a + b;\n}\n"
PROSE = "The function subtracts instead of adding. Replace the minus with a plus and it will return the sum."


@pytest.fixture
def lsp_settings(request: pytest.FixtureRequest, fault_server: FaultServer) -> dict[str, Any]:
    fault_server.add_model("ok-js-prose-a", text=PROSE)
    fault_server.add_model("ok-js-prose-b", text="Sure! " + PROSE)
    fault_server.add_model("ok-js-code", text=f"Here it is:\n```javascript\n{JS_FIXED}```\nDone.")
    names = ["ok-js-prose-a", "ok-js-prose-b"]
    if getattr(request, "param", "with code") == "with code":
        names.append("ok-js-code")
    return settings_for(fault_server.url, names)


def _actions(uri: str, line: int) -> lsp.CodeActionParams:
    return lsp.CodeActionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri),
        range=lsp.Range(lsp.Position(line, 0), lsp.Position(line, 0)),
        context=lsp.CodeActionContext(diagnostics=[]),
    )


@pytest.mark.parametrize("lsp_settings", ["with code"], indirect=True)
async def test_prose_loses_to_code_and_the_fix_is_applied(client: LanguageClient, lsp_settings: Any) -> None:
    editor = editor_of(client)
    editor.open(JS_URI, JS_BUGGY, language="javascript")
    actions = await client.text_document_code_action_async(_actions(JS_URI, 2))
    titles = [a.title for a in actions or [] if isinstance(a, lsp.CodeAction)]
    assert {"Fix with ensemble", "Improve with ensemble", "Review with ensemble"} <= set(titles)
    assert "Make tests pass with ensemble" not in titles  # pytest: Python only
    reply = await command(client, "codeconductor.run", {"uri": JS_URI, "range": span(1, 4), "task": "fix"})
    assert reply["status"] == "applied", reply
    assert editor.texts[JS_URI] == "// add(1, 2) === 3\n" + JS_FIXED
    assert "subtracts" not in editor.texts[JS_URI]
    hover = await client.text_document_hover_async(
        lsp.HoverParams(text_document=lsp.TextDocumentIdentifier(uri=JS_URI), position=lsp.Position(2, 4))
    )
    assert hover is not None
    assert "CodeConductor" in str(hover.contents)


@pytest.mark.parametrize("lsp_settings", ["prose only"], indirect=True)
async def test_only_prose_leaves_the_code_unchanged(client: LanguageClient, lsp_settings: Any) -> None:
    editor = editor_of(client)
    editor.open(JS_URI, JS_BUGGY, language="javascript")
    reply = await command(client, "codeconductor.run", {"uri": JS_URI, "range": span(1, 4), "task": "fix"})
    assert reply["status"] == "noConsensus", reply
    assert editor.applied == []
    assert editor.texts[JS_URI] == JS_BUGGY


OTHERS = [
    ("file:///tmp/codeconductor-lsp-tests/a.ts", "typescript", "function f(x: number): number {\n  return x;\n}\n", 1),
    ("file:///tmp/codeconductor-lsp-tests/a.go", "go", "package m\n\nfunc f(x int) int {\n\treturn x\n}\n", 3),
    ("file:///tmp/codeconductor-lsp-tests/A.java", "java", "class A {\n  int f(int x) {\n    return x;\n  }\n}\n", 2),
    ("file:///tmp/codeconductor-lsp-tests/a.rs", "rust", "fn f(x: i32) -> i32 {\n    x\n}\n", 1),
]


@pytest.mark.parametrize("lsp_settings", ["with code"], indirect=True)
async def test_actions_in_other_languages(client: LanguageClient, lsp_settings: Any) -> None:
    for uri, language, text, line in OTHERS:
        editor_of(client).open(uri, text, language=language)
        actions = await client.text_document_code_action_async(_actions(uri, line))
        titles = [a.title for a in actions or [] if isinstance(a, lsp.CodeAction)]
        assert titles[:2] == ["Fix with ensemble", "Improve with ensemble"], (language, titles)
