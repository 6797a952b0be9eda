"""Fixtures for the end-to-end language-server tests (pytest-lsp): the editor-like ``client`` of
:mod:`tests.support.lsp_client` (the real server in a subprocess), and model endpoints: the fault-injection fake
with models whose answers the tests choose, or real llama.cpp servers.

Tests choose the server's settings by overriding the ``lsp_settings`` fixture.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import clamp
from tests.support.fault_server import Behaviour, FaultServer
from tests.support.lsp_client import ALTERNATIVE, FIXED, WORKSPACE, client, fenced, settings_for

__all__ = ["client", "lsp_models", "lsp_settings", "project"]


@pytest.fixture(scope="session")
def lsp_models(fault_server: FaultServer) -> FaultServer:
    """Models on the fault server for these tests: three agree on FIXED, one dissents, one slow, one hanging."""
    for name in ("ok-lsp-a", "ok-lsp-b", "ok-lsp-c"):
        fault_server.add_model(name, text=fenced(FIXED))
    fault_server.add_model("ok-lsp-d", text=fenced(ALTERNATIVE))
    fault_server.add_model("hang-lsp", behaviour=Behaviour.HANG)
    fault_server.add_model("slow-lsp", behaviour=Behaviour.SLOW, text=fenced(FIXED))
    review = '[{"line": 2, "severity": "error", "message": "subtracts instead of adding", "fix": "    return a + b"}]'
    for name in ("ok-lsp-review-a", "ok-lsp-review-b"):
        fault_server.add_model(name, text=review)
    return fault_server


@pytest.fixture
def lsp_settings(lsp_models: FaultServer) -> dict[str, Any]:
    return settings_for(lsp_models.url, ["ok-lsp-a", "ok-lsp-b", "ok-lsp-c", "ok-lsp-d"])


@pytest.fixture
def project() -> Iterator[Path]:
    """A real folder under the workspace root holding the clamp module and its tests (:func:`clamp.write_module`)."""
    folder = clamp.write_module(WORKSPACE / f"fixproj-{uuid.uuid4().hex[:8]}")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
