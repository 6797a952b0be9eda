"""Settings from ``initializationOptions``, ``workspace/configuration`` and ``didChangeConfiguration``: valid
ones take effect, invalid ones are named in a message and the previous valid settings stay."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.support.fault_server import FaultServer
from tests.support.lsp_client import SERVER, attach_editor, command, editor_of, params, settings_for


async def _names(client: LanguageClient) -> list[str]:
    listed = await command(client, "codeconductor.refreshModels")
    return sorted(m["name"] for m in listed["models"])


async def test_initialization_options_are_used(client: LanguageClient) -> None:
    assert await _names(client) == ["ok-lsp-a", "ok-lsp-b", "ok-lsp-c", "ok-lsp-d"]
    assert not [m for m in client.messages if m.type == lsp.MessageType.Error]


async def test_did_change_configuration_valid_then_invalid(client: LanguageClient, lsp_models: FaultServer) -> None:
    client.workspace_did_change_configuration(
        lsp.DidChangeConfigurationParams(settings={"codeconductor": settings_for(lsp_models.url, ["ok-lsp-a"])})
    )
    await editor_of(client).wait_for(lambda: any("didChangeConfiguration" in m.message for m in client.log_messages))
    assert await _names(client) == ["ok-lsp-a"]

    client.workspace_did_change_configuration(
        lsp.DidChangeConfigurationParams(settings={"codeconductor": {"timeoutS": -1, "maxModels": "many"}})
    )
    await editor_of(client).wait_for(lambda: any(m.type == lsp.MessageType.Error for m in client.messages))
    error = next(m for m in client.messages if m.type == lsp.MessageType.Error)
    assert "timeout_s" in error.message
    assert "max_models" in error.message
    assert "Keeping the previous settings" in error.message
    assert await _names(client) == ["ok-lsp-a"]  # the previous valid settings still apply


@pytest.fixture
def configured(lsp_models: FaultServer) -> dict[str, Any]:
    return {"codeconductor": settings_for(lsp_models.url, ["ok-lsp-b", "ok-lsp-c"])}


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def pulled(lsp_client: LanguageClient, configured: dict[str, Any]) -> Any:
    """A client whose ``workspace/configuration`` holds the settings, and whose initializationOptions are invalid."""
    lsp_client.set_configuration(configured["codeconductor"], section="codeconductor")
    attach_editor(lsp_client)
    await lsp_client.initialize_session(params({"timeoutS": "soon"}))
    yield
    await lsp_client.shutdown_session()


async def test_workspace_configuration_wins_and_bad_init_options_are_named(pulled: LanguageClient) -> None:
    client = pulled
    await editor_of(client).wait_for(lambda: any("workspace/configuration" in m.message for m in client.log_messages))
    error = next(m for m in client.messages if m.type == lsp.MessageType.Error)
    assert "initializationOptions" in error.message
    assert "timeout_s" in error.message
    assert await _names(client) == ["ok-lsp-b", "ok-lsp-c"]
