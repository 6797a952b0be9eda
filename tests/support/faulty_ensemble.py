"""The hardening suite's faulty ensemble on the fault-injection fake: which models answer well and how the others
fail, settings with short time limits, and probes of open connections (psutil) used to show that nothing leaks
after a run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import psutil

from tests.support.lsp_client import FIXED, fenced, settings_for

GOOD = ("ok-hard-a", "ok-hard-b", "ok-hard-c")
GOOD_TEXT = fenced(FIXED)
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


def ensemble_settings(url: str, include: list[str], **extra: Any) -> dict[str, Any]:
    """:func:`~tests.support.lsp_client.settings_for` with this suite's short time limits: a model that hangs
    fails within seconds."""
    return settings_for(url, include, **{"timeoutS": 3, "deadlineS": 8, **extra})


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
