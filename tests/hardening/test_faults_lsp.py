"""Faults through the language server: while a run waits on hung and failing models the server keeps answering
hover, code actions and status; the run's response names each failed model and why; and afterwards no run, no
hung connection and no extra socket is left in the server process.

The misbehaving models are the fault-injection FAKE server (``tests.support.fault_server``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from tests.support.fault_server import FaultServer
from tests.support.faulty_ensemble import FAILING, GARBAGE, GOOD, connections, ensemble_settings, settle
from tests.support.lsp_client import FIXED, command, editor_of, span, started_token

URI = "file:///tmp/codeconductor-hardening/faults.py"
TEXT = "import os\n\n\ndef add(a, b):\n    return a - b\n\n\ndef other(x):\n    return x * 2\n"
FAULTY = [*GOOD, *FAILING, "garbage-utf8"]


@pytest.fixture
def lsp_settings(hard_models: FaultServer) -> dict[str, Any]:
    # Hung models are cut at 4 s: long enough to poke the server while the run waits on them.
    return ensemble_settings(hard_models.url, FAULTY, timeoutS=4, deadlineS=10)


def _server_pid(client: LanguageClient) -> int:
    process = client._server  # the subprocess pytest-lsp started
    assert process is not None
    return int(process.pid)


async def test_server_answers_during_a_faulty_run(client: LanguageClient, hard_models: FaultServer) -> None:
    editor = editor_of(client)
    editor.open(URI, TEXT)
    hard_models.clear_log()
    run = asyncio.ensure_future(
        command(client, "codeconductor.run", {"uri": URI, "range": span(3, 5), "task": "fix", "version": 1})
    )
    await started_token(client, editor)

    # The run is waiting on the hung models; the server answers everything else meanwhile.
    actions = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI),
            range=lsp.Range(lsp.Position(8, 4), lsp.Position(8, 4)),
            context=lsp.CodeActionContext(diagnostics=[]),
        )
    )
    assert actions
    assert any("Fix with ensemble" in a.title for a in actions)
    hover = await client.text_document_hover_async(
        lsp.HoverParams(text_document=lsp.TextDocumentIdentifier(uri=URI), position=lsp.Position(8, 4))
    )
    assert hover is None  # nothing stored there (and no model called for it)
    status = await command(client, "codeconductor.status")
    assert status["running"] == 1
    assert not run.done()

    reply = await run
    assert reply["status"] == "applied"
    assert FIXED.strip() in editor.texts[URI]
    outcomes = {a["model"]["name"]: (a["status"], a["reason"]) for a in reply["result"]["answers"]}
    assert outcomes == {
        **dict.fromkeys(GOOD, ("answered", None)),
        **FAILING,
        "garbage-utf8": GARBAGE["garbage-utf8"],
    }
    assert (reply["agree"], reply["answered"], reply["asked"]) == (3, 3, 8)
    assert (await command(client, "codeconductor.status"))["running"] == 0


async def test_no_connections_left_after_faulty_runs(client: LanguageClient, hard_models: FaultServer) -> None:
    editor = editor_of(client)
    pid, port = _server_pid(client), hard_models.port
    counts = []
    for i in range(3):
        uri = f"file:///tmp/codeconductor-hardening/faults-{i}.py"
        editor.open(uri, TEXT)
        hard_models.clear_log()
        reply = await command(client, "codeconductor.run", {"uri": uri, "range": span(3, 5), "task": "fix"})
        assert reply["status"] == "applied"
        # The hung calls were abandoned by the server: the fake saw both clients go away.
        assert await settle(lambda: {"hang", "stall"} <= set(hard_models.disconnects))
        counts.append(connections(pid, port, side="client"))
    # Idle keep-alive connections may stay pooled (at most one per model call that completed), but nothing
    # accumulates from run to run: hung, dropped and garbage connections are closed.
    assert counts[-1] <= counts[0] <= len(FAULTY)
    status = await command(client, "codeconductor.status")
    assert status == {"models": status["models"], "running": 0, "runs": []}
