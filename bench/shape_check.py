"""Benchmark for code-shape changes: does a checkout work out exactly what another one does, without running
anything? For HumanEvalPack's Python and JavaScript texts as stubs, working, buggy and docstring-less selections,
every code task and several language/path/imports/method variants, it records a digest of the probe, the
candidates (code, normalised form, label, weight), the quorum keys and ``decide()``'s result without an executor
(saved answers: the first 3 codegen-16B samples per Python task, the saved JS candidates), and of the context
functions (``parse_blocks``, ``find_imports``, ``is_stub``, ``build_context``) on the whole texts in nine language
ids. Run it once per checkout (``PYTHONPATH=CHECKOUT``) and compare::

    PYTHONPATH=/path/to/before python -m bench.shape_check --out /tmp/before.json
    PYTHONPATH=$PWD python -m bench.shape_check --out /tmp/after.json --compare /tmp/before.json

Variants whose name starts with ``edge-`` are requests no front end sends (an unknown language id with a known
path, no id at all): reported apart. Deterministic: nothing is timed, nothing runs in the sandbox.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from codeconductor.ensemble import consensus
from codeconductor.ensemble.context import build_context, find_imports, is_stub, parse_blocks
from codeconductor.ensemble.types import (
    AnswerStatus,
    CodeContext,
    ModelAnswer,
    ModelInfo,
    ProviderKind,
    Request,
    TaskKind,
)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "bench"
_TASKS = [t for t in TaskKind if t.produces_code]


def _load(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _answers(texts: list[str]) -> list[ModelAnswer]:
    return [
        ModelAnswer(
            model=ModelInfo(name=f"m{i % 3}", provider=ProviderKind.OPENAI, endpoint="bench://"),
            sample=i,
            status=AnswerStatus.ANSWERED,
            text=text,
        )
        for i, text in enumerate(texts)
    ]


async def _case(request: Request, texts: list[str]) -> dict[str, str]:
    candidates = consensus.candidates_for(request, _answers(texts), None)
    result = await consensus.decide(request, _answers(texts))
    return {
        "probe": _digest(repr(consensus.probe_for(request))),
        "candidates": _digest([(c.label, c.code, c.norm, c.parseable, c.weight, c.family) for c in candidates]),
        "keys": _digest([consensus.agreement_key(request, t) for t in texts]),
        "result": _digest(result.model_dump()),
    }


def _context_digest(text: str, language: str, stubs: list[str]) -> str:
    n = text.count("\n")
    spans = ((0, 3), (2, n // 2), (n // 2, n // 2), (n - 2, n + 4))
    return _digest(
        [
            parse_blocks(text, language),
            find_imports(text, language),
            [is_stub(s, language) for s in stubs],
            [build_context(text, a, b, language=language).model_dump() for a, b in spans],
        ]
    )


def _selections(row: dict[str, Any]) -> dict[str, str]:
    return {
        "stub": row["prompt"],
        "working": row["prompt"] + row["canonical_solution"],
        "buggy": row["prompt"] + row["buggy_solution"],
        "undocumented": row["declaration"] + row["canonical_solution"],
    }


async def run(pack: Path, samples: Path, js_candidates: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    codet: dict[str, list[str]] = defaultdict(list)
    for row in _load(samples):
        if len(codet[row["task_id"]]) < 3:
            codet[row["task_id"]].append(row["completion"])
    saved_js: dict[str, list[str]] = defaultdict(list)
    for row in _load(js_candidates):
        saved_js[row["task_id"]].append(row["completion"])
    for row in _load(pack / "python.jsonl.gz"):
        task_id = row["task_id"].replace("Python/", "HumanEval/")
        working = row["prompt"] + row["canonical_solution"]
        texts = [row["prompt"] + c for c in codet[task_id]] + [
            f"```python\n{working}```",
            "Here you go:\n" + row["canonical_solution"],
            row["declaration"] + row["buggy_solution"],
        ]
        for name, selection in _selections(row).items():
            method = "\n".join("    " + line if line.strip() else line for line in selection.split("\n"))
            variants = {
                "python": CodeContext(language="python", selection=selection),
                "imports": CodeContext(language="python", selection=selection, imports="import math", path="m.py"),
                "method": CodeContext(language="python", selection=method, before="class K:", path="k.py"),
                "py": CodeContext(language="py", selection=selection),
                "edge-plaintext-py": CodeContext(language="plaintext", selection=selection, path="x.py"),
            }
            for task in _TASKS:
                for variant, context in variants.items():
                    key = f"python|{task_id}|{name}|{task}|{variant}"
                    out[key] = await _case(Request(task=task, context=context), texts)
        whole = working + "\n\n" + row["test"]
        for language in ("python", "py", "javascript", "go", "ruby", ""):
            out[f"context|{task_id}|{language}"] = _context_digest(whole, language, [row["prompt"], working])
    for row in _load(pack / "js.jsonl.gz"):
        task_id = row["task_id"]
        texts = [*saved_js.get(task_id, [])[:6], f"```javascript\n{row['prompt'] + row['canonical_solution']}```"]
        comment = row["prompt"].split("const ")[0]
        for name, selection in _selections(row).items():
            variants = {
                "javascript": CodeContext(language="javascript", selection=selection),
                "comment-above": CodeContext(
                    language="javascript", selection=row["declaration"] + row["canonical_solution"], before=comment
                ),
                "typescript": CodeContext(language="typescript", selection=selection, path="a.ts"),
                "edge-no-id-js": CodeContext(language="", selection=selection, path="a.js"),
            }
            for task in _TASKS:
                for variant, context in variants.items():
                    key = f"javascript|{task_id}|{name}|{task}|{variant}"
                    out[key] = await _case(Request(task=task, context=context), texts)
        whole = row["prompt"] + row["canonical_solution"] + "\n\n" + row["test"]
        stubs = [row["prompt"] + row["canonical_solution"], row["declaration"] + "}"]
        for language in ("javascript", "typescript", "go", "rust", "java", "c", "cpp", "lua", "python"):
            out[f"context|{task_id}|{language}"] = _context_digest(whole, language, stubs)
    return out


def compare(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Cases that differ, counted by (kind, variant, what differs), with one example each."""
    differing: Counter[str] = Counter()
    example: dict[str, str] = {}
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        parts = key.split("|")
        fields = (
            sorted(f for f in old if old[f] != new.get(f)) if isinstance(old, dict) and isinstance(new, dict) else []
        )
        label = f"{parts[0]} {parts[-1]}: {', '.join(fields) or 'all'}"
        differing[label] += 1
        example.setdefault(label, key)
    edge = sum(1 for k in before if k.split("|")[-1].startswith("edge-"))
    return {
        "cases": len(before),
        "edge_cases": edge,
        "differ": {label: {"count": n, "example": example[label]} for label, n in differing.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pack", type=Path, default=SHARED / "humanevalpack", help="HumanEvalPack folder")
    parser.add_argument(
        "--samples",
        type=Path,
        default=SHARED / "humaneval-samples" / "codet-codegen16b.jsonl.gz",
        help="saved Python answers",
    )
    parser.add_argument("--js-candidates", type=Path, default=ROOT / "bench" / "data" / "js_candidates.jsonl.gz")
    parser.add_argument("--out", type=Path, required=True, help="write the digests here (JSON)")
    parser.add_argument("--compare", type=Path, help="digests of another checkout: print what differs")
    args = parser.parse_args()
    digests = asyncio.run(run(args.pack, args.samples, args.js_candidates))
    args.out.write_text(json.dumps(digests, sort_keys=True, indent=0), encoding="utf-8")
    if args.compare is not None:
        before = json.loads(args.compare.read_text(encoding="utf-8"))
        print(json.dumps(compare(before, digests), indent=2))


if __name__ == "__main__":
    main()
