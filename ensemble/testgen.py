""" "Generate tests with ensemble": every model writes pytest tests for a function, and only tests that agree are
kept, as a new test file the user can add.

CodeT-style dual agreement. Each model's test module is split into its test functions (its imports and helpers
kept with each, the function under test always imported from the user's module, never a model's own copy). Every
generated test runs once against the current code in the sandbox, and each assertion is compared across models:
a test is *supported* by the number of distinct models that wrote one of its assertions. A test is kept when the
user marks the code correct and the test passes on it, or when at least ``min_agree`` models agree on it (then a
failure on the current code is kept too, as a likely bug, and marked so in the file). Tests that cannot even run
(import errors, broken fixtures, timeouts) are never kept.
"""

from __future__ import annotations

import ast
import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import BaseModel, Field

from .context import build_context
from .errors import RequestError
from .fixloop import Generate
from .languages import fenced_blocks, is_python
from .types import AnswerStatus, ModelAnswer, ProgressEvent, Request, Result, TaskKind
from .verify.pytest_runner import CaseResult, ProjectSnapshot, PytestRunner, locate_function

__all__ = [
    "GeneratedTest",
    "SplitTest",
    "TestGenOutcome",
    "assertion_keys",
    "generate_tests",
    "import_root",
    "module_name",
    "select_tests",
    "split_tests",
]

logger = logging.getLogger(__name__)

_GEN_DIR = "__codeconductor_gen__"
ProgressCallback = Callable[[ProgressEvent], None]


@dataclass(frozen=True)
class SplitTest:
    """One generated test function, standalone: ``prelude`` (imports, helpers, fixtures) + ``source``."""

    name: str
    source: str
    prelude: tuple[str, ...]  # import lines and helper definitions, in order
    model_id: str = ""

    @property
    def module_text(self) -> str:
        return "\n\n".join(self.prelude) + "\n\n\n" + self.source + "\n"


class GeneratedTest(BaseModel):
    name: str  # the name in the generated file
    source: str
    models: list[str] = Field(default_factory=list)  # who wrote it (after deduplication by source)
    support: int = 0  # distinct models sharing one of its assertions
    outcome: Literal["passed", "failed", "error", "skipped", "timeout", "not_run"] = "not_run"
    kept: bool = False
    reason: str = ""


class TestGenOutcome(BaseModel):
    __test__ = False  # not a pytest test class, whatever its name

    path: str  # where the new test file should go, relative to the project root
    content: str  # "" when no test was kept
    function: str
    tests: list[GeneratedTest] = Field(default_factory=list)
    kept: int = 0
    message: str = ""
    notes: list[str] = Field(default_factory=list)
    result: Result | None = None
    wall_s: float = 0.0


def import_root(rel_path: str, files: Mapping[str, str] | None = None) -> str:
    """The folder a file is imported from (relative, "." for the project root): the first folder above it
    without ``__init__.py``, as pytest's default import mode sees it (``src`` counts as the root of a src
    layout). Without ``files`` the project root."""
    if files is None:
        return "."
    folder = PurePosixPath(rel_path).parent
    while str(folder) != "." and f"{folder}/__init__.py" in files:
        folder = folder.parent
    return "." if str(folder) in (".", "src") else str(folder)


def module_name(rel_path: str, files: Mapping[str, str] | None = None) -> str:
    """The import name of a project file: ``pkg/util.py`` -> ``pkg.util`` (a leading ``src/`` dropped; with
    ``files``, relative to its :func:`import_root`)."""
    root = import_root(rel_path, files)
    path = PurePosixPath(rel_path)
    parts = list((path.relative_to(root) if root != "." else path).with_suffix("").parts)
    if parts and parts[0] == "src":
        parts = parts[1:]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _code_of(answer_text: str) -> str:
    blocks = [body for lang, body in fenced_blocks(answer_text) if is_python(lang)]  # "" is Python too
    return max(blocks, key=len) if blocks else answer_text


