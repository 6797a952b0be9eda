""" "Make tests pass with ensemble" and "Generate tests with ensemble" through the real language server: code
actions on a function, the fix loop with ``$/progress`` (rounds, models, test results), the passing edit applied
with "k/n candidates pass the tests" in its label, and the project's tests found by themselves. Candidates come
through the real HTTP path from the fault-injection fake's fixed-answer "ok-*" models; tests run in the sandbox on
a real project folder under the workspace root (the ``project`` fixture). Cancelling the loop and test generation
is tested with the other long commands in ``test_cancel.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from tests.support import clamp
from tests.support.fault_server import FaultServer
from tests.support.lsp_client import command, command_argument, editor_of, fenced, progress_of, settings_for, span

pytestmark = pytest.mark.timeout(180)

BUGGY = clamp.MODULE
RIGHT = clamp.RIGHT
WRONG = clamp.WRONG
GENERATED = "```python\nfrom util import clamp\n\ndef test_mid():\n    assert clamp(5, 0, 10) == 5\n```"


@pytest.fixture
def lsp_settings(request: pytest.FixtureRequest, fault_server: FaultServer) -> dict[str, Any]:
    fault_server.add_model("ok-lsp-fixtests-right", text=fenced(RIGHT))
    fault_server.add_model("ok-lsp-fixtests-wrong", text=fenced(WRONG))
    if getattr(request, "param", None) == "wrong":
        fault_server.add_model("ok-lsp-fixtests-wrong2", text=fenced(WRONG.replace("return x", "return lo")))
        return settings_for(fault_server.url, ["ok-lsp-fixtests-wrong", "ok-lsp-fixtests-wrong2"])
    return settings_for(fault_server.url, ["ok-lsp-fixtests-right", "ok-lsp-fixtests-wrong"])


def actions_at(client: LanguageClient, uri: str, line: int) -> Any:
    return client.text_document_code_action_async(
        lsp.CodeActionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            range=lsp.Range(lsp.Position(line, 4), lsp.Position(line, 4)),
            context=lsp.CodeActionContext(diagnostics=[]),
        )
    )


@pytest.mark.usefixtures("client")
async def test_code_actions_on_a_function(client: LanguageClient, project: Path) -> None:
    editor = editor_of(client)
    uri = (project / "util.py").as_uri()
    editor.open(uri, BUGGY)
    actions = await actions_at(client, uri, 1)
    by_title = {a.title: a for a in actions if isinstance(a, lsp.CodeAction)}
    fix = by_title["Make tests pass with ensemble"]
    assert fix.command is not None
    assert fix.command.command == "codeconductor.fixWithTests"
    assert command_argument(fix)["range"]["start"]["line"] == 0
    assert "Generate tests with ensemble" in by_title
    # Outside any function: not offered.
    editor.open(uri + "x", "x = 1\n")
    outside = await actions_at(client, uri + "x", 0)
    assert not any(a.title == "Make tests pass with ensemble" for a in outside)


@pytest.mark.usefixtures("client")
async def test_fix_with_tests_applies_the_passing_candidate(client: LanguageClient, project: Path) -> None:
    editor = editor_of(client)
    uri = (project / "util.py").as_uri()
    editor.open(uri, BUGGY)
    reply = await command(client, "codeconductor.fixWithTests", {"uri": uri, "range": span(0, 4), "version": 1})
    assert reply["status"] == "passed", reply["message"]
    assert reply["applied"] is True
    # The tests mentioning clamp were found by themselves; the unrelated one was not chosen.
    rel = project.name
    assert reply["tests"] == [f"{rel}/test_util.py::test_low", f"{rel}/test_util.py::test_high"]
    (edit,) = editor.applied
    assert edit.label is not None
    assert "1/2 candidates pass the tests" in edit.label
    assert editor.texts[uri] == RIGHT + "\n\ndef other():\n    return 1\n"
    assert (project / "util.py").read_text() == BUGGY  # the server edits through the editor only
    # Progress: the baseline, the round, the models and the test results.
    tokens = [t for t in client.progress_reports if str(t).startswith("codeconductor-")]
    messages = [
        v.message
        for t in tokens
        for v in progress_of(client, t)
        if isinstance(v, lsp.WorkDoneProgressReport) and v.message
    ]
    assert any(m.startswith("current code: tested") and "0/2 tests passed" in m for m in messages)
    assert any(m.startswith("round 1/3: model ok-lsp-fixtests-") for m in messages)
    assert any(m.startswith("round 1/3: tested") and "2/2 tests passed" in m for m in messages)
    ends = [v for t in tokens for v in progress_of(client, t) if isinstance(v, lsp.WorkDoneProgressEnd)]
    assert any(e.message and "candidates pass the tests" in e.message for e in ends)


@pytest.mark.parametrize("lsp_settings", ["wrong"], indirect=True)
@pytest.mark.usefixtures("client")
async def test_no_candidate_passes(
    client: LanguageClient, project: Path, fault_server: FaultServer, lsp_settings: dict[str, Any]
) -> None:
    # Only wrong answers: the honest "no candidate passed", nothing edited, the best attempt and its failures.
    editor = editor_of(client)
    uri = (project / "util.py").as_uri()
    editor.open(uri, BUGGY)
    reply = await command(client, "codeconductor.fixWithTests", {"uri": uri, "range": span(0, 4), "rounds": 1})
    assert reply["status"] == "failed"
    assert reply["applied"] is False
    assert reply["message"].startswith("no candidate passed the tests")
    assert "newText" not in reply
    best = reply["outcome"]["best"]
    assert best["ok"] is False
    # "return lo" passes test_low (1/2); "return x" passes neither: the better one is the best attempt.
    assert (best["passed"], best["total"]) == (1, 2)
    assert [m.split("@", 1)[0] for m in best["models"]] == ["ok-lsp-fixtests-wrong2"]
    assert "assert" in best["failures"]
    assert [r["passing"] for r in reply["outcome"]["rounds"]] == [0]
    assert not editor.applied
    assert editor.texts[uri] == BUGGY


@pytest.mark.usefixtures("client")
async def test_no_test_mentions_the_function(client: LanguageClient, project: Path) -> None:
    editor = editor_of(client)
    uri = (project / "util.py").as_uri()
    editor.open(uri, BUGGY)
    reply = await command(client, "codeconductor.fixWithTests", {"uri": uri, "range": span(6, 8)})
    assert reply["status"] == "noTests"
    assert not editor.applied


@pytest.mark.usefixtures("client")
async def test_generate_tests_proposes_a_test_file(
    client: LanguageClient, project: Path, fault_server: FaultServer
) -> None:
    fault_server.add_model("ok-lsp-fixtests-right", text=GENERATED)
    fault_server.add_model("ok-lsp-fixtests-wrong", text=GENERATED)
    editor = editor_of(client)
    uri = (project / "util.py").as_uri()
    editor.open(uri, BUGGY)
    reply = await command(client, "codeconductor.generateTests", {"uri": uri, "range": span(0, 4), "apply": False})
    assert reply["status"] == "generated", reply["message"]
    # util.py is imported from its own folder (no __init__.py): the test file goes next to it.
    assert reply["uri"] == (project / "test_clamp_generated.py").as_uri()
    assert "def test_mid" in reply["content"]
    kept = [t for t in reply["outcome"]["tests"] if t["kept"]]
    assert [t["support"] for t in kept] == [2]
