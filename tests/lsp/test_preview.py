"""A preview before any edit (``server/preview.py``), through the real server and a client that behaves like each
kind of editor: one without change annotations (Neovim, Emacs: the code-action fallback), one with them (VS Code's
refactor preview: ``needsConfirmation``), and the CodeConductor extension (which shows previews itself). Accept and
reject are recorded in the history and move the learned weights; rejecting leaves the text as it was; an edit is
refused when the document changed since it was shown."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from codeconductor.ensemble.history import History
from codeconductor.server.features.code_actions import REJECT_TITLE
from tests.support.fault_server import FaultServer
from tests.support.lsp_client import (
    ALTERNATIVE,
    BUGGY,
    FIXED,
    SERVER,
    Editor,
    command,
    editor_of,
    open_session,
    settings_for,
    span,
)

URI = "file:///tmp/codeconductor-lsp-tests/preview.py"
FIXED_TEXT = BUGGY.replace("    return a - b\n", "    return a + b\n")
DOCUMENTED_BUGGY = 'import os\n\n\ndef add(a, b):\n    """>>> add(2, 3)\n    5\n    """\n    return a - b\n'
MODELS = ["ok-lsp-a", "ok-lsp-b", "ok-lsp-c", "ok-lsp-d"]  # three agree on FIXED, ok-lsp-d on ALTERNATIVE


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "history.sqlite"


@pytest.fixture
def lsp_settings(request: pytest.FixtureRequest, lsp_models: FaultServer, db: Path) -> dict[str, Any]:
    extra = getattr(request, "param", {})
    return settings_for(lsp_models.url, MODELS, history=True, historyPath=str(db), **extra)


@pytest.fixture
def lsp_capabilities(request: pytest.FixtureRequest) -> lsp.ClientCapabilities:
    kind = getattr(request, "param", "visual-studio-code")
    if kind == "codeconductor-extension":
        caps = client_capabilities("visual-studio-code")
        caps.experimental = {"codeconductor": {"preview": True}}
        return caps
    return client_capabilities(kind)


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(
    lsp_client: LanguageClient, lsp_settings: dict[str, Any], lsp_capabilities: lsp.ClientCapabilities
) -> AsyncIterator[None]:
    await open_session(lsp_client, lsp_settings, lsp_capabilities)
    yield
    await lsp_client.shutdown_session()


async def _actions(client: LanguageClient, line: int = 4) -> list[lsp.CodeAction]:
    found = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI),
            range=lsp.Range(lsp.Position(line, 0), lsp.Position(line, 0)),
            context=lsp.CodeActionContext(diagnostics=[]),
        )
    )
    return [a for a in found or [] if isinstance(a, lsp.CodeAction)]


async def _run(client: LanguageClient, editor: Editor, start: int = 3) -> dict[str, Any]:
    args = {"uri": URI, "range": span(start, start + 2), "task": "fix", "version": editor.versions[URI]}
    reply: dict[str, Any] = await command(client, "codeconductor.run", args)
    return reply


async def _execute(client: LanguageClient, action: lsp.CodeAction) -> dict[str, Any]:
    assert action.command is not None
    out: dict[str, Any] = await command(client, action.command.command, *(action.command.arguments or []))
    return out


def _feedback(db: Path) -> dict[str, str]:
    """model name -> the user's latest action, as the history stored it."""
    with History(db) as history:
        rows = history.backend.execute("SELECT model_name, action FROM feedback WHERE kind = 'user'")
    return dict(rows)


def _weight(db: Path, name: str) -> float:
    with History(db) as history:
        return history.posterior(name, "fix").mean


