"""Benchmark: the language server under load, with faults, losing nothing.

Several editor sessions (each a real ``python -m codeconductor.server`` process with its own pygls client) fire ``codeconductor.run``
commands in waves (all runs of a wave at once, so they overlap), the waves spread over about a minute, at an ensemble of two real llama.cpp servers (the tiny
random GGUF of the tests, one thread each) plus the fault-injection FAKE server (``tests.support.fault_server``):
two fake models answering after a delay and two *declared* failures (HTTP 500, connection dropped mid-answer).

Reported: per-run latency (p50/p90/p99/max) and, side by side in the same run, the latency of the same run made
alone (one at a time, after the warm-up), runs answered, undeclared failures (a run that did not end
``applied``, or any model other than the declared failures not answering: must be 0), declared failures seen, and
each server's RSS after a warm-up run and after the load (growth beyond noise would be a leak). Everything runs on
127.0.0.1 and stops by itself (a hard bound of ``3 x duration + 180 s``).

    python -m bench.load [--json] [--runs 100] [--clients 4] [--waves 4] [--duration 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient
from rich.console import Console
from rich.table import Table

from bench._client import start_client
from tests.support.fault_server import Behaviour, FaultServer
from tests.support.gguf_tiny import write_tiny_gguf
from tests.support.llama_server import LlamaServer, start_llama_server

__all__ = ["main"]

FIXED = "def add(a, b):\n    return a + b\n"
TEXT = "import os\n\n\ndef add(a, b):\n    return a - b\n\n\ndef other(x):\n    return x * 2\n"
DECLARED_FAILURES = {"http500": "http_500", "drop": "stream_closed"}
FAKE_OK = {"ok-load-a": 0.2, "ok-load-b": 0.5}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _rss_mb(pid: int) -> float:
    rss: int = psutil.Process(pid).memory_info().rss
    return rss / (1024 * 1024)


def _settings(llamas: list[LlamaServer], fake: FaultServer) -> dict[str, Any]:
    return {
        "endpoints": [{"url": s.url, "kind": "openai"} for s in llamas] + [{"url": fake.url, "kind": "openai"}],
        "probeLocal": False,
        "embedded": "off",
        "includeModels": [s.model_name for s in llamas] + list(FAKE_OK) + list(DECLARED_FAILURES),
        "maxTokens": 12,
        "timeoutS": 60,
        "deadlineS": 120,
        "perEndpointConcurrency": 4,
        "verify": False,
        "history": False,
        "discoveryTtlS": 3600,
        "apply": "auto",  # the load client applies every edit (no preview: it has no change annotations)
        "autoApplyConfidence": 0.0,
    }


async def _client(options: dict[str, Any]) -> LanguageClient:
    client, _ = await start_client([sys.executable, "-m", "codeconductor.server"], options, name="bench-load")
    return client


def _pid(client: LanguageClient) -> int:
    process = client._server
    assert process is not None
    return int(process.pid)


async def _one_run(client: LanguageClient, uri: str) -> tuple[float, dict[str, Any]]:
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=uri, language_id="python", version=1, text=TEXT)
        )
    )
    rng = {"start": {"line": 3, "character": 0}, "end": {"line": 5, "character": 0}}
    started = time.perf_counter()
    reply = await client.workspace_execute_command_async(
        lsp.ExecuteCommandParams(
            command="codeconductor.run", arguments=[{"uri": uri, "range": rng, "task": "fix", "version": 1}]
        )
    )
    elapsed = time.perf_counter() - started
    client.text_document_did_close(lsp.DidCloseTextDocumentParams(text_document=lsp.TextDocumentIdentifier(uri=uri)))
    return elapsed, reply if isinstance(reply, dict) else json.loads(json.dumps(reply, default=vars))


def _judge(reply: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(undeclared failures, declared failures seen) of one run."""
    bad: list[str] = []
    declared: list[str] = []
    if reply.get("status") != "applied":
        bad.append(f"run ended {reply.get('status')}: {reply.get('message')}")
    for answer in reply.get("result", {}).get("answers", []):
        name, status, reason = answer["model"]["name"], answer["status"], answer["reason"]
        if name in DECLARED_FAILURES and status == "failed" and reason == DECLARED_FAILURES[name]:
            declared.append(name)
        elif status != "answered":
            bad.append(f"{name}: {status} ({reason})")
    return bad, declared


