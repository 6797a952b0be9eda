"""Fixtures for the hardening suite: the eight-model faulty ensemble of :mod:`tests.support.faulty_ensemble` on
the fault-injection fake, and the editor-like LSP ``client`` of :mod:`tests.support.lsp_client`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.fault_server import Behaviour, FaultServer
from tests.support.faulty_ensemble import GOOD, GOOD_TEXT, ensemble_settings
from tests.support.lsp_client import client

__all__ = ["client", "hard_models", "lsp_settings"]


@pytest.fixture(scope="session")
def hard_models(fault_server: FaultServer) -> FaultServer:
    for name in GOOD:
        fault_server.add_model(name, text=GOOD_TEXT)
    for name in ("ok-hard-delay-a", "ok-hard-delay-b"):
        fault_server.add_model(name, text=GOOD_TEXT, behaviour=Behaviour.OK, delay_s=0.6)
    return fault_server


@pytest.fixture
def lsp_settings(hard_models: FaultServer) -> dict[str, Any]:
    return ensemble_settings(hard_models.url, list(GOOD))
