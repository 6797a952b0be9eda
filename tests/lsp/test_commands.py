"""The commands any client can call: listModels/refreshModels, ask, status, cancel with nothing running, and
the command list advertised in the capabilities."""

from __future__ import annotations

from pytest_lsp import LanguageClient

from tests.support.fault_server import FaultServer
from tests.support.lsp_client import BUGGY, command, editor_of

URI = "file:///tmp/codeconductor-lsp-tests/commands.py"
EXPECTED = {
    "codeconductor.run",
    "codeconductor.review",
    "codeconductor.ask",
    "codeconductor.applySuggestion",
    "codeconductor.listModels",
    "codeconductor.refreshModels",
    "codeconductor.cancel",
    "codeconductor.status",
}


async def test_commands_are_advertised(client: LanguageClient) -> None:
    result = editor_of(client).init_result
    assert result is not None
    provider = result.capabilities.execute_command_provider
    assert result.capabilities.hover_provider
    assert result.capabilities.code_action_provider
    assert provider is not None
    assert set(provider.commands) >= EXPECTED


async def test_list_and_refresh_models(client: LanguageClient, lsp_models: FaultServer) -> None:
    listed = await command(client, "codeconductor.listModels")
    names = sorted(m["name"] for m in listed["models"])
    assert names == ["ok-lsp-a", "ok-lsp-b", "ok-lsp-c", "ok-lsp-d"]
    assert all(m["endpoint"].startswith("http://127.0.0.1:") for m in listed["models"])
    lsp_models.clear_log()
    refreshed = await command(client, "codeconductor.refreshModels")
    assert sorted(m["name"] for m in refreshed["models"]) == names
    assert any(r.path.endswith("/models") for r in lsp_models.requests)  # really asked the endpoint again
    status = await command(client, "codeconductor.status")
    assert status == {"models": 4, "running": 0, "runs": []}
    editor = editor_of(client)
    await editor.wait_for(lambda: any(s["models"] == 4 for s in editor.status))


async def test_ask_returns_answer_and_result(client: LanguageClient) -> None:
    editor_of(client).open(URI, BUGGY)
    reply = await command(
        client,
        "codeconductor.ask",
        {
            "uri": URI,
            "question": "What does add do?",
            "range": {"start": {"line": 3, "character": 0}, "end": {"line": 5, "character": 0}},
        },
    )
    assert reply["status"] == "answered"
    assert "return a + b" in reply["answer"]
    assert reply["result"]["request"]["task"] == "ask"
    assert reply["result"]["request"]["instruction"] == "What does add do?"
    assert "return a - b" in reply["result"]["request"]["context"]["selection"]
    assert len(reply["result"]["answers"]) == 4


async def test_ask_without_a_document(client: LanguageClient) -> None:
    reply = await command(client, "codeconductor.ask", {"question": "How do I add two numbers?"})
    assert reply["status"] == "answered"
    assert reply["answer"]


async def test_cancel_with_nothing_running(client: LanguageClient) -> None:
    assert await command(client, "codeconductor.cancel") == {"cancelled": []}
    assert await command(client, "codeconductor.cancel", {"runId": "r999"}) == {"cancelled": []}


async def test_apply_suggestion_for_unknown_result_is_gone(client: LanguageClient) -> None:
    out = await command(client, "codeconductor.applySuggestion", {"runId": "r999"})
    assert out["status"] == "gone"
    assert out["applied"] is False
