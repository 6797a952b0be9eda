"""Benchmark: how long the review-findings and free-text consensus take for a full ensemble (goal <= 15 ms for
8 answers), and what reading broken JSON costs compared with clean JSON, side by side in the same run.

Cases (synthetic, deterministic answers shaped like small models' output):

* ``findings/clean``    8 models x 6 findings as strict JSON, overlapping lines and paraphrased messages;
* ``findings/broken``   the same answers wrapped in prose and fences, single quotes, trailing commas, and half of
                        them cut off mid-list (the ``json-repair`` path);
* ``text/8x800``        8 free-text explanations of ~800 characters each, with a code block.

    python -m bench.findings_text [--json] [--runs 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence

from rich.console import Console
from rich.table import Table

from codeconductor.ensemble.consensus.findings import decide_findings
from codeconductor.ensemble.consensus.text import decide_text
from codeconductor.ensemble.types import (
    AnswerStatus,
    CodeContext,
    ConsensusResult,
    ModelAnswer,
    ModelInfo,
    ProviderKind,
    Request,
    TaskKind,
)

__all__ = ["main"]

BUDGET_MS = 15.0
MODELS = 8
_PROBLEMS = [
    (3, "error", ["Division by zero when xs is empty", "ZeroDivisionError if the list is empty", "len(xs) may be 0"]),
    (7, "warning", ["Mutable default argument", "Default argument [] is shared between calls"]),
    (12, "info", ["Variable result may be undefined", "result is referenced before assignment"]),
    (18, "hint", ["Missing docstring", "Function has no docstring"]),
    (25, "error", ["File is never closed", "Use a with statement so the file handle is closed"]),
    (31, "warning", ["SQL built with string formatting", "User input interpolated into SQL; use parameters"]),
]


def _answer(i: int, text: str) -> ModelAnswer:
    model = ModelInfo(name=f"model{i}", provider=ProviderKind.OPENAI, endpoint="http://127.0.0.1:8080")
    return ModelAnswer(model=model, status=AnswerStatus.ANSWERED, text=text)


def _review_answers(broken: bool) -> list[ModelAnswer]:
    answers = []
    for i in range(MODELS):
        items = [
            {"line": line + (i % 3 == 2), "severity": sev, "message": msgs[i % len(msgs)], "fix": None}
            for k, (line, sev, msgs) in enumerate(_PROBLEMS)
            if (i + k) % 4 != 0  # each model misses some problems
        ]
        text = json.dumps(items)
        if broken:
            text = "Here is my review:\n```json\n" + text.replace('"', "'").replace("}", ",}") + "\n```\nHope it helps!"
            if i % 2:
                text = text[: len(text) * 2 // 3]  # cut off by the token limit
        answers.append(_answer(i, text))
    return answers


def _text_answers() -> list[ModelAnswer]:
    base = (
        "The function computes the arithmetic mean of the values in xs. It first adds them up with sum() and then "
        "divides by len(xs). When xs is empty this raises ZeroDivisionError, so callers must guard against it. "
    )
    code = "```python\ndef mean(xs):\n    return sum(xs) / len(xs) if xs else 0.0\n```\n"
    variants = [
        "",
        "In short, it averages the list. ",
        "Note the integer inputs produce a float. ",
        "Edge case: empty. ",
    ]
    return [_answer(i, (variants[i % 4] + base) * 2 + code + f"Answer {i}.") for i in range(MODELS)]


def _time(fn: Callable[[], ConsensusResult], runs: int) -> tuple[list[float], ConsensusResult]:
    result = fn()  # warm-up (imports, regex compilation)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - start) * 1000.0)
    return samples, result


def _row(name: str, samples: Sequence[float], result: ConsensusResult) -> dict[str, str | float]:
    ordered = sorted(samples)
    return {
        "case": name,
        "median_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
        "budget_ratio": round(statistics.median(ordered) / BUDGET_MS, 3),
        "findings": len(result.findings),
        "confidence": round(result.confidence, 3),
        "answered": result.answered,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args(argv)

    selection = "\n".join(f"line_{i} = {i}" for i in range(40)) + "\n"
    review = Request(task=TaskKind.REVIEW, context=CodeContext(selection=selection, start_line=100, end_line=140))
    ask = Request(task=TaskKind.ASK, context=CodeContext(selection=selection))
    clean, broken, texts = _review_answers(False), _review_answers(True), _text_answers()
    rows = [
        _row("findings/clean", *_time(lambda: decide_findings(review, clean, None), args.runs)),
        _row("findings/broken", *_time(lambda: decide_findings(review, broken, None), args.runs)),
        _row("text/8x800", *_time(lambda: decide_text(ask, texts, None), args.runs)),
    ]
    ratio = float(rows[1]["median_ms"]) / max(float(rows[0]["median_ms"]), 1e-9)
    report = {
        "models": MODELS,
        "runs": args.runs,
        "budget_ms": BUDGET_MS,
        "rows": rows,
        "broken_vs_clean": round(ratio, 2),
    }
    if args.json:
        print(json.dumps(report))
        return
    table = Table(title=f"findings / text consensus, {MODELS} answers, {args.runs} runs (budget {BUDGET_MS} ms)")
    for column in rows[0]:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    console = Console()
    console.print(table)
    console.print(f"broken JSON / clean JSON (median): {ratio:.2f}x")


if __name__ == "__main__":
    main()
