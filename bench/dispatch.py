"""Benchmark: what the dispatcher adds on top of the slowest model (the physical limit of a parallel ensemble).

N = 1, 4, 8 local model servers (on 127.0.0.1, in a subprocess) each answer after a fixed, different delay. An
ensemble run through the real dispatcher, provider and HTTP client cannot end before the slowest answer, so we
report the ensemble's wall time divided by the slowest delay (goal <= 1.02, <= 10 ms added) and, side by side in
the same run, the same N requests made as raw parallel httpx calls ("direct": the limit of this machine's event
loop and loopback, without provider parsing or dispatcher bookkeeping). With a quorum k (all servers give the same answer) the
wall time is compared with the k-th fastest delay.

    python -m bench.dispatch [--json] [--repeat 5]

The servers are a FAKE model API (a fixed answer after a fixed delay) - only what a timing benchmark needs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from codeconductor.ensemble.discovery import Discovery
from codeconductor.ensemble.dispatcher import Dispatcher
from codeconductor.ensemble.settings import Settings
from codeconductor.ensemble.types import AnswerStatus, ChatMessage, GenerationParams, ModelInfo, ProviderKind

__all__ = ["main"]

ANSWER = "```python\ndef add(a, b):\n    return a + b\n```"
CONFIGS: list[tuple[int, int | None]] = [(1, None), (4, None), (8, None), (8, 3)]


# -- the fake servers (run in a subprocess so their event loop does not share ours) -----------------------------


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            body = json.loads(await reader.readexactly(length)) if length else {}
            if method == "POST" and path.endswith("/chat/completions"):
                model = str(body.get("model", "delay-0ms"))
                await asyncio.sleep(int(model.removeprefix("delay-").removesuffix("ms")) / 1000)
                payload: dict[str, Any] = {
                    "id": "bench",
                    "object": "chat.completion",
                    "created": 0,
                    "model": model,
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}
                    ],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 12, "total_tokens": 17},
                }
            else:
                payload = {"object": "list", "data": []}
            data = json.dumps(payload).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(data)}\r\n\r\n".encode()
                + data
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
        pass  # the client went away, or we are shutting down
    finally:
        writer.close()


async def _serve(count: int) -> None:
    servers = [await asyncio.start_server(_handle, "127.0.0.1", 0) for _ in range(count)]
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    print(json.dumps(ports), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes stdin


# -- the measurements -------------------------------------------------------------------------------------------


async def _direct(client: httpx.AsyncClient, models: list[ModelInfo], needed: int) -> float:
    """The same requests as raw parallel httpx calls, waiting for the ``needed`` fastest: this machine's limit."""
    started = time.perf_counter()
    calls = [
        asyncio.ensure_future(
            client.post(
                f"{m.endpoint}/v1/chat/completions",
                json={"model": m.name, "messages": [{"role": "user", "content": "hi"}]},
            )
        )
        for m in models
    ]
    for count, call in enumerate(asyncio.as_completed(calls), start=1):
        (await call).raise_for_status()
        if count == needed:
            break
    elapsed = time.perf_counter() - started
    for call in calls:
        call.cancel()
    await asyncio.gather(*calls, return_exceptions=True)
    return elapsed


async def _measure(ports: list[int], repeat: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    settings = Settings(probe_local=False, embedded="off", per_endpoint_concurrency=1, timeout_s=10, deadline_s=20)
    messages = [ChatMessage(role="user", content="add two numbers")]
    async with httpx.AsyncClient(timeout=10) as client:
        discovery = Discovery(settings, client, local_endpoints=())
        for n, quorum in CONFIGS:
            delays_ms = [200 + round(300 * i / max(n - 1, 1)) for i in range(n)] if n > 1 else [300]
            models = [
                ModelInfo(name=f"delay-{d}ms", provider=ProviderKind.OPENAI, endpoint=f"http://127.0.0.1:{port}")
                for d, port in zip(delays_ms, ports, strict=False)
            ]
            dispatcher = Dispatcher(settings, discovery.provider_for)
            limit_s = sorted(delays_ms)[(quorum or n) - 1] / 1000
            walls: list[float] = []
            directs: list[float] = []
            params = GenerationParams(temperature=0, max_tokens=32)
            await dispatcher.run(models, lambda _m: messages, params=params)  # warm up connections
            for _ in range(repeat):
                started = time.perf_counter()
                answers = await dispatcher.run(models, lambda _m: messages, params=params, quorum=quorum)
                walls.append(time.perf_counter() - started)
                ok = sum(a.status is AnswerStatus.ANSWERED for a in answers)
                if ok < (quorum or n):
                    raise RuntimeError(f"only {ok} answers: {[a.error for a in answers]}")
                directs.append(await _direct(client, models, quorum or n))
            wall = statistics.median(walls)
            direct = statistics.median(directs)
            rows.append(
                {
                    "servers": n,
                    "quorum": quorum,
                    "limit_ms": round(limit_s * 1000, 1),
                    "wall_ms": round(wall * 1000, 1),
                    "direct_ms": round(direct * 1000, 1),
                    "ratio_vs_limit": round(wall / limit_s, 4),
                    "added_ms": round((wall - limit_s) * 1000, 1),
                    "ratio_vs_direct": round(wall / direct, 4),
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dispatch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeat", type=int, default=5, help="runs per configuration (median reported)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # internal: run the fake servers
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(_serve(args.serve))
        return 0
    count = max(n for n, _ in CONFIGS)
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.dispatch", "--serve", str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert server.stdout is not None
        ports = json.loads(server.stdout.readline())
        rows = asyncio.run(_measure(ports, args.repeat))
    finally:
        if server.stdin is not None:
            server.stdin.close()
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    if args.json:
        print(json.dumps({"benchmark": "dispatch", "repeat": args.repeat, "rows": rows}))
        return 0
    table = Table(title=f"dispatcher overhead (median of {args.repeat})")
    for column in ("N", "k", "limit ms", "wall ms", "direct ms", "wall/limit", "+ms", "wall/direct"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            str(row["servers"]),
            str(row["quorum"] or "-"),
            f"{row['limit_ms']:.0f}",
            f"{row['wall_ms']:.1f}",
            f"{row['direct_ms']:.1f}",
            f"{row['ratio_vs_limit']:.3f}",
            f"{row['added_ms']:.1f}",
            f"{row['ratio_vs_direct']:.3f}",
        )
    Console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
