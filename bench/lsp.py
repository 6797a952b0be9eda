"""Benchmark: what the language server costs the editor, side by side with a minimal pygls server.

* ``textDocument/codeAction`` and ``textDocument/hover`` latency, p50/p99 over thousands of sequential requests,
  for CodeConductor's server and for ``bench.lsp_minimal`` (same requests, answered trivially), in the same run.
  Goal: p50 <= 2x minimal (listing code actions never calls a model).
* Start-up: process spawn to the ``initialize`` reply (goal <= 500 ms, and <= 1.2x minimal), the server's CPU time
  by then, and spawn to the first ``codeAction`` reply; the two servers started in turn.
* Idle memory: RSS of the server process after start-up and the request loops (goal <= 80 MB).
* Ensemble overhead: ``codeconductor.run`` through the server (progress, edit, diagnostics) vs calling
  ``Pipeline.run`` directly on the same request and models, median over repeats.

Models for the overhead run are the fault-injection FAKE model server (``tests.support.fault_server``, instant
fixed answers on 127.0.0.1): only the server's own cost is measured, not a model's.

    python -m bench.lsp [--json] [--requests 3000] [--repeat 15] [--starts 5] [--startup-only [--baseline DIR]]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient
from rich.console import Console
from rich.table import Table

from bench._client import start_client
from codeconductor.ensemble.context import build_context
from codeconductor.ensemble.pipeline import Pipeline
from codeconductor.ensemble.settings import parse_settings
from codeconductor.ensemble.types import Request, TaskKind
from tests.support.fault_server import FaultServer

__all__ = ["main"]

FIXED = "def add(a, b):\n    return a + b\n"
URI = "file:///tmp/codeconductor-bench/module.py"


def _document(functions: int = 60) -> str:
    parts = ["import os\nimport sys\n\n"]
    for i in range(functions):
        parts.append(f"def func_{i}(a, b):\n    '''Function {i}.'''\n    total = a + b\n    return total * {i}\n\n\n")
    return "".join(parts)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _requests(client: LanguageClient, text: str, n: int) -> dict[str, list[float]]:
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=URI, language_id="python", version=1, text=text)
        )
    )
    lines = len(text.splitlines())
    out: dict[str, list[float]] = {"codeAction": [], "hover": []}
    for i in range(n):
        line = (i * 7) % lines
        params = lsp.CodeActionParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI),
            range=lsp.Range(lsp.Position(line, 2), lsp.Position(line, 2)),
            context=lsp.CodeActionContext(diagnostics=[]),
        )
        t0 = time.perf_counter()
        await client.text_document_code_action_async(params)
        out["codeAction"].append(time.perf_counter() - t0)
    for i in range(n):
        line = (i * 7) % lines
        t0 = time.perf_counter()
        await client.text_document_hover_async(
            lsp.HoverParams(text_document=lsp.TextDocumentIdentifier(uri=URI), position=lsp.Position(line, 2))
        )
        out["hover"].append(time.perf_counter() - t0)
    return out


async def _stop(client: LanguageClient) -> None:
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()


def _cpu_ms(pid: int) -> float:
    """CPU time (user + system) process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


async def _start_once(cmd: list[str], options: dict[str, Any] | None, text: str) -> tuple[float, float, float]:
    """One fresh start: spawn -> ``initialize`` reply (s), the server's CPU time by then (ms, less sensitive to the
    machine's load than wall time), spawn -> reply to the first ``codeAction`` after didOpen (s)."""
    cpu: list[float] = []

    def at_reply(client: LanguageClient) -> None:
        assert client._server is not None
        cpu.append(_cpu_ms(client._server.pid))

    started = time.perf_counter()
    client, startup = await start_client(cmd, options, on_initialize_reply=at_reply)
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=URI, language_id="python", version=1, text=text)
        )
    )
    await client.text_document_code_action_async(
        lsp.CodeActionParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI),
            range=lsp.Range(lsp.Position(5, 2), lsp.Position(5, 2)),
            context=lsp.CodeActionContext(diagnostics=[]),
        )
    )
    first_action = time.perf_counter() - started
    await _stop(client)
    return startup, cpu[0], first_action


