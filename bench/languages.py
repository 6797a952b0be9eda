"""Benchmark: JavaScript fix / improve on HumanEvalPack-JS, replaying saved candidates of small local models.

Candidates were generated once by ``bench.gen_js_candidates`` (Qwen2.5-Coder-0.5B-Instruct and
SmolLM2-135M-Instruct, the product's own prompts; see ``bench/data/README.md``) and are replayed here without any
model. For each task and kind the user's code is ``prompt + buggy_solution`` (fix) or
``prompt + canonical_solution`` (improve). Everything the pick uses is what an editor has: the user's code, the
examples its comment gives (``>>> f(x)`` lines, found by the language layer), calls varied from them, and the
candidates run by node in the sandbox. The hidden ``test`` only scores.

The pick here is a simple selection written for this benchmark with the language layer (the consensus wiring
for JavaScript is not in ``codeconductor.ensemble.consensus`` yet): prose and unparseable answers are dropped; for fix a
candidate must satisfy every comment example and behave differently from the buggy original somewhere; for improve
it must behave exactly like the user's original on every call (the original is the oracle: it worked); the largest
group of candidates behaving alike wins; when none qualifies the code is left unchanged. Confidence (fix):
0.2 + 0.6 * (examples, up to 3) / 3 + 0.2 * its group's share when the original fails an example (the examples show
the bug, so satisfying them is evidence), else 0.25 + 0.2 * share (nothing verifies the fix: only agreement); for
improve 0.5 + 0.45 * the share of calls on which the original returned a value.

Reported per kind: pass rate on the hidden tests of the pick, of each model alone (its greedy answer as the
edit), of a plain vote (largest behaviour group, no gate), and of the oracle (any candidate passes; improve:
also the unchanged original); edits offered, broken edits offered (failing the hidden tests; at confidence >= 0.5
too), and the ECE of the confidence over the offered edits.

    python -m bench.languages [--candidates bench/data/js_candidates.jsonl.gz] [--json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from codeconductor.ensemble.languages import language_for
from codeconductor.ensemble.languages.javascript import JavaScript, node_path
from codeconductor.ensemble.verify.sandbox import CallSpec, Sandbox

__all__ = ["main"]

DATA = Path(os.environ.get("CODECONDUCTOR_BENCH_DATA", "/work/shared/bench")) / "humanevalpack" / "js.jsonl.gz"
CANDIDATES = Path(__file__).with_name("data") / "js_candidates.jsonl.gz"
# console.assert only prints in node: make a failed hidden check fail the run.
_ASSERTS = "console.assert = (ok, ...m) => { if (!ok) { throw new Error('Assertion failed'); } };\n"


def _load(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@dataclass
class Candidate:
    model: str
    sample: int
    code: str
    parseable: bool
    keys: tuple[str, ...] = ()
    passed: tuple[bool, ...] = ()
    hidden: bool = False


@dataclass
class Decision:
    task_id: str
    kind: str
    edit: Candidate | None
    confidence: float
    passes: bool  # the code the user ends up with passes the hidden tests
    per_model: dict[str, bool] = field(default_factory=dict)
    vote: bool = False
    oracle: bool = False
    examples: int = 0


def _hidden(box: Sandbox, js: JavaScript, code: str, test: str) -> bool:
    node = node_path()
    assert node is not None
    try:
        script = js.runnable(code)
    except Exception:
        return False
    out = box.run_program({"test.js": _ASSERTS + script + "\n" + test}, [node, "test.js"], 10.0, memory_mb=2048)
    return out.ok


def _group(cands: Sequence[Candidate]) -> list[list[Candidate]]:
    groups: dict[tuple[str, ...], list[Candidate]] = defaultdict(list)
    for cand in cands:
        groups[cand.keys].append(cand)
    # Largest group first; ties: more examples satisfied, then the first model in file order (deterministic).
    return sorted(groups.values(), key=lambda g: (-len(g), -sum(g[0].passed)))


def _degenerate(keys: Sequence[str]) -> bool:
    return all(k.startswith("!") or k in ("=null", '="<undefined>"') for k in keys)


def decide_task(box: Sandbox, task: dict[str, Any], kind: str, rows: Sequence[dict[str, Any]]) -> Decision:
    js = language_for("javascript")
    assert isinstance(js, JavaScript)
    user = task["prompt"] + (task["buggy_solution"] if kind == "fix" else task["canonical_solution"])
    entry = task["entry_point"]
    examples = js.examples(user, entry)
    calls = [CallSpec(e.call, e.expected) for e in examples]
    calls += [CallSpec(c) for c in js.generate_calls(user, entry, examples, limit=10)]
    original = js.run_calls(box, user, entry, calls, 10.0, call_timeout_s=1.0) if calls else []
    original_keys = tuple(o.key for o in original)
    original_ok = _hidden(box, js, user, task["test"])
    cands = []
    for row in rows:
        got = js.extract(row["completion"], context=user, entry_point=entry)
        cand = Candidate(row["model"], row["sample"], got.code, got.parseable and not got.empty)
        if cand.parseable:
            if calls:
                outcomes = js.run_calls(box, got.code, entry, calls, 10.0, call_timeout_s=1.0)
                cand.keys = tuple(o.key for o in outcomes)
                cand.passed = tuple(bool(o.matches) for o in outcomes[: len(examples)])
            cand.hidden = _hidden(box, js, got.code, task["test"])
        cands.append(cand)
    live = [c for c in cands if c.parseable and not (calls and _degenerate(c.keys))]
    # The examples show the bug only when the user's code fails one of them; otherwise they cannot confirm a fix.
    shows_bug = bool(examples) and not all(o.matches for o in original[: len(examples)])
    if kind == "fix":
        # A "fix" that does what the buggy code does on every call changes nothing.
        eligible = [c for c in live if examples and all(c.passed) and c.keys != original_keys]
    else:
        eligible = [c for c in live if calls and c.keys == original_keys and not _degenerate(original_keys)]
    edit, conf = None, 0.0
    if eligible:
        groups = _group(eligible)
        edit = groups[0][0]
        share = len(groups[0]) / len(cands)
        if kind == "fix" and shows_bug:
            conf = 0.2 + 0.6 * min(len(examples), 3) / 3 + 0.2 * share
        elif kind == "fix":
            conf = 0.25 + 0.2 * share  # unverified: only agreement speaks for it
        else:
            returned = sum(1 for k in original_keys if k.startswith("=")) / len(original_keys)
            conf = 0.5 + 0.45 * returned
    passes = edit.hidden if edit is not None else original_ok
    per_model = {}
    for cand in cands:
        if cand.sample == 0:
            per_model[cand.model] = cand.hidden
    vote_groups = _group([c for c in cands if c.parseable]) if any(c.parseable for c in cands) else []
    vote = vote_groups[0][0].hidden if vote_groups else original_ok
    oracle = any(c.hidden for c in cands) or (kind == "improve" and original_ok)
    return Decision(task["task_id"], kind, edit, round(conf, 4), passes, per_model, vote, oracle, len(examples))


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


def summarise(decisions: Sequence[Decision]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in ("fix", "improve"):
        mine = [d for d in decisions if d.kind == kind]
        if not mine:
            continue
        n = len(mine)
        models = sorted({m for d in mine for m in d.per_model})
        edits = [d for d in mine if d.edit is not None]
        broken = [d for d in edits if not d.passes]
        out[kind] = {
            "tasks": n,
            "with_examples": sum(1 for d in mine if d.examples),
            "pick": round(sum(d.passes for d in mine) / n, 3),
            "models": {m: round(sum(d.per_model.get(m, False) for d in mine) / n, 3) for m in models},
            "plain_vote": round(sum(d.vote for d in mine) / n, 3),
            "oracle": round(sum(d.oracle for d in mine) / n, 3),
            "edits_offered": len(edits),
            "broken_edits": len(broken),
            "broken_edits_conf_ge_0_5": sum(1 for d in broken if d.confidence >= 0.5),
            "ece_offered": round(_ece([(d.confidence, d.passes) for d in edits]), 3),
        }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="JavaScript fix/improve on HumanEvalPack-JS (saved candidates)")
    parser.add_argument("--candidates", type=Path, default=CANDIDATES)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    if node_path() is None:
        console.print("node is not installed: nothing to run")
        return 0
    tasks = {t["task_id"]: t for t in _load(DATA)}
    by_task: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in _load(args.candidates):
        by_task[(row["task_id"], row["kind"])].append(row)
    decisions = []
    with Sandbox() as box:
        for (task_id, kind), rows in sorted(by_task.items(), key=lambda kv: (int(kv[0][0].split("/")[1]), kv[0][1])):
            decisions.append(decide_task(box, tasks[task_id], kind, rows))
    summary = summarise(decisions)
    summary["candidates"] = str(args.candidates)
    summary["answers"] = sum(len(r) for r in by_task.values())
    summary["per_model_answers"] = dict(Counter(r["model"] for rows in by_task.values() for r in rows))
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    table = Table(title="JavaScript (HumanEvalPack-JS): pass rate on the hidden tests")
    for column in ("kind", "tasks", "pick", "plain vote", "oracle", "edits", "broken", "broken@>=0.5", "ECE"):
        table.add_column(column)
    models = sorted({m for k in ("fix", "improve") if k in summary for m in summary[k]["models"]})
    for model in models:
        table.add_column(model)
    for kind in ("fix", "improve"):
        s = summary.get(kind)
        if s is None:
            continue
        table.add_row(
            kind, str(s["tasks"]), f"{s['pick']:.3f}", f"{s['plain_vote']:.3f}", f"{s['oracle']:.3f}",
            str(s["edits_offered"]), str(s["broken_edits"]), str(s["broken_edits_conf_ge_0_5"]),
            f"{s['ece_offered']:.3f}", *(f"{s['models'].get(m, 0.0):.3f}" for m in models),
        )  # fmt: skip
    Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
