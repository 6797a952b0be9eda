"""Cancelling a long command stops every model call of it at once: the ensemble run (``codeconductor.run``), the
fix-until-green loop (``codeconductor.fixWithTests``) and test generation (``codeconductor.generateTests``), each
cancelled from its progress notification (``window/workDoneProgress/cancel``), with ``codeconductor.cancel``, or
with ``$/cancelRequest`` on the command. A model that never answers keeps the run going until it is cancelled;
the fault server records the abandoned connection."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcRequestCancelled
from pytest_lsp import LanguageClient

from tests.support import clamp
from tests.support.fault_server import Behaviour, FaultServer
from tests.support.lsp_client import command, editor_of, fenced, progress_of, settings_for, span, started_token

pytestmark = pytest.mark.timeout(180)

HANG = "hang-lsp-cancel"
WRONG = "ok-lsp-cancel-wrong"  # answers at once, with a candidate that fails the tests: the loop goes on
# (command, how it is cancelled)
CASES = [
    ("codeconductor.run", "progress"),
    ("codeconductor.run", "request"),
    ("codeconductor.run", "command"),
    ("codeconductor.fixWithTests", "progress"),
    ("codeconductor.fixWithTests", "command"),
    ("codeconductor.fixWithTests", "request"),
    ("codeconductor.generateTests", "progress"),
]


@pytest.fixture
def lsp_settings(fault_server: FaultServer) -> dict[str, Any]:
    fault_server.add_model(WRONG, text=fenced(clamp.WRONG))
    fault_server.add_model(HANG, behaviour=Behaviour.HANG)
    # Long time limits: only the cancel can end the run within the test's waits.
    return settings_for(fault_server.url, [WRONG, HANG], timeoutS=120, deadlineS=240)


def _cancel(client: LanguageClient, how: str, token: Any, msg_id: str, run_id: str) -> Any:
    """Cancel the run as ``how`` says; what ``codeconductor.cancel`` answers, if that is the way."""
    if how == "progress":
        client.window_work_done_progress_cancel(lsp.WorkDoneProgressCancelParams(token=token))
    elif how == "request":
        client.protocol.notify(lsp.CANCEL_REQUEST, lsp.CancelParams(id=msg_id))
    else:
        return command(client, "codeconductor.cancel", {"runId": run_id})
    return None


@pytest.mark.parametrize(("name", "how"), CASES, ids=[f"{n.removeprefix('codeconductor.')}-by-{h}" for n, h in CASES])
async def test_cancelling_stops_the_run(
    client: LanguageClient, project: Path, fault_server: FaultServer, name: str, how: str
) -> None:
    editor = editor_of(client)
    uri = (project / "util.py").as_uri()
    editor.open(uri, clamp.MODULE)
    arguments = {"uri": uri, "range": span(0, 4), "version": 1} | ({"task": "fix"} if name.endswith(".run") else {})
    known = set(client.progress_reports)
    fault_server.clear_log()
    msg_id = f"{name}-to-cancel-by-{how}"
    reply = asyncio.ensure_future(
        client.protocol.send_request_async(
            lsp.WORKSPACE_EXECUTE_COMMAND, lsp.ExecuteCommandParams(command=name, arguments=[arguments]), msg_id=msg_id
        )
    )
    token = await started_token(client, editor, known)
    # The hanging model has really been asked: the run is in flight (for the loop: in a round, past the baseline).
    await editor.wait_for(
        lambda: any(isinstance(r.body, dict) and r.body.get("model") == HANG for r in fault_server.requests),
        timeout=60,
    )
    status = await command(client, "codeconductor.status")
    assert status["running"] == 1
    (run_id,) = status["runs"]

    cancelling = _cancel(client, how, token, msg_id, run_id)
    if cancelling is not None:
        assert await cancelling == {"cancelled": [run_id]}
    if how == "request":
        with pytest.raises(JsonRpcRequestCancelled):
            await asyncio.wait_for(reply, 10)
    else:
        assert await asyncio.wait_for(reply, 10) == {
            "runId": run_id,
            "status": "cancelled",
            "applied": False,
            "message": "cancelled",
        }

    # Every model call stopped, the progress ended "cancelled", and nothing is left running or was written.
    await editor.wait_for(lambda: HANG in fault_server.disconnects, timeout=10)
    # A cancelled request is answered at once; the progress end may come just after the reply.
    await editor.wait_for(lambda: isinstance(progress_of(client, token)[-1], lsp.WorkDoneProgressEnd), timeout=10)
    *reports, end = progress_of(client, token)
    assert isinstance(end, lsp.WorkDoneProgressEnd)
    assert end.message == "cancelled"
    # Every progress message offered the cancel button (the loop's reports too, not only the begin).
    assert all(getattr(r, "cancellable", None) for r in reports)
    assert (await command(client, "codeconductor.status"))["running"] == 0
    assert editor.applied == []
    assert editor.texts[uri] == clamp.MODULE
    assert not (project / "test_clamp_generated.py").exists()
    # The status bar heard about the run starting and ending.
    await editor.wait_for(lambda: bool(editor.status) and editor.status[-1]["running"] == 0)
    assert any(s["running"] == 1 for s in editor.status)
