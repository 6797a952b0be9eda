"""Running the ensemble from a code action: progress from begin to end with one report per model, the consensus
applied through ``workspace/applyEdit`` with its confidence in the label, the result's diagnostic, and the
dissenting model's alternative offered (and applicable) afterwards."""

from __future__ import annotations

from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from tests.support.lsp_client import ALTERNATIVE, BUGGY, FIXED, command, editor_of, progress_of, span

URI = "file:///tmp/codeconductor-lsp-tests/run.py"


async def test_fix_runs_reports_progress_and_applies(client: LanguageClient) -> None:
    editor = editor_of(client)
    editor.open(URI, BUGGY)
    reply = await command(client, "codeconductor.run", {"uri": URI, "range": span(3, 5), "task": "fix", "version": 1})

    assert reply["status"] == "applied"
    assert reply["applied"] is True
    assert reply["agree"] == 3
    assert reply["asked"] == 4
    assert reply["alternatives"] == 1
    assert FIXED.strip() in reply["result"]["consensus"]["pick"]
    assert reply["newText"] == FIXED  # the file's own imports are not repeated inside the function
    # The edit: one versioned change over the function, labelled with the confidence.
    (edit,) = editor.applied
    assert edit.label is not None
    assert edit.label.startswith("Apply consensus (3/4 models, confidence ")
    # The fixture runs nothing (verify off): the label, the reply and the diagnostic say "not checked".
    assert edit.label.endswith(", not checked)")
    assert reply["unchecked"]
    assert edit.label == reply["label"]
    assert editor.texts[URI] == BUGGY.replace("    return a - b\n", "    return a + b\n")

    # Progress: created, begun (cancellable), one report per model, ended.
    (token,) = [t for t in client.progress_reports if str(t).startswith("codeconductor-")]
    kinds = [type(v).__name__ for v in progress_of(client, token)]
    assert kinds[0] == "WorkDoneProgressBegin"
    assert kinds[-1] == "WorkDoneProgressEnd"
    begin = progress_of(client, token)[0]
    assert isinstance(begin, lsp.WorkDoneProgressBegin)
    assert begin.cancellable is True
    reports = [v.message for v in progress_of(client, token) if isinstance(v, lsp.WorkDoneProgressReport)]
    assert reports[-1] == "4/4 models answered"
    assert len(reports) >= 4

    # A diagnostic over the (new) function says what the ensemble did and how many agree.
    await editor.wait_for(lambda: any(d.source == "codeconductor" for d in client.diagnostics.get(URI, [])))
    (diag,) = client.diagnostics[URI]
    assert "3/4 models agree" in diag.message
    assert ", not checked)" in diag.message
    assert diag.range.start.line == 3
    assert diag.severity in (lsp.DiagnosticSeverity.Hint, lsp.DiagnosticSeverity.Information)

    # The dissenting cluster is offered as an alternative on that range, and applying it works.
    actions = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI),
            range=lsp.Range(lsp.Position(4, 0), lsp.Position(4, 0)),
            context=lsp.CodeActionContext(diagnostics=[]),
        )
    )
    assert actions is not None
    alternative = next(a for a in actions if isinstance(a, lsp.CodeAction) and "alternative" in a.title)
    assert alternative.title == "Apply ok-lsp-d's alternative (not checked)"
    assert alternative.command is not None
    out = await command(client, alternative.command.command, *(alternative.command.arguments or []))
    assert out["status"] == "applied"
    assert editor.texts[URI] == BUGGY.replace("def add(a, b):\n    return a - b\n", ALTERNATIVE)


async def test_apply_false_proposes_without_editing(client: LanguageClient) -> None:
    editor = editor_of(client)
    editor.open(URI, BUGGY)
    reply = await command(client, "codeconductor.run", {"uri": URI, "range": span(3, 5), "task": "fix", "apply": False})
    assert reply["status"] == "proposed"
    assert editor.applied == []
    assert editor.texts[URI] == BUGGY
    assert reply["newText"] == FIXED
    actions = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI),
            range=lsp.Range(lsp.Position(3, 0), lsp.Position(3, 0)),
            context=lsp.CodeActionContext(diagnostics=[]),
        )
    )
    assert actions is not None
    titles = [a.title for a in actions if isinstance(a, lsp.CodeAction)]
    assert any(t.startswith("Apply consensus (3/4 models") for t in titles)


async def test_client_refusing_the_edit_is_reported(client: LanguageClient) -> None:
    editor = editor_of(client)
    editor.refuse = True
    editor.open(URI, BUGGY)
    reply = await command(client, "codeconductor.run", {"uri": URI, "range": span(3, 5), "task": "fix"})
    assert reply["status"] == "rejected"
    assert reply["applied"] is False
    assert editor.texts[URI] == BUGGY
