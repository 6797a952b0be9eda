""" "Make tests pass with ensemble" and "Generate tests with ensemble" through the real language server: code
actions on a function, the fix loop with ``$/progress`` (rounds, models, test results), the passing edit applied
with "k/n candidates pass the tests" in its label, and the project's tests found by themselves. Candidates come
through the real HTTP path from the fault-injection fake's fixed-answer "ok-*" models; tests run in the sandbox on
a real project folder under the workspace root. Cancelling (progress cancel button, ``codeconductor.cancel``,
``$/cancelRequest``) stops the loop at once while a hanging model is being asked."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcRequestCancelled
from pytest_lsp import LanguageClient

from tests.support import clamp
from tests.support.fault_server import Behaviour, FaultServer
from tests.support.lsp_client import command, editor_of, fenced, settings_for, span, started_token

pytestmark = pytest.mark.timeout(180)

WORKSPACE = Path("/tmp/codeconductor-lsp-tests")  # the root_uri the test client initialises with
BUGGY = clamp.BUGGY + "\n\ndef other():\n    return 1\n"
RIGHT = clamp.RIGHT
WRONG = clamp.WRONG
TESTS = (
    "from util import clamp\n\n\ndef test_low():\n    assert clamp(-5, 0, 10) == 0\n\n\n"
    "def test_high():\n    assert clamp(50, 0, 10) == 10\n\n\ndef test_unrelated():\n    assert True\n"
)
GENERATED = "```python\nfrom util import clamp\n\ndef test_mid():\n    assert clamp(5, 0, 10) == 5\n```"


HANG = "hang-lsp-fixtests"
# Tests run with a model that never answers next to a wrong one (see ``lsp_settings``).
HANGING = pytest.mark.parametrize("lsp_settings", ["hanging"], indirect=True)


@pytest.fixture
def lsp_settings(request: pytest.FixtureRequest, fault_server: FaultServer) -> dict[str, Any]:
    fault_server.add_model("ok-lsp-fixtests-right", text=fenced(RIGHT))
    fault_server.add_model("ok-lsp-fixtests-wrong", text=fenced(WRONG))
    if getattr(request, "param", None) == "hanging":
        # A model that never answers keeps the run going until it is cancelled (long timeouts: only the cancel
        # can end it within the test's waits).
        fault_server.add_model(HANG, behaviour=Behaviour.HANG)
        return settings_for(fault_server.url, ["ok-lsp-fixtests-wrong", HANG], timeoutS=120, deadlineS=240)
    if getattr(request, "param", None) == "wrong":
        fault_server.add_model("ok-lsp-fixtests-wrong2", text=fenced(WRONG.replace("return x", "return lo")))
        return settings_for(fault_server.url, ["ok-lsp-fixtests-wrong", "ok-lsp-fixtests-wrong2"])
    return settings_for(fault_server.url, ["ok-lsp-fixtests-right", "ok-lsp-fixtests-wrong"])


@pytest.fixture
def project() -> Iterator[Path]:
    """A real folder under the workspace root: the module and its tests side by side (pytest puts the test's
    folder on sys.path, so ``from util import clamp`` works there)."""
    folder = WORKSPACE / f"fixproj-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    (folder / "util.py").write_text(BUGGY)
    (folder / "test_util.py").write_text(TESTS)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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
    assert fix.command.arguments is not None
    assert fix.command.arguments[0]["range"]["start"]["line"] == 0
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
        for v in client.progress_reports[t]
        if isinstance(v, lsp.WorkDoneProgressReport) and v.message
    ]
    assert any(m.startswith("current code: tested") and "0/2 tests passed" in m for m in messages)
    assert any(m.startswith("round 1/3: model ok-lsp-fixtests-") for m in messages)
    assert any(m.startswith("round 1/3: tested") and "2/2 tests passed" in m for m in messages)
    ends = [v for t in tokens for v in client.progress_reports[t] if isinstance(v, lsp.WorkDoneProgressEnd)]
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


async def _start_hanging(
    client: LanguageClient, fault_server: FaultServer, name: str, arguments: dict[str, Any]
) -> tuple[asyncio.Future[Any], Any]:
    """Start ``name`` and wait until the hanging model has really been asked (the loop is in a round, past the
    baseline test run); the pending reply and the run's progress token."""
    editor = editor_of(client)
    known = set(client.progress_reports)
    fault_server.clear_log()
    reply = asyncio.ensure_future(command(client, name, arguments))
    token = await started_token(client, editor, known)

    def asked() -> bool:
        return any(isinstance(r.body, dict) and r.body.get("model") == HANG for r in fault_server.requests)

    await editor.wait_for(asked, timeout=60)
    return reply, token


