"""Benchmark: a team's simulated users against 1, 2 and 4 replicas of one model, behind a real LiteLLM proxy and
directly, side by side in one run; then a replica killed (SIGKILL) in the middle of the load.

Real parts on 127.0.0.1: llama.cpp servers (``python -m llama_cpp.server``, one thread each) on the real SmolLM2-135M
weights (the tiny random GGUF of the tests when SmolLM2 is not installed), and one LiteLLM proxy
(``.venv-litellm``, ``requirements/litellm-proxy.txt``) with model groups ``smol-1``, ``smol-2`` and ``smol-4``
(routing ``least-busy``, no retries of its own). Each simulated user is its own :class:`codeconductor.ensemble.pipeline.Pipeline`
(as each developer runs their own CodeConductor) doing ``--runs`` ensemble runs of ``--samples`` samples one after
the other; all users start at once. "direct" points the users at the same replicas without the gateway, so
CodeConductor's own replica dispatch spreads the samples.

Reported per configuration: runs/s, p50/p95 run latency, answers lost; the 1 -> 2 -> 4 replica throughput ratios;
and the gateway's overhead as a ratio of a run's wall time, measured two ways in the same run: one user alone
(gateway p50 vs direct p50), and LiteLLM's own ``x-litellm-overhead-duration-ms`` per call under load. The machine's
cores and load average are printed: on a 2-core machine shared with other work, more than 2 single-threaded replicas
cannot add throughput, which is the CPU's limit, not the design's.

    python -m bench.team [--json] [--users 20] [--runs 1] [--samples 1] [--max-tokens 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from codeconductor.ensemble.pipeline import Pipeline
from codeconductor.ensemble.settings import Settings
from codeconductor.ensemble.types import AnswerStatus, CodeContext, ModelInfo, Request
from tests.support.gguf_tiny import write_tiny_gguf
from tests.support.litellm_proxy import LiteLLMProxy
from tests.support.llama_server import LlamaServer, start_llama_server

__all__ = ["main"]

KEY_ENV = "CC_BENCH_LITELLM_KEY"
CODE = "def add(a, b):\n    return a - b\n"
REPLICAS = (1, 2, 4)


def _weights(folder: Path) -> tuple[Path, str]:
    from codeconductor.ensemble.weights import find_smollm2

    smol = find_smollm2()
    if smol is not None:
        return smol, "SmolLM2-135M-Instruct Q4_1"
    return write_tiny_gguf(folder / "tiny.gguf"), "tiny random GGUF (SmolLM2 not installed)"


def _settings(endpoints: list[dict[str, str]], model: str, args: argparse.Namespace) -> Settings:
    return Settings.model_validate(
        {
            "endpoints": endpoints,
            "probe_local": False,
            "embedded": "off",
            "history": False,
            "include_models": [model],
            "max_tokens": args.max_tokens,
            "samples_per_model": args.samples,
            "verify": False,
            "timeout_s": 120,
            "deadline_s": 600,
            "discovery_ttl_s": 3600,
        }
    )


def _request() -> Request:
    return Request.model_validate(
        {"task": "fix", "context": CodeContext(selection=CODE, end_line=2), "instruction": "fix the bug"}
    )


_DISCOVERED: dict[str, list[ModelInfo]] = {}


async def _discover(settings: Settings) -> list[ModelInfo]:
    key = settings.model_dump_json()
    if key not in _DISCOVERED:
        async with Pipeline(settings) as pipeline:
            found = await pipeline.models()
        if not found:
            raise RuntimeError(f"no model found at {[e.url for e in settings.endpoints]}")
        _DISCOVERED[key] = found
    return _DISCOVERED[key]


async def _user(
    settings: Settings, runs: int, ready: list[int], start: asyncio.Event, out: list[dict[str, Any]]
) -> None:
    async with Pipeline(settings) as pipeline:
        # Discovered once per configuration (20 users probing a busy gateway at once is not what is measured).
        models = await _discover(settings)
        ready.append(1)
        await start.wait()
        for _ in range(runs):
            began = time.perf_counter()
            result = await pipeline.run(_request(), models=models)
            wall = time.perf_counter() - began
            out.append(
                {
                    "wall_s": wall,
                    "answers": len(result.answers),
                    "lost": sum(a.status is not AnswerStatus.ANSWERED for a in result.answers),
                    "replicas": sorted({a.replica or "" for a in result.answers}),
                }
            )


async def _load(settings: Settings, users: int, runs: int, kill: LlamaServer | None = None) -> dict[str, Any]:
    start = asyncio.Event()
    out: list[dict[str, Any]] = []
    ready: list[int] = []
    await _discover(settings)
    tasks = [asyncio.create_task(_user(settings, runs, ready, start, out)) for _ in range(users)]
    # Every user discovers its models first (not timed); then all start at once.
    while len(ready) < users and not any(t.done() for t in tasks):  # noqa: ASYNC110 - polls two conditions
        await asyncio.sleep(0.05)
    began = time.perf_counter()
    start.set()
    if kill is not None:
        # Kill one replica once the load is under way (about a third of the way through, at least 1 s in).
        while len(out) < max(1, users * runs // 3) and not all(t.done() for t in tasks):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        os.kill(kill.process.pid, signal.SIGKILL)
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    walls = sorted(r["wall_s"] for r in out)
    return {
        "runs": len(out),
        "runs_per_s": len(out) / elapsed,
        "p50_s": statistics.median(walls),
        "p95_s": walls[min(len(walls) - 1, round(0.95 * (len(walls) - 1)))],
        "answers": sum(r["answers"] for r in out),
        "lost": sum(r["lost"] for r in out),
        "replicas_used": len({rep for r in out for rep in r["replicas"]}),
    }


async def _overhead_header(proxy: LiteLLMProxy, model: str, calls: int, max_tokens: int) -> dict[str, float]:
    """LiteLLM's own per-call overhead and total duration (response headers), over ``calls`` sequential calls."""
    overhead, total = [], []
    async with httpx.AsyncClient(timeout=120) as client:
        for _ in range(calls):
            response = await client.post(
                f"{proxy.url}/v1/chat/completions",
                headers=proxy.headers,
                json={"model": model, "messages": [{"role": "user", "content": CODE}], "max_tokens": max_tokens},
            )
            response.raise_for_status()
            overhead.append(float(response.headers.get("x-litellm-overhead-duration-ms", "nan")))
            total.append(float(response.headers.get("x-litellm-response-duration-ms", "nan")))
    return {"overhead_ms_p50": statistics.median(overhead), "duration_ms_p50": statistics.median(total)}