async def _load(runs: int, clients_n: int, waves: int, duration: float) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="codeconductor-bench-load-"))
    gguf = write_tiny_gguf(folder / "tiny.gguf", seed=0)
    llamas: list[LlamaServer] = []
    clients: list[LanguageClient] = []
    fake = FaultServer([*DECLARED_FAILURES])
    for name, delay in FAKE_OK.items():
        fake.add_model(name, text=f"```python\n{FIXED}```\n", behaviour=Behaviour.OK, delay_s=delay)
    fake.start()
    try:
        for i in range(2):
            llamas.append(start_llama_server(gguf, alias=f"tiny-{i}", n_ctx=2048, log_dir=folder))
        options = _settings(llamas, fake)
        clients = [await _client(options) for _ in range(clients_n)]
        # Warm-up: one run per session (imports, discovery, first prompt), then the baseline memory.
        for i, client in enumerate(clients):
            _, reply = await _one_run(client, f"file:///tmp/codeconductor-bench-load/warm-{i}.py")
            bad, _ = _judge(reply)
            if bad:
                raise RuntimeError(f"warm-up run failed: {bad}")
        # The same run alone, one at a time: the baseline for the latency under load (same servers, same run).
        solo = []
        for i, client in enumerate(clients * 2):
            elapsed, _ = await _one_run(client, f"file:///tmp/codeconductor-bench-load/solo-{i}.py")
            solo.append(elapsed)
        solo_s = statistics.median(solo)
        rss_before = [_rss_mb(_pid(c)) for c in clients]

        latencies: list[float] = []
        undeclared: list[str] = []
        declared: dict[str, int] = dict.fromkeys(DECLARED_FAILURES, 0)
        applied = 0
        in_flight = peak = 0
        per_wave = -(-runs // max(1, waves))
        gap = duration / max(1, waves - 1)

        async def fire(k: int) -> None:
            nonlocal applied, in_flight, peak
            await asyncio.sleep((k // per_wave) * gap)  # a wave starts all its runs at once
            client = clients[k % clients_n]
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                elapsed, reply = await _one_run(client, f"file:///tmp/codeconductor-bench-load/run-{k}.py")
            finally:
                in_flight -= 1
            latencies.append(elapsed)
            bad, seen = _judge(reply)
            undeclared.extend(f"run {k}: {b}" for b in bad)
            for name in seen:
                declared[name] += 1
            applied += reply.get("status") == "applied"

        wave_rss: list[float] = []  # the servers' largest RSS just before each later wave starts

        async def sample() -> None:
            for w in range(1, waves):
                await asyncio.sleep(gap - 0.05 if w == 1 else gap)
                wave_rss.append(max(_rss_mb(_pid(c)) for c in clients))

        started = time.perf_counter()
        async with asyncio.timeout(3 * duration + 180):
            await asyncio.gather(sample(), *(fire(k) for k in range(runs)))
        wall = time.perf_counter() - started
        await asyncio.sleep(1.0)  # let the last responses' buffers go
        rss_after = [_rss_mb(_pid(c)) for c in clients]
        return {
            "runs": runs,
            "clients": clients_n,
            "waves": waves,
            "peak_runs_in_flight": peak,
            "models_per_run": len(options["includeModels"]),
            "wall_s": round(wall, 2),
            "applied": applied,
            "undeclared_failures": len(undeclared),
            "undeclared_examples": undeclared[:5],
            "declared_failures": declared,
            "latency_s": {
                "p50": round(_pct(latencies, 0.50), 3),
                "p90": round(_pct(latencies, 0.90), 3),
                "p99": round(_pct(latencies, 0.99), 3),
                "max": round(max(latencies), 3),
                "mean": round(statistics.fmean(latencies), 3),
                "alone_median": round(solo_s, 3),
            },
            "p50_vs_alone": round(_pct(latencies, 0.50) / solo_s, 2),
            "rss_mb_before": [round(x, 1) for x in rss_before],
            "rss_mb_after": [round(x, 1) for x in rss_after],
            "rss_growth_mb_max": round(max(a - b for a, b in zip(rss_after, rss_before, strict=True)), 1),
            # Growth after the first wave: a leak keeps growing wave after wave; warm-up costs do not.
            "rss_mb_max_before_each_later_wave": [round(x, 1) for x in wave_rss],
            "rss_growth_mb_after_first_wave": round(max(rss_after) - wave_rss[0], 1) if wave_rss else None,
        }
    finally:
        for client in clients:
            try:
                await asyncio.wait_for(client.shutdown_async(None), 10)
                client.exit(None)
                await asyncio.wait_for(client.stop(), 10)
            except Exception:  # a stuck session must not keep the others (and the servers) alive
                if client._server is not None and client._server.returncode is None:
                    client._server.kill()
        for server in llamas:
            server.stop()
        fake.stop()


def _table(out: dict[str, Any]) -> Table:
    table = Table(
        title=f"bench.load: {out['runs']} runs from {out['clients']} LSP sessions, {out['models_per_run']} models each"
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    lat = out["latency_s"]
    rows = [
        ("wall time (s)", f"{out['wall_s']:.1f}"),
        ("waves / peak runs in flight", f"{out['waves']} / {out['peak_runs_in_flight']}"),
        ("runs applied", f"{out['applied']}/{out['runs']}"),
        ("undeclared failures", str(out["undeclared_failures"])),
        ("declared failures (http500, drop)", ", ".join(f"{k}={v}" for k, v in out["declared_failures"].items())),
        ("latency of one run alone (s, median)", f"{lat['alone_median']:.2f}"),
        ("latency p50 / p90 (s)", f"{lat['p50']:.2f} / {lat['p90']:.2f}"),
        ("p50 under load / alone", f"{out['p50_vs_alone']:.1f}x"),
        ("latency p99 / max (s)", f"{lat['p99']:.2f} / {lat['max']:.2f}"),
        ("server RSS before (MB)", ", ".join(f"{x:.0f}" for x in out["rss_mb_before"])),
        ("server RSS after (MB)", ", ".join(f"{x:.0f}" for x in out["rss_mb_after"])),
        ("max RSS growth (MB)", f"{out['rss_growth_mb_max']:+.1f}"),
        ("max RSS before waves 2.. (MB)", ", ".join(f"{x:.1f}" for x in out["rss_mb_max_before_each_later_wave"])),
        ("RSS growth after wave 1 (MB)", f"{out['rss_growth_mb_after_first_wave']:+.1f}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--waves", type=int, default=4, help="runs start in this many waves of concurrent runs")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds from the first wave to the last")
    args = parser.parse_args(argv)
    out = asyncio.run(_load(args.runs, args.clients, args.waves, args.duration))
    if args.json:
        print(json.dumps(out))
    else:
        Console().print(_table(out))
        for example in out["undeclared_examples"]:
            Console().print(f"[red]{example}[/red]")


if __name__ == "__main__":
    main()