def split_tests(module_code: str, function: str, module: str, model_id: str = "") -> list[SplitTest]:
    """The test functions of a generated module, each with the prelude it needs to run on its own.

    Imports of ``function`` from elsewhere and top-level redefinitions of it are dropped (a test must exercise
    the user's code, not a model's copy); ``from module import function`` is put first."""
    try:
        tree = ast.parse(module_code)
    except SyntaxError:
        return []
    target = function.split(".", maxsplit=1)[0]
    prelude: list[str] = [f"from {module} import {target}"]
    tests: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
            tests.append(node)
        elif isinstance(node, ast.ImportFrom):
            names = [a for a in node.names if (a.asname or a.name) != target]
            if names and node.level == 0:
                prelude.append(ast.unparse(ast.ImportFrom(module=node.module, names=names, level=0)))
        elif isinstance(node, ast.Import):
            prelude.append(ast.unparse(node))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name != target:
                prelude.append(ast.unparse(node))
        elif isinstance(node, ast.Assign):
            prelude.append(ast.unparse(node))
        # Anything else at top level (prints, calls, `if __name__ == "__main__"`) is scaffolding: dropped.
    return [SplitTest(t.name, ast.unparse(t), tuple(prelude), model_id) for t in tests]


def assertion_keys(source: str) -> set[str]:
    """The test's assertions in a normalised form (AST, so spacing and quotes do not matter)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    keys = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            keys.add(ast.dump(node.test, annotate_fields=False))
        elif isinstance(node, ast.With) and any(
            isinstance(i.context_expr, ast.Call) and ast.unparse(i.context_expr.func).endswith("raises")
            for i in node.items
        ):
            # `with pytest.raises(E): f(x)` asserts too: the exception and the call.
            keys.add(ast.dump(ast.Module(body=[*node.body], type_ignores=[]), annotate_fields=False) + "|raises")
    return keys


def _body_key(source: str) -> str:
    """The same test up to its name, formatting and comments."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return re.sub(r"\s+", " ", source)
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    if not funcs:
        return ast.dump(tree)
    return "|".join(ast.dump(stmt, annotate_fields=False) for stmt in funcs[0].body) + ast.dump(funcs[0].args)


def select_tests(
    tests: Sequence[SplitTest],
    outcomes: Sequence[CaseResult | None],
    *,
    code_correct: bool,
    min_agree: int = 2,
) -> list[GeneratedTest]:
    """Score and choose (pure). ``outcomes[i]`` is how ``tests[i]`` did on the current code."""
    by_key: dict[str, set[str]] = {}
    keys_of = [assertion_keys(t.source) for t in tests]
    for test, keys in zip(tests, keys_of, strict=True):
        for key in keys:
            by_key.setdefault(key, set()).add(test.model_id)
    chosen: list[GeneratedTest] = []
    seen: dict[str, GeneratedTest] = {}
    for test, keys, outcome in zip(tests, keys_of, outcomes, strict=True):
        dedupe = _body_key(test.source)
        if dedupe in seen:
            if test.model_id not in seen[dedupe].models:
                seen[dedupe].models.append(test.model_id)
            continue
        support = max((len(by_key[k]) for k in keys), default=0)
        status = outcome.outcome if outcome is not None else "not_run"
        assertion_failure = status == "failed" and outcome is not None and "assert" in outcome.message.lower()
        if not keys:
            kept, reason = False, "no assertion"
        elif status == "passed" and code_correct:
            kept, reason = True, "passes on the code marked correct"
        elif status == "passed" and support >= min_agree:
            kept, reason = True, f"{support} models agree and it passes on the current code"
        elif assertion_failure and support >= min_agree:
            kept, reason = True, f"{support} models agree, but it FAILS on the current code (a bug?)"
        elif status == "passed":
            kept, reason = False, "only one model wrote it (mark the code correct to keep passing tests)"
        elif status in ("error", "timeout", "not_run", "skipped") or not assertion_failure:
            kept, reason = False, f"cannot run ({status})"
        else:
            kept, reason = False, "fails on the current code and too few models agree"
        generated = GeneratedTest(
            name=test.name,
            source=test.source,
            models=[test.model_id],
            support=support,
            outcome=status,
            kept=kept,
            reason=reason,
        )
        seen[dedupe] = generated
        chosen.append(generated)
    return chosen


def _rename(source: str, new_name: str) -> str:
    return re.sub(r"^(\s*(?:async\s+)?def\s+)\w+", lambda m: m.group(1) + new_name, source, count=1)


