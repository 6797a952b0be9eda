"""Nothing lost while the user types: randomized trials where the document is edited (``didChange``) before,
during or after a run while the models are still working. The ensemble's edit reaches the document only when
the document is still the version the run was made on; otherwise the run answers ``stale`` and the user's text
stays exactly as the user left it. No trial may end with a document that is neither "the user's edits only" nor
"the ensemble's edit on the untouched text".

Models are the fault-injection FAKE server's ``ok`` models with a delay (``tests.support.fault_server``), so each
run takes a while and edits land while it is in flight.
"""

from __future__ import annotations

import asyncio
import os
import random
from typing import Any

import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from tests.support.fault_server import FaultServer
from tests.support.faulty_ensemble import ensemble_settings
from tests.support.lsp_client import FIXED, _splice, command, editor_of, span, started_token

TRIALS = int(os.environ.get("CODECONDUCTOR_EDIT_TRIALS", "24"))
SEED = int(os.environ.get("CODECONDUCTOR_EDIT_SEED", "20261128"))


@pytest.fixture
def lsp_settings(hard_models: FaultServer) -> dict[str, Any]:
    return ensemble_settings(hard_models.url, ["ok-hard-delay-a", "ok-hard-delay-b"])


def _document(rng: random.Random) -> tuple[str, int]:
    """Some functions around the buggy ``add``; the line where ``add`` starts."""
    before = [f"def f{i}(x):\n    return x * {i}\n\n\n" for i in range(rng.randint(0, 4))]
    after = [f"def g{i}(y):\n    return y - {i}\n\n\n" for i in range(rng.randint(0, 4))]
    text = "".join(before) + "def add(a, b):\n    return a - b\n\n\n" + "".join(after)
    return text, 4 * len(before)


def _random_edit(rng: random.Random, text: str) -> tuple[lsp.Range, str]:
    lines = text.split("\n")
    line = rng.randrange(len(lines))
    kind = rng.choice(["insert_line", "type_in_line", "delete_line"])
    if kind == "insert_line":
        return lsp.Range(lsp.Position(line, 0), lsp.Position(line, 0)), f"# note {rng.randint(0, 999)}\n"
    if kind == "type_in_line":
        col = rng.randint(0, len(lines[line]))
        return lsp.Range(lsp.Position(line, col), lsp.Position(line, col)), rng.choice(["x", " ", "0", "é", "😀"])
    end = lsp.Position(line + 1, 0) if line + 1 < len(lines) else lsp.Position(line, len(lines[line]))
    return lsp.Range(lsp.Position(line, 0), end), ""


async def test_randomized_edits_during_runs(client: LanguageClient, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(SEED)
    editor = editor_of(client)
    received: list[tuple[str, int | None, int]] = []  # (uri, version the edit is for, editor's version then)
    original_apply = editor.on_apply_edit

    def on_apply_edit(params: lsp.ApplyWorkspaceEditParams) -> lsp.ApplyWorkspaceEditResult:
        for change in params.edit.document_changes or []:
            assert isinstance(change, lsp.TextDocumentEdit)
            received.append(
                (change.text_document.uri, change.text_document.version, editor.versions[change.text_document.uri])
            )
        return original_apply(params)

    monkeypatch.setattr(editor, "on_apply_edit", on_apply_edit)
    outcomes: dict[str, int] = {}
    corrupted: list[str] = []
    for trial in range(TRIALS):
        uri = f"file:///tmp/codeconductor-hardening/edit-{trial}.py"
        text, add_line = _document(rng)
        editor.open(uri, text)
        when = rng.choice(["none", "before", "during", "during", "during_twice", "after"])
        user_text = text

        def user_edit(uri: str = uri) -> None:
            nonlocal user_text
            rng_, new = _random_edit(rng, editor.texts[uri])
            user_text = _splice(user_text, rng_, new)
            editor.change(uri, rng_, new)

        known = set(client.progress_reports)
        if when == "before":
            user_edit()
        run = asyncio.ensure_future(
            command(
                client,
                "codeconductor.run",
                {"uri": uri, "range": span(add_line, add_line + 2), "task": "fix", "version": 1},
            )
        )
        if when.startswith("during"):
            await started_token(client, editor, known)
            await asyncio.sleep(rng.uniform(0.0, 0.4))
            user_edit()
            if when == "during_twice":
                user_edit()
        reply = await run
        if when == "after":
            assert reply["status"] == "applied", (trial, reply["status"])
            user_text = editor.texts[uri]  # the user now edits the fixed text
            user_edit()
        outcomes[reply["status"]] = outcomes.get(reply["status"], 0) + 1

        fixed = text.replace("return a - b", FIXED.split("\n")[1].strip(), 1)
        if when == "none":
            expected = fixed
            assert reply["status"] == "applied", (trial, reply["status"])
        elif when == "after":
            expected = user_text
        else:
            expected = user_text
            assert reply["status"] in ("stale", "rejected"), (trial, when, reply["status"])
        final = editor.texts[uri]
        if final != expected:
            corrupted.append(f"trial {trial} ({when}): {reply['status']}")
    # The server never sent an edit for a document version other than the one it had (and the client had).
    stale_edits = [r for r in received if r[1] != r[2]]
    assert stale_edits == []
    assert corrupted == []
    assert outcomes.get("applied", 0) > 0, outcomes
    assert outcomes.get("stale", 0) > 0, outcomes