async def _startups(
    sides: list[tuple[list[str], dict[str, Any] | None]], starts: int, text: str
) -> list[dict[str, list[float]]]:
    """Fresh starts of each server, started in turn (A, B, A, B, ...) so that a change in the machine's load falls
    on all alike; the first round only warms the OS file cache."""
    times: list[dict[str, list[float]]] = [{"startup_ms": [], "cpu_ms": [], "first_action_ms": []} for _ in sides]
    for round_no in range(starts + 1):
        for i, (cmd, options) in enumerate(sides):
            startup, cpu, first_action = await _start_once(cmd, options, text)
            if round_no:
                times[i]["startup_ms"].append(startup * 1000)
                times[i]["cpu_ms"].append(cpu)
                times[i]["first_action_ms"].append(first_action * 1000)
    return times


async def _server_side(
    name: str,
    cmd: list[str],
    options: dict[str, Any] | None,
    text: str,
    *,
    n: int,
    startups: dict[str, list[float]],
) -> dict[str, Any]:
    client, _ = await start_client(cmd, options)
    assert client._server is not None  # started by start_client
    pid = client._server.pid
    await asyncio.sleep(0.5)  # let start-up discovery finish
    timings = await _requests(client, text, n)
    await asyncio.sleep(0.5)
    rss = _rss_mb(pid)
    await _stop(client)
    return {
        "server": name,
        "startup_ms": statistics.median(startups["startup_ms"]),
        "startup_min_ms": min(startups["startup_ms"]),
        "startup_cpu_ms": statistics.median(startups["cpu_ms"]),
        "first_action_ms": statistics.median(startups["first_action_ms"]),
        "rss_mb": rss,
        **{f"{k}_p50_ms": statistics.median(v) * 1000 for k, v in timings.items()},
        **{f"{k}_p99_ms": _pct(v, 0.99) * 1000 for k, v in timings.items()},
    }


async def _overhead(options: dict[str, Any], text: str, repeat: int) -> dict[str, float]:
    """Median wall time of the same fix through the server and through Pipeline.run directly."""
    settings = parse_settings(options)
    start, end = 3, 7
    request = Request(
        task=TaskKind.FIX, context=build_context(text, start, end, path="/tmp/codeconductor-bench/module.py")
    )
    direct: list[float] = []
    async with Pipeline(settings) as pipeline:
        await pipeline.models()
        for _ in range(repeat):
            t0 = time.perf_counter()
            await pipeline.run(request)
            direct.append(time.perf_counter() - t0)
    client, _ = await start_client([sys.executable, "-m", "codeconductor.server"], options)
    version = 1
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=URI, language_id="python", version=1, text=text)
        )
    )
    await client.workspace_execute_command_async(
        lsp.ExecuteCommandParams(command="codeconductor.listModels", arguments=[])
    )
    via: list[float] = []
    for _ in range(repeat):
        args = {
            "uri": URI,
            "range": {"start": {"line": start, "character": 0}, "end": {"line": end, "character": 0}},
            "task": "fix",
            "apply": False,
            "version": version,
        }
        t0 = time.perf_counter()
        await client.workspace_execute_command_async(
            lsp.ExecuteCommandParams(command="codeconductor.run", arguments=[args])
        )
        via.append(time.perf_counter() - t0)
    await _stop(client)
    d, v = statistics.median(direct), statistics.median(via)
    return {"direct_ms": d * 1000, "server_ms": v * 1000, "overhead_ms": (v - d) * 1000}


OURS = [sys.executable, "-m", "codeconductor.server"]
MINIMAL = [sys.executable, "-m", "bench.lsp_minimal"]


def _checkout_server(checkout: Path) -> list[str]:
    """The language server of another checkout (e.g. ``git worktree add /tmp/base main``), run from there."""
    return ["env", "-C", str(checkout), f"PYTHONPATH={checkout}", sys.executable, "-m", "codeconductor.server"]


