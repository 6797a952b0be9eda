"""Benchmark: what the providers cost on top of the wire, and how fast they let go of a bad or cancelled answer.

Measured side by side in one run, on 127.0.0.1 only:

* **stream overhead**: a 32-token answer from a real llama.cpp server (tiny random model) read with bare httpx
  SSE parsing vs. through :class:`OpenAICompatProvider` (strict UTF-8, size cap, callbacks);
* **embedded vs server**: the same tiny model in-process (:class:`EmbeddedProvider`) vs. behind llama.cpp's HTTP
  server;
* **cancel**: time from ``task.cancel()`` until the provider call has ended, for HTTP (fake "slow" model) and
  embedded (until the model is free for the next request);
* **huge answer**: a 50 MB streamed answer read fully by bare httpx vs. refused by the provider at its size cap.

    python -m bench.providers [--json] [--repeat 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from codeconductor.ensemble.errors import ProviderProtocolError
from codeconductor.ensemble.providers import EmbeddedProvider, OpenAICompatProvider
from codeconductor.ensemble.types import ChatMessage, GenerationParams, ModelInfo, ProviderKind
from codeconductor.ensemble.weights import EmbeddedModelSpec
from tests.support.fault_server import FaultServer
from tests.support.gguf_tiny import write_tiny_gguf
from tests.support.llama_server import start_llama_server

__all__ = ["main"]

MESSAGES = [ChatMessage(role="user", content="Write a function that adds two numbers.")]
TOKENS = 32


async def _median_ms(fn: Callable[[], Awaitable[Any]], repeat: int) -> float:
    await fn()  # warm-up (connection, model load)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


async def _raw_stream(client: httpx.AsyncClient, url: str) -> str:
    body = {
        "model": "tiny",
        "messages": [{"role": m.role, "content": m.content} for m in MESSAGES],
        "max_tokens": TOKENS,
        "temperature": 0,
        "stream": True,
    }
    parts: list[str] = []
    async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                delta = json.loads(line[6:])["choices"][0]["delta"]
                parts.append(delta.get("content") or "")
    return "".join(parts)


async def _cancel_ms(
    start: Callable[[Callable[[str], None]], Awaitable[Any]], after: Callable[[], Awaitable[Any]]
) -> float:
    first = asyncio.Event()
    task = asyncio.ensure_future(start(lambda _t: first.set()))
    await first.wait()
    started = time.perf_counter()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await after()
    return (time.perf_counter() - started) * 1000


async def run(repeat: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="bench-providers-"))
    gguf = write_tiny_gguf(folder / "tiny.gguf")
    params = GenerationParams(max_tokens=TOKENS, temperature=0)
    results: dict[str, Any] = {"tokens": TOKENS, "repeat": repeat}
    with start_llama_server(gguf, alias="tiny", log_dir=folder) as server, FaultServer(["slow", "huge"]) as fake:
        async with httpx.AsyncClient(timeout=httpx.Timeout(60, connect=2)) as client:
            provider = OpenAICompatProvider(server.url, client)
            model = ModelInfo(name="tiny", provider=ProviderKind.OPENAI, endpoint=server.url)
            raw_ms = await _median_ms(lambda: _raw_stream(client, server.url), repeat)
            prov_ms = await _median_ms(lambda: provider.generate(model, MESSAGES, params, lambda _t: None), repeat)
            results["stream_raw_ms"] = raw_ms
            results["stream_provider_ms"] = prov_ms
            results["stream_overhead_ratio"] = prov_ms / raw_ms

            embedded = EmbeddedProvider([EmbeddedModelSpec("tiny", gguf, chat=True, family="llama")], n_ctx=512)
            emb_model = (await embedded.list_models())[0]
            emb_ms = await _median_ms(lambda: embedded.generate(emb_model, MESSAGES, params, lambda _t: None), repeat)
            results["embedded_ms"] = emb_ms
            results["embedded_vs_server_ratio"] = emb_ms / prov_ms

            slow_provider = OpenAICompatProvider(fake.url, client)
            slow = ModelInfo(name="slow", provider=ProviderKind.OPENAI, endpoint=fake.url)

            async def nothing() -> None:
                return None

            http_cancel = [
                await _cancel_ms(lambda cb: slow_provider.generate(slow, MESSAGES, params, cb), nothing)
                for _ in range(repeat)
            ]
            long = GenerationParams(max_tokens=450)
            one = GenerationParams(max_tokens=1)
            emb_cancel = [
                await _cancel_ms(
                    lambda cb: embedded.generate(emb_model, MESSAGES, long, cb),
                    lambda: embedded.generate(emb_model, MESSAGES, one),
                )
                for _ in range(repeat)
            ]
            one_ms = await _median_ms(lambda: embedded.generate(emb_model, MESSAGES, one), repeat)
            results["cancel_http_ms"] = statistics.median(http_cancel)
            results["cancel_embedded_ms"] = statistics.median(emb_cancel) - one_ms
            full_embedded_ms = await _median_ms(lambda: embedded.generate(emb_model, MESSAGES, long), 1)
            results["embedded_full_450_tokens_ms"] = full_embedded_ms
            await embedded.aclose()

            async def raw_huge() -> int:
                size = 0
                body = {"model": "huge", "prompt": "x", "stream": True}
                async with client.stream("POST", f"{fake.url}/v1/completions", json=body) as response:
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                return size

            huge = ModelInfo(name="huge", provider=ProviderKind.OPENAI, endpoint=fake.url, chat=False)

            async def provider_huge() -> None:
                try:
                    await slow_provider.generate(huge, MESSAGES, params, lambda _t: None)
                except ProviderProtocolError:
                    return
                raise AssertionError("huge answer was accepted")

            results["huge_raw_ms"] = await _median_ms(raw_huge, max(1, repeat // 3))
            results["huge_provider_refuse_ms"] = await _median_ms(provider_huge, max(1, repeat // 3))
            results["huge_ratio"] = results["huge_provider_refuse_ms"] / results["huge_raw_ms"]
    return results


def _table(r: dict[str, Any]) -> Table:
    table = Table(title=f"Providers ({r['tokens']}-token answers, median of {r['repeat']})")
    table.add_column("measurement")
    table.add_column("value", justify="right")
    table.add_row("stream, bare httpx (llama.cpp server)", f"{r['stream_raw_ms']:.1f} ms")
    table.add_row("stream, OpenAICompatProvider", f"{r['stream_provider_ms']:.1f} ms")
    table.add_row("  provider / bare", f"{r['stream_overhead_ratio']:.2f}x")
    table.add_row("embedded in-process, same model", f"{r['embedded_ms']:.1f} ms")
    table.add_row("  embedded / server", f"{r['embedded_vs_server_ratio']:.2f}x")
    table.add_row("cancel -> call ended (HTTP)", f"{r['cancel_http_ms']:.1f} ms")
    table.add_row("cancel -> model free (embedded)", f"{r['cancel_embedded_ms']:.1f} ms")
    table.add_row("  vs. letting 450 tokens finish", f"{r['embedded_full_450_tokens_ms']:.1f} ms")
    table.add_row("50 MB answer, bare httpx reads it all", f"{r['huge_raw_ms']:.1f} ms")
    table.add_row("50 MB answer, provider refuses at cap", f"{r['huge_provider_refuse_ms']:.1f} ms")
    table.add_row("  provider / bare", f"{r['huge_ratio']:.3f}x")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.repeat))
    if args.json:
        print(json.dumps(results))
    else:
        Console().print(_table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