async def _bench(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="bench-team-"))
    weights, label = _weights(folder)
    servers: list[LlamaServer] = []
    report: dict[str, Any] = {
        "model": label,
        "users": args.users,
        "runs_per_user": args.runs,
        "samples": args.samples,
        "max_tokens": args.max_tokens,
        "cpus": os.cpu_count(),
        "loadavg_before": os.getloadavg(),
    }
    try:
        for _ in range(max(REPLICAS)):
            servers.append(start_llama_server(weights, alias="smol", n_ctx=2048, log_dir=folder))
        groups = {f"smol-{n}": [s.url for s in servers[:n]] for n in REPLICAS}
        started = time.perf_counter()
        with LiteLLMProxy(groups, routing="least-busy", folder=folder / "litellm", served_as="smol") as proxy:
            report["proxy_start_s"] = time.perf_counter() - started
            os.environ[KEY_ENV] = proxy.master_key
            gateway = [{"url": proxy.url, "kind": "openai", "api_key_env": KEY_ENV}]

            def direct(n: int) -> list[dict[str, str]]:
                return [{"url": s.url, "kind": "openai"} for s in servers[:n]]

            # Warm-up (first calls load caches), then one user alone: the gateway's overhead without contention.
            await _load(_settings(direct(1), "smol", args), 1, 2)
            await _load(_settings(gateway, "smol-1", args), 1, 2)
            alone_direct = await _load(_settings(direct(1), "smol", args), 1, 3)
            alone_gateway = await _load(_settings(gateway, "smol-1", args), 1, 3)
            report["alone"] = {"direct": alone_direct, "gateway": alone_gateway}
            report["overhead_alone"] = (alone_gateway["p50_s"] - alone_direct["p50_s"]) / alone_gateway["p50_s"]
            report["litellm_headers"] = await _overhead_header(proxy, "smol-1", 3, args.max_tokens)
            configs: dict[str, Any] = {}
            for n in REPLICAS:
                configs[f"direct-{n}"] = await _load(_settings(direct(n), "smol", args), args.users, args.runs)
                configs[f"gateway-{n}"] = await _load(_settings(gateway, f"smol-{n}", args), args.users, args.runs)
            report["configs"] = configs
            for kind in ("direct", "gateway"):
                one, two, four = (configs[f"{kind}-{n}"]["runs_per_s"] for n in REPLICAS)
                report[f"{kind}_scaling"] = {"1->2": two / one, "1->4": four / one}
            report["overhead_under_load"] = {
                n: (configs[f"gateway-{n}"]["p50_s"] - configs[f"direct-{n}"]["p50_s"])
                / configs[f"gateway-{n}"]["p50_s"]
                for n in REPLICAS
            }
            # A replica killed mid-load: first with CodeConductor spreading over 4 replicas directly; then through
            # the gateway, whose group still lists the dead replica (CodeConductor asks the gateway again).
            report["kill_direct"] = await _load(_settings(direct(4), "smol", args), args.users, args.runs, servers[3])
            report["kill_gateway"] = await _load(_settings(gateway, "smol-4", args), args.users, args.runs)
            os.environ.pop(KEY_ENV, None)
    finally:
        for server in servers:
            server.stop()
    report["loadavg_after"] = os.getloadavg()
    return report


