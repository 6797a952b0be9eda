"""Fixtures for the hardening suite: the eight-model faulty ensemble on the fault-injection fake, and probes of
open connections (psutil) used to show that nothing leaks after a run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import psutil
import pytest

from tests.support.fault_server import Behaviour, FaultServer

GOOD = ("ok-hard-a", "ok-hard-b", "ok-hard-c")
FIXED = "def add(a, b):\n    return a + b\n"
GOOD_TEXT = f"```python\n{FIXED}```\n"
# Which model misbehaves how, and the reason the result must name for it.
FAILING: dict[str, tuple[str, str]] = {
    "hang": ("timeout", "timeout"),  # never answers
    "stall": ("timeout", "timeout"),  # headers and a first chunk, then nothing
    "http500": ("failed", "http_500"),
    "drop": ("failed", "stream_closed"),
}
GARBAGE: dict[str, tuple[str, str]] = {
    "garbage-utf8": ("failed", "protocol"),
    "garbage-json": ("failed", "protocol"),
    "huge": ("failed", "protocol"),  # 50 MB: refused at the answer-size cap, not buffered
}


@pytest.fixture(scope="session")
def hard_models(fault_server: FaultServer) -> FaultServer:
    for name in GOOD:
        fault_server.add_model(name, text=GOOD_TEXT)
    for name in ("ok-hard-delay-a", "ok-hard-delay-b"):
        fault_server.add_model(name, text=GOOD_TEXT, behaviour=Behaviour.OK, delay_s=0.6)
    return fault_server


def ensemble_settings(url: str, include: list[str], **extra: Any) -> dict[str, Any]:
    """Settings (camelCase, as an editor sends them) for an ensemble of ``include`` on the fault server."""
    data: dict[str, Any] = {
        "endpoints": [{"url": url, "kind": "openai"}],
        "probeLocal": False,
        "embedded": "off",
        "includeModels": include,
        "verify": False,
        "history": False,
        "timeoutS": 3,
        "deadlineS": 8,
        "perEndpointConcurrency": 8,
        "discoveryTtlS": 600,
    }
    data.update(extra)
    return data


def connections(pid: int, port: int, *, side: str) -> int:
    """Established TCP connections of process ``pid`` to (``side="client"``) or on (``"server"``) ``port``."""
    count = 0
    for conn in psutil.Process(pid).net_connections(kind="tcp"):
        if conn.status != psutil.CONN_ESTABLISHED:
            continue
        addr = conn.raddr if side == "client" else conn.laddr
        if addr and addr.port == port:
            count += 1
    return count


async def settle(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Wait until ``predicate()`` holds (connections close asynchronously); its final value."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return predicate()
        await asyncio.sleep(0.05)
    return True


# The editor-like pytest-lsp client of the language-server tests (real ``python -m server`` subprocess).
from tests.lsp.conftest import client  # noqa: E402, F401


@pytest.fixture
def lsp_settings(hard_models: FaultServer) -> dict[str, Any]:
    return ensemble_settings(hard_models.url, list(GOOD))