async def _main(n: int, repeat: int, starts: int, startup_only: bool, baseline: Path | None) -> dict[str, Any]:
    text = _document()
    with FaultServer([], apis=("openai",)) as fake:
        for name in ("ok-bench-a", "ok-bench-b", "ok-bench-c"):
            fake.add_model(name, text=f"```python\n{FIXED}```\n")
        options = {
            "endpoints": [{"url": fake.url, "kind": "openai"}],
            "probeLocal": False,
            "embedded": "off",
            "verify": False,
            "history": False,
        }
        sides = [(OURS, options), (MINIMAL, None)]
        if startup_only and baseline is not None:
            sides.append((_checkout_server(baseline), options))
        ours_starts, minimal_starts, *baseline_starts = await _startups(sides, starts, text)
        if startup_only:
            named = [("codeconductor", ours_starts), ("minimal pygls", minimal_starts)]
            named += [(f"baseline {baseline}", side) for side in baseline_starts]
            medians = {name: {key: statistics.median(values) for key, values in side.items()} for name, side in named}
            minimal = medians["minimal pygls"]
            return {
                "starts": starts,
                "medians": medians,
                "ratios_to_minimal": {
                    name: {key: value / minimal[key] for key, value in side.items()}
                    for name, side in medians.items()
                    if name != "minimal pygls"
                },
            }
        ours = await _server_side("codeconductor", OURS, options, text, n=n, startups=ours_starts)
        minimal = await _server_side("minimal pygls", MINIMAL, None, text, n=n, startups=minimal_starts)
        overhead = await _overhead(options, text, repeat)
    ratios = {k.replace("_p50_ms", "_p50_ratio"): ours[k] / minimal[k] for k in ours if k.endswith("_p50_ms")}
    for key in ("startup_ms", "startup_cpu_ms", "first_action_ms"):
        ratios[key.replace("_ms", "_ratio")] = ours[key] / minimal[key]
    return {
        "requests": n,
        "repeat": repeat,
        "starts": starts,
        "servers": [ours, minimal],
        "ratios": ratios,
        "ensemble_run": overhead,
    }


def _table(report: dict[str, Any]) -> Table:
    table = Table(title=f"Language server cost ({report['requests']} requests each, sequential)")
    table.add_column("measurement")
    for server in report["servers"]:
        table.add_column(server["server"], justify="right")
    table.add_column("ratio", justify="right")
    rows = [
        ("codeAction p50 (ms)", "codeAction_p50_ms", "codeAction_p50_ratio"),
        ("codeAction p99 (ms)", "codeAction_p99_ms", None),
        ("hover p50 (ms)", "hover_p50_ms", "hover_p50_ratio"),
        ("hover p99 (ms)", "hover_p99_ms", None),
        ("start -> initialize reply, median (ms)", "startup_ms", "startup_ratio"),
        ("start -> initialize reply, best (ms)", "startup_min_ms", None),
        ("server CPU by the initialize reply, median (ms)", "startup_cpu_ms", "startup_cpu_ratio"),
        ("start -> first codeAction reply, median (ms)", "first_action_ms", "first_action_ratio"),
        ("idle RSS (MB)", "rss_mb", None),
    ]
    for label, key, ratio in rows:
        cells = [f"{s[key]:.2f}" for s in report["servers"]]
        table.add_row(label, *cells, f"{report['ratios'][ratio]:.2f}x" if ratio else "")
    run = report["ensemble_run"]
    table.add_row("ensemble run, Pipeline.run direct (ms)", f"{run['direct_ms']:.1f}", "", "")
    table.add_row("ensemble run, via codeconductor.run (ms)", f"{run['server_ms']:.1f}", "", "")
    table.add_row("server overhead per run (ms)", f"{run['overhead_ms']:.1f}", "", "")
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lsp", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--requests", type=int, default=3000, help="requests per method per server")
    parser.add_argument("--repeat", type=int, default=15, help="ensemble runs per side")
    parser.add_argument("--starts", type=int, default=5, help="fresh server starts timed per server")
    parser.add_argument("--startup-only", action="store_true", help="time the start-ups only (JSON)")
    parser.add_argument(
        "--baseline", type=Path, help="with --startup-only: also start the server of this checkout, in the same turns"
    )
    args = parser.parse_args(argv)
    report = asyncio.run(_main(args.requests, args.repeat, args.starts, args.startup_only, args.baseline))
    if args.json or args.startup_only:
        print(json.dumps(report))
    else:
        Console().print(_table(report))


if __name__ == "__main__":
    main()