def _render(function: str, module: str, kept: Sequence[GeneratedTest], preludes: dict[str, tuple[str, ...]]) -> str:
    imports: list[str] = []
    helpers: list[str] = []
    for test in kept:
        for part in preludes.get(test.name, ()):
            bucket = imports if part.startswith(("import ", "from ")) else helpers
            if part.strip() and part not in bucket:
                bucket.append(part)
    header = (
        f'"""Tests for {module}.{function}, written by the CodeConductor ensemble: {len(kept)} test(s) that the '
        'models agree on or that pass on code marked correct. Review them before relying on them."""'
    )
    body = []
    for test in kept:
        note = "" if test.outcome == "passed" else "# NOTE: fails on the code as it was when generated.\n"
        who = ", ".join(m.split("@", 1)[0] for m in test.models)
        body.append(f"# {test.reason}; from {who}\n{note}{test.source}")
    return "\n\n\n".join(p for p in [header + "\n\n" + "\n".join(imports), *helpers, *body] if p) + "\n"


async def generate_tests(
    generate: Generate,
    *,
    root: str | Path,
    path: str,
    function: str,
    code_correct: bool = False,
    min_agree: int = 2,
    out_path: str | None = None,
    runner: PytestRunner | None = None,
    on_progress: ProgressCallback | None = None,
) -> TestGenOutcome:
    """Ask the ensemble for tests of ``function`` in ``path`` (relative to ``root``), keep those that agree."""
    started = time.perf_counter()
    runner = runner or PytestRunner()
    base = Path(root)
    rel = Path(path).as_posix()
    snapshot = await asyncio.to_thread(ProjectSnapshot.capture, base, must_include=[rel])
    text = snapshot.files.get(rel)
    if text is None:
        raise RequestError(f"cannot read {rel} under {base}")
    start, end = locate_function(text, function)
    module = module_name(rel, snapshot.files)
    folder = import_root(rel, snapshot.files)
    target = function.split(".", maxsplit=1)[0]
    request = Request(
        task=TaskKind.TESTS,
        context=build_context(text, start, end, path=rel),
        instruction=(
            f"Write pytest test functions for `{function}`. Import it with `from {module} import {target}`. "
            "Use plain `assert` statements with concrete expected values; cover normal and edge cases."
        ),
    )
    result = await generate(request, on_progress=on_progress)
    answers: list[ModelAnswer] = [a for a in result.answers if a.status is AnswerStatus.ANSWERED and a.text.strip()]
    split: list[SplitTest] = []
    for answer in answers:
        split.extend(split_tests(_code_of(answer.text), function, module, answer.model_id))
    # Where pytest will import the module from: tests/ for a project-root package, else next to the module.
    default_path = out_path or (
        f"tests/test_{target.lower()}_generated.py" if folder == "." else f"{folder}/test_{target.lower()}_generated.py"
    )
    while out_path is None and default_path in snapshot.files:
        stem = default_path.removesuffix(".py")
        default_path = f"{stem}_2.py" if not stem[-1].isdigit() else f"{stem[:-1]}{int(stem[-1]) + 1}.py"
    if not split:
        return TestGenOutcome(
            path=default_path,
            content="",
            function=function,
            message="no model wrote a usable test",
            result=result,
            wall_s=time.perf_counter() - started,
        )
    # One file per generated test, all run in one sandboxed pytest session on the current code.
    files = dict(snapshot.files)
    ids = []
    for i, test in enumerate(split):
        name = f"{_GEN_DIR}/test_gen_{i}.py"
        files[name] = test.module_text
        ids.append(f"{name}::{test.name}")
    report = await runner.arun(files, ids, root=base, sys_path=[folder])
    by_id = {c.nodeid: c for c in report.cases}
    outcomes = [by_id.get(i) for i in ids]
    chosen = select_tests(split, outcomes, code_correct=code_correct, min_agree=min_agree)
    # Unique names in the output file, and the prelude each kept test needs.
    preludes: dict[str, tuple[str, ...]] = {}
    used: set[str] = set()
    prelude_of = {t.source: t.prelude for t in split}
    for generated in chosen:
        original = generated.name
        name, n = original, 2
        while name in used:
            name, n = f"{original}_{n}", n + 1
        used.add(name)
        preludes[name] = prelude_of.get(generated.source, ())
        if name != original:
            generated.source = _rename(generated.source, name)
            generated.name = name
    kept = [t for t in chosen if t.kept]
    content = _render(function, module, kept, preludes) if kept else ""
    notes = list(report.notes)
    message = f"{len(kept)} of {len(chosen)} generated test(s) kept" + (
        "" if kept else " (none agree; mark the code correct to keep tests that pass on it)"
    )
    return TestGenOutcome(
        path=default_path,
        content=content,
        function=function,
        tests=chosen,
        kept=len(kept),
        message=message,
        notes=notes,
        result=result,
        wall_s=time.perf_counter() - started,
    )