def _print(report: dict[str, Any]) -> None:
    print(f"model: {report['model']}; {report['users']} users x {report['runs_per_user']} runs x {report['samples']} samples, "
          f"max_tokens {report['max_tokens']}; {report['cpus']} CPUs, load average before "
          f"{report['loadavg_before'][0]:.1f}, after {report['loadavg_after'][0]:.1f}; proxy up in {report['proxy_start_s']:.0f} s")  # fmt: skip
    print(f"{'config':<12} {'runs/s':>7} {'p50 s':>7} {'p95 s':>7} {'answers':>8} {'lost':>5} {'replicas':>9}")
    for name, row in report["configs"].items():
        print(f"{name:<12} {row['runs_per_s']:7.2f} {row['p50_s']:7.2f} {row['p95_s']:7.2f} {row['answers']:8d} "
              f"{row['lost']:5d} {row['replicas_used']:9d}")  # fmt: skip
    for name in ("kill_direct", "kill_gateway"):
        row = report[name]
        print(f"{name:<12} {row['runs_per_s']:7.2f} {row['p50_s']:7.2f} {row['p95_s']:7.2f} {row['answers']:8d} "
              f"{row['lost']:5d} {row['replicas_used']:9d}")  # fmt: skip
    for kind in ("direct", "gateway"):
        s = report[f"{kind}_scaling"]
        print(f"{kind} throughput 1->2 replicas {s['1->2']:.2f}x, 1->4 {s['1->4']:.2f}x")
    alone = report["alone"]
    print(f"gateway overhead, one user alone: p50 {alone['gateway']['p50_s']:.3f} s vs direct "
          f"{alone['direct']['p50_s']:.3f} s = {100 * report['overhead_alone']:.1f}% of a run")  # fmt: skip
    headers = report["litellm_headers"]
    print(
        f"LiteLLM's own overhead header: {headers['overhead_ms_p50']:.1f} ms of {headers['duration_ms_p50']:.0f} ms per call"
    )
    under = ", ".join(f"{n}: {100 * v:.1f}%" for n, v in report["overhead_under_load"].items())
    print(f"gateway p50 vs direct p50 under load (replicas: overhead): {under}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.team", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--runs", type=int, default=1, help="runs per user")
    parser.add_argument("--samples", type=int, default=1, help="samples per run")
    parser.add_argument("--max-tokens", type=int, default=16)
    args = parser.parse_args(argv)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    report = asyncio.run(_bench(args))
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        _print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
