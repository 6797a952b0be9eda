"""Code actions: the right actions on a selection or the enclosing function, "Implement" only on stubs, kinds
filtered by ``context.only``, and listing never calls a model."""

from __future__ import annotations

from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from tests.support.fault_server import FaultServer
from tests.support.lsp_client import BUGGY, command_argument, editor_of

URI = "file:///tmp/codeconductor-lsp-tests/actions.py"


def _request(
    line: int, char: int = 0, end: tuple[int, int] | None = None, only: list[str] | None = None
) -> lsp.CodeActionParams:
    end_line, end_char = end if end is not None else (line, char)
    return lsp.CodeActionParams(
        text_document=lsp.TextDocumentIdentifier(uri=URI),
        range=lsp.Range(lsp.Position(line, char), lsp.Position(end_line, end_char)),
        context=lsp.CodeActionContext(diagnostics=[], only=only),
    )


async def test_actions_on_enclosing_function(client: LanguageClient, lsp_models: FaultServer) -> None:
    editor_of(client).open(URI, BUGGY)
    lsp_models.clear_log()
    actions = await client.text_document_code_action_async(_request(4, 6))
    assert actions is not None, actions
    titles = [a.title for a in actions if isinstance(a, lsp.CodeAction)]
    # Ours first, in this order (other features may add theirs after); not a stub: no "Implement".
    assert titles[:4] == ["Fix with ensemble", "Improve with ensemble", "Add docstring", "Review with ensemble"]
    assert "Implement this function" not in titles
    fix = actions[0]
    assert isinstance(fix, lsp.CodeAction)
    assert fix.command is not None
    assert fix.kind == "quickfix.codeconductor.fix"
    assert fix.command.command == "codeconductor.run"
    arg = command_argument(fix)
    # No selection: the whole enclosing function `add` (lines 3-4), at the version it was listed on.
    assert arg["range"] == {"start": {"line": 3, "character": 0}, "end": {"line": 5, "character": 0}}
    assert arg["task"] == "fix"
    assert arg["version"] == 1
    assert arg["uri"] == URI
    # Listing must not have asked any model anything.
    assert not [r for r in lsp_models.requests if "completions" in r.path or "/api/chat" in r.path]


async def test_implement_offered_only_on_stub(client: LanguageClient) -> None:
    editor_of(client).open(URI, BUGGY)
    actions = await client.text_document_code_action_async(_request(8, 4))
    assert actions is not None
    titles = [a.title for a in actions if isinstance(a, lsp.CodeAction)]
    assert "Implement this function" in titles
    implement = next(a for a in actions if isinstance(a, lsp.CodeAction) and a.title == "Implement this function")
    assert command_argument(implement)["range"]["start"]["line"] == 7


async def test_selection_is_used_as_whole_lines_and_only_filters(client: LanguageClient) -> None:
    editor_of(client).open(URI, BUGGY)
    actions = await client.text_document_code_action_async(_request(0, 2, end=(1, 0), only=["refactor"]))
    assert actions is not None
    kinds = {a.kind for a in actions if isinstance(a, lsp.CodeAction)}
    assert kinds
    assert all(str(k).startswith("refactor") for k in kinds)
    improve = next(a for a in actions if isinstance(a, lsp.CodeAction) and a.title == "Improve with ensemble")
    assert command_argument(improve)["range"] == {
        "start": {"line": 0, "character": 0},
        "end": {"line": 1, "character": 0},
    }