@pytest.mark.parametrize("lsp_capabilities", ["neovim"], indirect=True)
async def test_without_change_annotations_the_edit_waits_in_code_actions(
    client: LanguageClient, db: Path, lsp_capabilities: lsp.ClientCapabilities
) -> None:
    editor = editor_of(client)
    editor.open(URI, BUGGY)

    # 1. Nothing is applied: the reply and the code actions carry the edit.
    reply = await _run(client, editor)
    assert reply["status"] == "preview"
    assert reply["preview"] == "codeAction"
    assert reply["applied"] is False
    assert reply["newText"] == FIXED
    assert editor.applied == []
    assert editor.texts[URI] == BUGGY
    titles = [a.title for a in await _actions(client)]
    assert titles[:2] == [f"Accept: {reply['label']}", REJECT_TITLE]
    assert "Apply ok-lsp-d's alternative (not checked)" in titles  # alternatives stay one pick away
    before = _weight(db, "ok-lsp-a")

    # 2. Reject: the text is untouched, the history says so, the pick loses weight and is no longer offered.
    reject = next(a for a in await _actions(client) if a.title == REJECT_TITLE)
    assert (await _execute(client, reject))["status"] == "rejected"
    assert editor.applied == []
    assert editor.texts[URI] == BUGGY
    assert _feedback(db) == {"ok-lsp-a": "rejected", "ok-lsp-b": "rejected", "ok-lsp-c": "rejected"}
    assert _weight(db, "ok-lsp-a") < before
    titles = [a.title for a in await _actions(client)]
    assert not any(t.startswith(("Accept:", "Apply consensus")) for t in titles), titles

    # 3. A new run, then the user types above the function: accepting the stale preview is refused.
    await _run(client, editor)
    editor.change(URI, lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0)), "# note\n")
    accept = next(a for a in await _actions(client, line=5) if a.title.startswith("Accept:"))
    stale = await _execute(client, accept)
    assert stale["status"] == "stale"
    assert stale["applied"] is False
    assert editor.applied == []
    assert "    return a - b\n" in editor.texts[URI]

    # 4. Run again on the current text and accept: exactly the previewed edit lands; feedback "applied".
    await _run(client, editor, start=4)
    accept = next(a for a in await _actions(client, line=5) if a.title.startswith("Accept:"))
    applied = await _execute(client, accept)
    assert applied["status"] == "applied"
    assert editor.texts[URI] == "# note\n" + FIXED_TEXT
    assert _feedback(db)["ok-lsp-a"] == "applied"


@pytest.mark.parametrize("lsp_capabilities", ["visual-studio-code"], indirect=True)
async def test_with_change_annotations_the_client_asks_for_confirmation(
    client: LanguageClient, db: Path, lsp_capabilities: lsp.ClientCapabilities
) -> None:
    editor = editor_of(client)
    editor.open(URI, BUGGY)
    editor.discard_confirmations = True
    reply = await _run(client, editor)
    # The edit went out annotated with needsConfirmation; the user discarded it in the refactor preview.
    assert editor.confirmations == [reply["label"]]
    (sent,) = editor.applied
    (change,) = sent.edit.document_changes or []
    assert isinstance(change, lsp.TextDocumentEdit)
    (edit,) = change.edits
    assert isinstance(edit, lsp.AnnotatedTextEdit)
    assert reply["status"] == "rejected"
    assert reply["preview"] == "annotation"
    assert editor.texts[URI] == BUGGY
    assert _feedback(db)["ok-lsp-a"] == "rejected"

    # Confirmed this time: applied, and the alternative is previewed the same way (another confirmation).
    editor.discard_confirmations = False
    assert (await _run(client, editor))["status"] == "applied"
    assert editor.texts[URI] == FIXED_TEXT
    alternative = next(a for a in await _actions(client) if "alternative" in a.title)
    assert alternative.command is not None
    assert alternative.command.command == "codeconductor.preview"
    out = await _execute(client, alternative)
    assert out["status"] == "applied"
    assert editor.confirmations[-1] == "Apply ok-lsp-d's alternative (not checked)"
    assert editor.texts[URI] == BUGGY.replace("def add(a, b):\n    return a - b\n", ALTERNATIVE)
    feedback = _feedback(db)
    assert feedback["ok-lsp-d"] == "applied"
    assert feedback["ok-lsp-a"] == "rejected"  # preferring the dissent is evidence against the pick