async def _assert_stopped(client: LanguageClient, fault_server: FaultServer, token: Any) -> None:
    """The hanging model's connection was abandoned, the progress ended "cancelled", no run is left."""
    editor = editor_of(client)
    await editor.wait_for(lambda: HANG in fault_server.disconnects, timeout=10)
    end = client.progress_reports[token][-1]
    assert isinstance(end, lsp.WorkDoneProgressEnd)
    assert end.message == "cancelled"
    status = await command(client, "codeconductor.status")
    assert status["running"] == 0
    assert editor.applied == []


@HANGING
@pytest.mark.usefixtures("client")
async def test_fix_cancelled_from_progress(
    client: LanguageClient, project: Path, fault_server: FaultServer, lsp_settings: dict[str, Any]
) -> None:
    editor = editor_of(client)
    uri = (project / "util.py").as_uri()
    editor.open(uri, BUGGY)
    args = {"uri": uri, "range": span(0, 4), "version": 1}
    reply, token = await _start_hanging(client, fault_server, "codeconductor.fixWithTests", args)
    # The loop's progress reports offer the cancel button too (not only its begin).
    reports = [v for v in client.progress_reports[token] if isinstance(v, lsp.WorkDoneProgressReport)]
    assert reports
    assert all(r.cancellable for r in reports)
    client.window_work_done_progress_cancel(lsp.WorkDoneProgressCancelParams(token=token))
    result = await asyncio.wait_for(reply, 10)
    assert result["status"] == "cancelled"
    assert result["applied"] is False
    await _assert_stopped(client, fault_server, token)
    assert editor.texts[uri] == BUGGY


@HANGING
@pytest.mark.usefixtures("client")
async def test_fix_cancelled_by_command(
    client: LanguageClient, project: Path, fault_server: FaultServer, lsp_settings: dict[str, Any]
) -> None:
    editor = editor_of(client)
    uri = (project / "util.py").as_uri()
    editor.open(uri, BUGGY)
    args = {"uri": uri, "range": span(0, 4)}
    reply, token = await _start_hanging(client, fault_server, "codeconductor.fixWithTests", args)
    status = await command(client, "codeconductor.status")
    assert status["running"] == 1
    (run_id,) = status["runs"]
    assert await command(client, "codeconductor.cancel", {"runId": run_id}) == {"cancelled": [run_id]}
    result = await asyncio.wait_for(reply, 10)
    assert result == {"runId": run_id, "status": "cancelled", "applied": False, "message": "cancelled"}
    await _assert_stopped(client, fault_server, token)


@HANGING
@pytest.mark.usefixtures("client")
async def test_fix_cancel_request(
    client: LanguageClient, project: Path, fault_server: FaultServer, lsp_settings: dict[str, Any]
) -> None:
    editor = editor_of(client)
    uri = (project / "util.py").as_uri()
    editor.open(uri, BUGGY)
    known = set(client.progress_reports)
    fault_server.clear_log()
    future = asyncio.ensure_future(
        client.protocol.send_request_async(
            lsp.WORKSPACE_EXECUTE_COMMAND,
            lsp.ExecuteCommandParams(
                command="codeconductor.fixWithTests", arguments=[{"uri": uri, "range": span(0, 4)}]
            ),
            msg_id="fix-to-cancel",
        )
    )
    await started_token(client, editor, known)
    await editor.wait_for(
        lambda: any(isinstance(r.body, dict) and r.body.get("model") == HANG for r in fault_server.requests),
        timeout=60,
    )
    client.protocol.notify(lsp.CANCEL_REQUEST, lsp.CancelParams(id="fix-to-cancel"))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(future, 10)
    await editor.wait_for(lambda: HANG in fault_server.disconnects, timeout=10)
    status = await command(client, "codeconductor.status")
    assert status["running"] == 0
    assert editor.applied == []


@HANGING
@pytest.mark.usefixtures("client")
async def test_generate_tests_cancelled_from_progress(
    client: LanguageClient, project: Path, fault_server: FaultServer, lsp_settings: dict[str, Any]
) -> None:
    editor = editor_of(client)
    uri = (project / "util.py").as_uri()
    editor.open(uri, BUGGY)
    args = {"uri": uri, "range": span(0, 4)}
    reply, token = await _start_hanging(client, fault_server, "codeconductor.generateTests", args)
    client.window_work_done_progress_cancel(lsp.WorkDoneProgressCancelParams(token=token))
    result = await asyncio.wait_for(reply, 10)
    assert result["status"] == "cancelled"
    assert result["applied"] is False
    await _assert_stopped(client, fault_server, token)
    assert not (project / "test_clamp_generated.py").exists()
