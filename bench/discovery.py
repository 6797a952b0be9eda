"""Benchmark: how long finding the models takes before the first request can go out.

Two situations, each measured in the same run:

* nothing listening on any of the usual local ports (goal <= 250 ms);
* the same, plus one configured endpoint on 127.0.0.1 that accepts connections but never answers (goal <= 1.2 s:
  the probe budget is 1 s).

Only 127.0.0.1 is contacted. By default the "usual ports" are stand-ins: as many ports as the real default list,
chosen free at run time, so the benchmark cannot touch a real server someone runs here; ``--default-ports`` probes
the real default ports (127.0.0.1:11434, :1234, :8080, :8000, :1337, :5000, :5001) instead.

    python -m bench.discovery [--json] [--repeat 5] [--default-ports]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from codeconductor.ensemble.discovery import DEFAULT_LOCAL_ENDPOINTS, PROBE_BUDGET_S, Discovery, LocalEndpoint
from codeconductor.ensemble.settings import Settings

__all__ = ["main"]

GOAL_NOTHING_S = 0.25
GOAL_SILENT_S = 1.2


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


async def _time_discovery(settings: Settings, local: Sequence[LocalEndpoint], repeat: int) -> tuple[float, Any]:
    times: list[float] = []
    statuses: Any = None
    for _ in range(repeat):
        # A fresh client each time, as a new CLI process or editor session would have.
        async with httpx.AsyncClient() as client:
            discovery = Discovery(settings, client, local_endpoints=local)
            started = time.perf_counter()
            await discovery.models(refresh=True)
            times.append(time.perf_counter() - started)
            statuses = await discovery.endpoints()
    return statistics.median(times), statuses


async def _measure(repeat: int, default_ports: bool) -> dict[str, Any]:
    if default_ports:
        local = list(DEFAULT_LOCAL_ENDPOINTS)
    else:
        ports = _free_ports(len(DEFAULT_LOCAL_ENDPOINTS))
        local = [
            LocalEndpoint(f"{e.name} (stand-in)", f"http://127.0.0.1:{port}")
            for e, port in zip(DEFAULT_LOCAL_ENDPOINTS, ports, strict=True)
        ]
    nothing = Settings(embedded="off")
    nothing_s, nothing_status = await _time_discovery(nothing, local, repeat)

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # the kernel completes connections; nobody ever reads or answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with_silent = Settings.model_validate({"embedded": "off", "endpoints": [{"url": url}]})
        silent_s, silent_status = await _time_discovery(with_silent, local, repeat)

    return {
        "benchmark": "discovery",
        "repeat": repeat,
        "endpoints": len(local),
        "default_ports": default_ports,
        "probe_budget_s": PROBE_BUDGET_S,
        "nothing_listening_ms": round(nothing_s * 1000, 1),
        "nothing_listening_goal_ms": GOAL_NOTHING_S * 1000,
        "nothing_listening_ratio_to_goal": round(nothing_s / GOAL_NOTHING_S, 3),
        "nothing_states": sorted({s.state for s in nothing_status}),
        "with_silent_endpoint_ms": round(silent_s * 1000, 1),
        "with_silent_endpoint_goal_ms": GOAL_SILENT_S * 1000,
        "with_silent_ratio_to_goal": round(silent_s / GOAL_SILENT_S, 3),
        "silent_endpoint_state": next(s.state for s in silent_status if s.url == url),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.discovery", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeat", type=int, default=5, help="runs per situation (median reported)")
    parser.add_argument("--default-ports", action="store_true", help="probe the real default ports on 127.0.0.1")
    args = parser.parse_args(argv)
    result = asyncio.run(_measure(args.repeat, args.default_ports))
    if args.json:
        print(json.dumps(result))
        return 0
    table = Table(title=f"discovery time (median of {args.repeat}, {result['endpoints']} local endpoints)")
    for column in ("situation", "ms", "goal ms", "ratio to goal", "states"):
        table.add_column(column, justify="right")
    table.add_row(
        "nothing listening",
        f"{result['nothing_listening_ms']:.1f}",
        f"{result['nothing_listening_goal_ms']:.0f}",
        f"{result['nothing_listening_ratio_to_goal']:.3f}",
        ", ".join(result["nothing_states"]),
    )
    table.add_row(
        "+ 1 silent endpoint",
        f"{result['with_silent_endpoint_ms']:.1f}",
        f"{result['with_silent_endpoint_goal_ms']:.0f}",
        f"{result['with_silent_ratio_to_goal']:.3f}",
        f"silent: {result['silent_endpoint_state']}",
    )
    Console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