@pytest.mark.parametrize("lsp_capabilities", ["codeconductor-extension"], indirect=True)
async def test_extension_previews_alternatives_and_accepts_what_it_showed(
    client: LanguageClient, db: Path, lsp_capabilities: lsp.ClientCapabilities
) -> None:
    editor = editor_of(client)
    editor.open(URI, BUGGY)
    reply = await _run(client, editor)
    assert (reply["status"], reply["preview"]) == ("preview", "client")
    assert reply["oldText"] == "def add(a, b):\n    return a - b\n"
    assert reply["version"] == 1
    assert editor.applied == []

    # The extension's "Alternatives": the dissenting cluster's own diff, still nothing applied.
    alt = await command(client, "codeconductor.preview", {"runId": reply["runId"], "cluster": 1})
    assert (alt["status"], alt["cluster"]) == ("preview", 1)
    assert alt["newText"] == ALTERNATIVE
    assert alt["range"] == reply["range"]
    assert editor.applied == []

    # Accept (the diff editor's button) applies the previewed alternative.
    out = await command(client, "codeconductor.applySuggestion", {"runId": reply["runId"], "version": alt["version"]})
    assert out["status"] == "applied"
    assert editor.texts[URI] == BUGGY.replace("def add(a, b):\n    return a - b\n", ALTERNATIVE)
    assert _feedback(db) == {
        "ok-lsp-a": "rejected",
        "ok-lsp-b": "rejected",
        "ok-lsp-c": "rejected",
        "ok-lsp-d": "applied",
    }


@pytest.mark.parametrize(
    ("lsp_settings", "lsp_capabilities", "status"),
    [
        ({"apply": "auto", "autoApplyConfidence": 0.0, "verify": True}, "neovim", "applied"),
        ({"apply": "auto", "autoApplyConfidence": 1.0, "verify": True}, "neovim", "preview"),
        # Not checked (nothing ran): never applied unseen, whatever the threshold.
        ({"apply": "auto", "autoApplyConfidence": 0.0}, "neovim", "preview"),
        ({"apply": "never"}, "visual-studio-code", "proposed"),
    ],
    indirect=["lsp_settings", "lsp_capabilities"],
)
async def test_apply_setting(
    client: LanguageClient, lsp_settings: dict[str, Any], lsp_capabilities: lsp.ClientCapabilities, status: str
) -> None:
    editor = editor_of(client)
    # An example the user's code fails: a fix that makes it pass is checked (a fix never seen to fix anything is
    # "not checked", and never applied unseen).
    editor.open(URI, DOCUMENTED_BUGGY)
    args = {"uri": URI, "range": span(3, 8), "task": "fix", "version": editor.versions[URI]}
    reply = await command(client, "codeconductor.run", args)
    assert reply["status"] == status
    assert ("return a + b" in editor.texts[URI]) is (status == "applied")
    assert editor.confirmations == []


async def test_the_history_report_is_the_same_dashboard_as_the_clis(client: LanguageClient, db: Path) -> None:
    editor = editor_of(client)
    editor.open(URI, BUGGY)
    await _run(client, editor)
    report: dict[str, Any] = await command(client, "codeconductor.historyReport")
    assert report["message"] == "1 runs recorded"
    html = report["html"]
    assert html.startswith("<!DOCTYPE html>")
    assert all(f"<td>{name}</td>" in html for name in MODELS)
    # The history's own render_report: what `codeconductor stats --html` writes, up to the minute it was made.
    from codeconductor.ensemble.history import render_report

    with History(db) as history:
        cli_html = render_report(history)
    assert re.sub(r"generated [0-9: -]+UTC", "", html) == re.sub(r"generated [0-9: -]+UTC", "", cli_html)
