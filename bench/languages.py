"""Benchmark: JavaScript fix / improve on HumanEvalPack-JS through the product's consensus, replaying saved answers.

Answers were generated once by ``bench.gen_js_candidates`` (Qwen2.5-Coder-0.5B-Instruct and SmolLM2-135M-Instruct,
the product's own prompts; see ``bench/data/README.md``) and are replayed here without any model. For each task and
kind the user's file is ``prompt + buggy_solution`` (fix) or ``prompt + canonical_solution`` (improve); the request
is the one the editor sends for it (``build_context`` over that file, language ``javascript``): by default the
function's lines selected, its comment just above (where HumanEvalPack-JS puts the ``>>> f(x)`` examples, read as
the product reads them); ``--selection file`` selects the comment too, as the answers were asked. Every decision is
``decide_explained(request, answers, weights=..., executor=SandboxExecutor(sandbox))``, the product's own call:
extraction, the probe (examples and generated calls), the original as the oracle, the trust gate and the
confidence, all run by node in the sandbox. The hidden ``test`` only scores.

"Pass" is whether the code the user ends up with passes the hidden tests: the offered edit, or their unchanged
code when nothing is offered (for fix, unchanged = fail; for improve, unchanged = pass). Two readings, as an
unchecked pick (labelled "not checked", never auto-applied) is a guess the user must judge:

* ``offered``: the user applies every offered edit, unchecked ones too;
* ``checked``: the user applies only checked edits (an unchecked pick counts as their code left unchanged).

Reported per kind: the consensus pick and each model's answer alone through the same consensus (as
``bench.sampling`` does), both readings; each model's answer applied as it is, without the consensus (``raw``:
what the model gives a user on its own, broken edits included); a plain vote (the largest behaviour group the consensus formed, no gate;
ties: the group of the earlier answer); the oracle (any answer passes; improve: also the unchanged original);
edits offered, unchecked ones among them (and how many of those are right), broken edits offered (failing the
hidden tests; at confidence >= 0.5 too), and the ECE of the confidence over the offered edits. ``--json`` also
lists every decision (``rows``).

    python -m bench.languages [--candidates bench/data/js_candidates.jsonl.gz] [--selection function|file] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from codeconductor.ensemble.consensus import candidates_for, decide_explained, probe_for
from codeconductor.ensemble.context import build_context
from codeconductor.ensemble.languages import language_for
from codeconductor.ensemble.languages.javascript import JavaScript, node_path
from codeconductor.ensemble.reliability import weights_for
from codeconductor.ensemble.types import (
    AnswerStatus,
    ConsensusResult,
    ModelAnswer,
    ModelInfo,
    ProviderKind,
    Request,
    TaskKind,
)
from codeconductor.ensemble.verify.observe import SandboxExecutor
from codeconductor.ensemble.verify.sandbox import Sandbox

__all__ = ["main"]

DATA = Path(os.environ.get("CODECONDUCTOR_BENCH_DATA", "/work/shared/bench")) / "humanevalpack" / "js.jsonl.gz"
CANDIDATES = Path(__file__).with_name("data") / "js_candidates.jsonl.gz"
# console.assert only prints in node: make a failed hidden check fail the run.
_ASSERTS = "console.assert = (ok, ...m) => { if (!ok) { throw new Error('Assertion failed'); } };\n"
_KINDS = {"fix": TaskKind.FIX, "improve": TaskKind.IMPROVE}


def _load(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@dataclass
class Outcome:
    """What one decision leaves the user with."""

    offered: bool
    checked: bool  # offered and checked (``unchecked is None``): the only edits that may be applied unseen
    passes: bool  # the offered edit passes the hidden tests (False when nothing is offered)
    confidence: float
    unchecked: str | None = None
    no_edit: str | None = None

    def ends_ok(self, original_ok: bool, *, checked_only: bool) -> bool:
        """Whether the code the user ends up with passes: the edit they apply, else their unchanged code."""
        applied = self.checked if checked_only else self.offered
        return self.passes if applied else original_ok


@dataclass
class Decision:
    task_id: str
    kind: str
    examples: int
    original_ok: bool
    pick: Outcome
    alone: dict[str, Outcome] = field(default_factory=dict)
    raw: dict[str, bool] = field(default_factory=dict)  # each model's answer applied as it is (no consensus)
    vote: bool = False
    oracle: bool = False


def request_for(task: dict[str, Any], kind: str, selection: str = "function") -> Request:
    """The request an editor sends for this task: the user's file, the function's lines selected (``function``;
    the comment above stays in ``before``) or the comment and the function (``file``)."""
    text = task["prompt"] + (task["buggy_solution"] if kind == "fix" else task["canonical_solution"])
    lines = text.splitlines()
    start = 0
    if selection == "function":
        # The entry point's first line ends the prompt (helpers it calls stand above it, outside the selection).
        head = [line for line in task["declaration"].splitlines() if line.strip()][-1]
        start = max(i for i, line in enumerate(task["prompt"].splitlines()) if line == head)
    context = build_context(text, start, len(lines), language="javascript", path="solution.js")
    return Request(task=_KINDS[kind], context=context)


def _answers(rows: Sequence[dict[str, Any]]) -> list[ModelAnswer]:
    out = []
    for row in rows:
        model = ModelInfo(name=row["model"], provider=ProviderKind.EMBEDDED, endpoint="embedded://")
        status = AnswerStatus.ANSWERED if row["completion"].strip() else AnswerStatus.FAILED
        out.append(ModelAnswer(model=model, sample=int(row.get("sample", 0)), status=status, text=row["completion"]))
    return out


class Scorer:
    """The hidden tests, run by node in the sandbox (cached per task and code): used only to score."""

    def __init__(self, box: Sandbox) -> None:
        self.box = box
        js = language_for("javascript")
        assert isinstance(js, JavaScript)
        self.js = js
        self._cache: dict[tuple[str, str], bool] = {}

    async def passes(self, task: dict[str, Any], code: str) -> bool:
        key = (task["task_id"], code)
        if key not in self._cache:
            node = node_path()
            assert node is not None
            try:
                script = self.js.runnable(code)
            except Exception:
                self._cache[key] = False
                return False
            files = {"test.js": _ASSERTS + script + "\n" + task["test"]}
            out = await self.box.arun_program(files, [node, "test.js"], 10.0, memory_mb=2048)
            self._cache[key] = out.ok
        return self._cache[key]


async def _outcome(scorer: Scorer, task: dict[str, Any], result: ConsensusResult) -> Outcome:
    offered = result.offers_edit
    return Outcome(
        offered=offered,
        checked=result.may_apply_unseen,
        passes=offered and await scorer.passes(task, result.pick),
        confidence=result.confidence if offered else 0.0,
        unchecked=result.unchecked if offered else None,
        no_edit=result.no_edit,
    )


async def _plain_vote(scorer: Scorer, task: dict[str, Any], result: ConsensusResult, order: Sequence[str]) -> bool:
    """The largest behaviour group the consensus formed, gate or not; ties go to the group of the earlier answer."""
    if not result.clusters:
        return False
    rank = {label: i for i, label in enumerate(order)}
    first = min(
        result.clusters,
        key=lambda c: (-len(c.members), min((rank.get(m.split("#")[0], len(rank)) for m in c.members), default=0)),
    )
    return await scorer.passes(task, first.representative)


async def decide_task(
    scorer: Scorer,
    executor: SandboxExecutor,
    task: dict[str, Any],
    kind: str,
    rows: Sequence[dict[str, Any]],
    *,
    selection: str,
) -> Decision:
    request = request_for(task, kind, selection)
    answers = _answers(rows)
    weights = weights_for([a.model for a in answers], {})
    probe = probe_for(request)
    # The user's unchanged code, scored like an edit.
    original_ok = await scorer.passes(
        task, task["prompt"] + (task["buggy_solution"] if kind == "fix" else task["canonical_solution"])
    )
    result, _ = await decide_explained(request, answers, weights=weights, executor=executor)
    decision = Decision(
        task_id=task["task_id"],
        kind=kind,
        examples=len(probe.examples) if probe is not None else 0,
        original_ok=original_ok,
        pick=await _outcome(scorer, task, result),
    )
    for answer in answers:  # each answer alone, through the same consensus (extraction, probe, gate, confidence)
        if answer.sample == 0:
            alone, _ = await decide_explained(request, [answer], weights=weights, executor=executor)
            decision.alone[answer.model.name] = await _outcome(scorer, task, alone)
    decision.vote = await _plain_vote(scorer, task, result, [a.model_id for a in answers])
    scored = [
        (c.model_id, c.parseable and await scorer.passes(task, c.code))
        for c in candidates_for(request, answers, weights)
    ]
    for answer in answers:
        if answer.sample == 0:
            decision.raw[answer.model.name] = next((ok for m, ok in scored if m == answer.model_id), False)
    decision.oracle = any(ok for _, ok in scored) or (kind == "improve" and original_ok)
    return decision


def _ece(pairs: Sequence[tuple[float, bool]], bins: int = 10) -> float:
    if not pairs:
        return 0.0
    total = 0.0
    for index in range(bins):
        lo, hi = index / bins, (index + 1) / bins
        inside = [(c, ok) for c, ok in pairs if lo <= c < hi or (index == bins - 1 and c == 1.0)]
        if inside:
            mean_c = sum(c for c, _ in inside) / len(inside)
            acc = sum(ok for _, ok in inside) / len(inside)
            total += len(inside) / len(pairs) * abs(mean_c - acc)
    return total


def _rate(decisions: Sequence[Decision], outcome: str | None, *, checked_only: bool) -> float:
    n = len(decisions)
    got = [d.pick if outcome is None else d.alone.get(outcome) for d in decisions]
    return round(
        sum(
            o.ends_ok(d.original_ok, checked_only=checked_only) if o else d.original_ok
            for d, o in zip(decisions, got, strict=True)
        )
        / n,
        3,
    )


def summarise(decisions: Sequence[Decision]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in _KINDS:
        mine = [d for d in decisions if d.kind == kind]
        if not mine:
            continue
        n = len(mine)
        models = sorted({m for d in mine for m in d.alone})
        offered = [d for d in mine if d.pick.offered]
        unchecked = [d for d in offered if not d.pick.checked]
        broken = [d for d in offered if not d.pick.passes]
        out[kind] = {
            "tasks": n,
            "with_examples": sum(1 for d in mine if d.examples),
            "pick_offered": _rate(mine, None, checked_only=False),
            "pick_checked": _rate(mine, None, checked_only=True),
            "models_offered": {m: _rate(mine, m, checked_only=False) for m in models},
            "models_checked": {m: _rate(mine, m, checked_only=True) for m in models},
            "models_raw": {m: round(sum(d.raw.get(m, False) for d in mine) / n, 3) for m in models},
            "plain_vote": round(sum(d.vote for d in mine) / n, 3),
            "oracle": round(sum(d.oracle for d in mine) / n, 3),
            "edits_offered": len(offered),
            "unchecked_offered": len(unchecked),
            "unchecked_right": sum(d.pick.passes for d in unchecked),
            "broken_offered": len(broken),
            "broken_checked": sum(1 for d in broken if d.pick.checked),
            "broken_conf_ge_0_5": sum(1 for d in broken if d.pick.confidence >= 0.5),
            "ece_offered": round(_ece([(d.pick.confidence, d.pick.passes) for d in offered]), 3),
        }
    return out


async def run(candidates: Path, selection: str) -> tuple[list[Decision], float]:
    tasks = {t["task_id"]: t for t in _load(DATA)}
    by_task: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in _load(candidates):
        by_task[(row["task_id"], row["kind"])].append(row)
    decisions = []
    started = time.monotonic()
    async with Sandbox(workers=1) as box:
        scorer = Scorer(box)
        executor = SandboxExecutor(box, cache_size=100_000)
        for (task_id, kind), rows in sorted(by_task.items(), key=lambda kv: (int(kv[0][0].split("/")[1]), kv[0][1])):
            decisions.append(await decide_task(scorer, executor, tasks[task_id], kind, rows, selection=selection))
    return decisions, time.monotonic() - started


def _row(d: Decision) -> dict[str, Any]:
    return {
        "task_id": d.task_id,
        "kind": d.kind,
        "examples": d.examples,
        "original_ok": d.original_ok,
        "pick": asdict(d.pick),
        "alone": {m: asdict(o) for m, o in d.alone.items()},
        "raw": d.raw,
        "vote": d.vote,
        "oracle": d.oracle,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="JavaScript fix/improve on HumanEvalPack-JS (saved answers)")
    parser.add_argument("--candidates", type=Path, default=CANDIDATES)
    parser.add_argument(
        "--selection",
        choices=("function", "file"),
        default="function",
        help="what the user selects: the function (its comment above, read for examples), or comment + function",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    if node_path() is None:
        console.print("node is not installed: nothing to run")
        return 1
    load_start = os.getloadavg()[0]
    decisions, wall = asyncio.run(run(args.candidates, args.selection))
    summary = summarise(decisions)
    summary["candidates"] = str(args.candidates)
    summary["selection"] = args.selection
    summary["answers"] = sum(len(d.alone) for d in decisions)
    summary["per_model_answers"] = dict(Counter(m for d in decisions for m in d.alone))
    summary["wall_s"] = round(wall, 1)
    summary["load_average_start_end"] = [round(load_start, 1), round(os.getloadavg()[0], 1)]
    if args.json:
        summary["rows"] = [_row(d) for d in decisions]
        print(json.dumps(summary, indent=2))
        return 0
    table = Table(title="JavaScript (HumanEvalPack-JS): the code the user ends up with passes the hidden tests")
    models = sorted({m for k in _KINDS if k in summary for m in summary[k]["models_offered"]})
    columns = ["kind", "reading", "pick", *(f"{m} alone" for m in models), "plain vote", "oracle"]
    columns += ["edits", "unchecked", "broken", "broken@>=0.5", "ECE"]
    for column in columns:
        table.add_column(column)
    for kind in _KINDS:
        s = summary.get(kind)
        if s is None:
            continue
        for reading in ("offered", "checked"):
            table.add_row(
                kind, reading, f"{s[f'pick_{reading}']:.3f}", *(f"{s[f'models_{reading}'][m]:.3f}" for m in models),
                f"{s['plain_vote']:.3f}", f"{s['oracle']:.3f}", str(s["edits_offered"]), str(s["unchecked_offered"]),
                str(s["broken_offered"]), str(s["broken_conf_ge_0_5"]), f"{s['ece_offered']:.3f}",
            )  # fmt: skip
        raw = (f"{s['models_raw'][m]:.3f}" for m in models)
        table.add_row(kind, "raw", "", *raw, *([""] * 7))
    Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
