"""Benchmark: how long checking answers inside the user's project takes (issue 23's target: verification adds at
most 5 s per request, p50, when the selected tests run in 2 s or less).

Builds the test suite's ``shop`` project (:mod:`tests.support.projects`: a package with relative imports, a class,
tests, and a dependency in its own virtual environment) in a temporary folder, then times ``decide`` on improve
requests for three of its functions (``total``, ``normalise``, ``Cart.add``), each with one right rewrite and two
one-token mutants, in three situations:

* first request of a session: the interpreter's paths, the recording run, the original and the answers;
* another function in the same session: the recording run, the original and the answers;
* the same function again with new answers: only the answers (the recording and the original are cached).

    python -m bench.project_verify [--rounds N] [--json]

Every decision is also checked: the right rewrite must be offered, the mutants refused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

from codeconductor.ensemble._targets import function_at
from codeconductor.ensemble.consensus import decide
from codeconductor.ensemble.context import build_context, parse_blocks
from codeconductor.ensemble.project import project_for
from codeconductor.ensemble.types import AnswerStatus, ModelAnswer, ModelInfo, ProviderKind, Request, TaskKind
from codeconductor.ensemble.verify.observe import SandboxExecutor
from tests.support.projects import make_shop

_CASES = (
    (
        "total",
        "def total(items):\n    return tinymoney.round2(sum(scale(p) * q for p, q in items) * (1 + TAX))\n",
        "s += scale(price) * qty",
        "s += scale(price) + qty",
    ),
    (
        "normalise",
        "def normalise(names):\n    out = []\n    for name in (n.strip().lower() for n in names):\n"
        "        if name and name not in out:\n            out.append(name)\n    return out\n",
        "name.strip().lower()",
        "name.strip().upper()",
    ),
    (
        "Cart.add",
        "    def add(self, price, qty=1):\n        if not qty > 0:\n            raise ValueError('qty')\n"
        "        self.items += [(price, qty)]\n        return len(self.items)\n",
        "if qty <= 0:",
        "if qty < 0:",
    ),
)


def _answer(name: str, code: str) -> ModelAnswer:
    model = ModelInfo(name=name, provider=ProviderKind.OLLAMA, endpoint="http://127.0.0.1:11434")
    return ModelAnswer(model=model, status=AnswerStatus.ANSWERED, text=f"```python\n{code}```")


def _request(module: Path, function: str) -> tuple[Request, str]:
    text = module.read_text(encoding="utf-8")
    blocks = parse_blocks(text, "python")
    line = next(b.start for b in blocks if b.name == function.rsplit(".", 1)[-1] and b.kind == "function")
    found = function_at(blocks, line, "python")
    assert found is not None
    context = build_context(text, found.start, found.end, path=str(module))
    context.project = project_for(module, text)
    return Request(task=TaskKind.IMPROVE, context=context), context.selection + "\n"


def _variant(code: str, tag: str) -> str:
    """The same code with a harmless statement added: a new text, so nothing is answered from a cache."""
    first, rest = code.split("\n", 1)
    indent = re.match(r"\s*", rest)
    return f"{first}\n{indent.group(0) if indent else '    '}_{tag} = 0\n{rest}"


def _check(ok: bool, name: str, why: str | None) -> None:
    if not ok:
        raise SystemExit(f"{name}: the right rewrite was not offered ({why})")


async def _run(module: Path, rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"first": [], "another_function": [], "same_function": []}
    for round_no in range(rounds):
        executor = SandboxExecutor()
        try:
            for index, (name, right, original_token, mutant_token) in enumerate(_CASES):
                request, selection = _request(module, name)
                mutant = selection.replace(original_token, mutant_token)
                answers = [
                    _answer("right", _variant(right, f"r{round_no}")),
                    _answer("mutant-a", _variant(mutant, f"a{round_no}")),
                    _answer("mutant-b", _variant(mutant, f"b{round_no}")),
                ]
                started = time.perf_counter()
                result = await decide(request, answers, executor=executor)
                times["first" if index == 0 else "another_function"].append(time.perf_counter() - started)
                _check(result.offers_edit and f"_r{round_no} = 0" in result.pick, name, result.no_edit)
                again = [
                    _answer("right", _variant(right, f"s{round_no}")),
                    _answer("m", _variant(mutant, f"t{round_no}")),
                ]
                started = time.perf_counter()
                result = await decide(request, again, executor=executor)
                times["same_function"].append(time.perf_counter() - started)
                _check(result.offers_edit and f"_s{round_no} = 0" in result.pick, name, result.no_edit)
        finally:
            executor.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cc-bench-project-") as folder:
        module = make_shop(Path(folder) / "shop")
        times = asyncio.run(_run(module, args.rounds))
    summary = {
        k: {"p50_s": round(statistics.median(v), 2), "max_s": round(max(v), 2), "n": len(v)} for k, v in times.items()
    }
    summary["load_average"] = {"1min": round(os.getloadavg()[0], 1), "cpus": os.cpu_count()}  # type: ignore[dict-item]
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    for key, row in summary.items():
        print(f"{key:>18}: {row}")


if __name__ == "__main__":
    main()
