"""Benchmark: what one job of a compiled-language project costs (issue 26): the wall time of
``SandboxExecutor.observe`` for the user's code and for answers in a small Go module, Rust crate and Java source
tree (the ones tests/integration/test_{go,rust,java}_project.py make: two source files, their tests), each job a
fresh sandbox that compiles from nothing and runs every selected test in its own process.

    python -m bench.project_jobs                 # 5 texts per language, 2 jobs at a time (the runners' default)
    python -m bench.project_jobs --texts 8 --only rust

Prints one JSON line per language: the number of tests per job and the median and maximum seconds per job.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from codeconductor.ensemble.context import build_context
from codeconductor.ensemble.languages import language_for
from codeconductor.ensemble.project import project_for
from codeconductor.ensemble.types import Request, TaskKind
from codeconductor.ensemble.verify.observe import SandboxExecutor

__all__ = ["main"]


def _case(language: str) -> tuple[Callable[[Path], Path], str, list[str]]:
    """The test module's project maker, the function asked about, and three answers (right, mutant, wrong)."""
    import importlib

    tests = importlib.import_module(f"tests.integration.test_{language}_project")
    maker = {"go": "make_module", "rust": "make_crate", "java": "make_project"}[language]
    name = {"go": "SumEven", "rust": "sum_even", "java": "sumEven"}[language]
    return getattr(tests, maker), name, [tests.RIGHT, tests.MUTANT, tests.WRONG_FIX]


async def _measure(language: str, texts: int, folder: Path) -> dict[str, object]:
    make, name, answers = _case(language)
    module = make(folder / language)
    text = module.read_text(encoding="utf-8")
    found = language_for(language).find_function(text, name)
    assert found is not None
    context = build_context(text, found.start_line, found.end_line, path=str(module), language=language)
    context.project = project_for(module, text)
    executor = SandboxExecutor()
    try:
        probe = await executor.project_probe(Request(task=TaskKind.IMPROVE, context=context), None)
        if probe is None or probe.project is None or probe.project.problem is not None:
            raise SystemExit(f"{language}: nothing to run ({probe})")
        # Distinct texts (a comment line each), so the runner's cache never answers.
        codes = [f"// {i}\n{(answers * texts)[i]}" for i in range(texts)]
        times: list[float] = []

        async def one(code: str) -> None:
            started = time.perf_counter()
            behaviour = await executor.observe(code, probe)
            times.append(time.perf_counter() - started)
            assert behaviour.tests, behaviour

        started = time.perf_counter()
        await asyncio.gather(*(one(code) for code in codes))
        total = time.perf_counter() - started
    finally:
        executor.close()
    return {
        "language": language,
        "jobs": texts,
        "tests per job": len(probe.project.tests),
        "median s per job": round(statistics.median(times), 2),
        "max s per job": round(max(times), 2),
        "wall s (2 at a time)": round(total, 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=5)
    parser.add_argument("--only", choices=("go", "rust", "java"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cc-project-jobs-") as folder:
        for language in [args.only] if args.only else ["go", "rust", "java"]:
            print(json.dumps(asyncio.run(_measure(language, args.texts, Path(folder)))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
