"""Settings from the editor: ``initializationOptions``, ``workspace/configuration`` (section ``codeconductor``)
and ``workspace/didChangeConfiguration``; all validated by the same model as the CLI's. Invalid settings are
named in a message and the previous valid ones kept. Also starts model discovery in the background after
initialisation so the status bar shows how many models are there.
"""

from __future__ import annotations

import logging
from typing import Any

from lsprotocol import types as lsp

from ..server import CodeConductorServer

__all__ = ["SECTION", "register"]

logger = logging.getLogger(__name__)

SECTION = "codeconductor"


def _section(data: Any) -> Any:
    """Settings may come nested under ``codeconductor`` (VS Code style) or as the object itself."""
    if isinstance(data, dict) and isinstance(data.get(SECTION), dict):
        return data[SECTION]
    return data


async def pull_configuration(ls: CodeConductorServer) -> None:
    """Ask the client for section ``codeconductor``; a non-empty object overrides ``initializationOptions``."""
    workspace = ls.client_capabilities.workspace
    if workspace is None or not workspace.configuration:
        return
    try:
        reply = await ls.ask_client(
            lambda: ls.workspace_configuration_async(
                lsp.ConfigurationParams(items=[lsp.ConfigurationItem(section=SECTION)])
            )
        )
    except Exception as exc:  # a client that fails here still has its initializationOptions
        logger.warning("workspace/configuration failed: %s", exc)
        return
    # pygls hands the reply over as a list or a tuple, depending on the converter.
    value = reply[0] if isinstance(reply, list | tuple) and reply else None
    value = _plain(value)
    if isinstance(value, dict) and value:
        ls.apply_settings({**ls.init_options, **value}, source="workspace/configuration")


def _plain(value: Any) -> Any:
    """Plain dicts/lists from what pygls may have turned into namedtuples (objects it had no type for)."""
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


async def _discover(ls: CodeConductorServer) -> None:
    try:
        await ls.refresh_models(refresh=False)
    except Exception:  # discovery problems are reported per endpoint; the server stays up
        logger.exception("model discovery failed")


def register(ls: CodeConductorServer) -> None:
    @ls.feature(lsp.INITIALIZE)
    def on_initialize(server: CodeConductorServer, params: lsp.InitializeParams) -> None:
        # Validated at `initialized`, after the reply (the reply needs no settings; validating them imports the
        # settings model): the client gets its answer as fast as from a server that does nothing.
        server.defer_initial_settings(_section(_plain(params.initialization_options)))

    @ls.feature(lsp.INITIALIZED)
    async def on_initialized(server: CodeConductorServer, params: lsp.InitializedParams) -> None:
        server.apply_initial_settings()  # (or earlier: whatever reads server.settings first applies them)
        await pull_configuration(server)
        server.spawn(_discover(server))

    @ls.feature(lsp.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def on_change(server: CodeConductorServer, params: lsp.DidChangeConfigurationParams) -> None:
        data = _plain(params.settings)
        if isinstance(data, dict) and isinstance(data.get(SECTION), dict):
            if server.apply_settings({**server.init_options, **data[SECTION]}, source="didChangeConfiguration"):
                server.spawn(_discover(server))
            return
        await pull_configuration(server)
        server.spawn(_discover(server))
