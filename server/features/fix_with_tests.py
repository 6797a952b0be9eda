"""Editor side of "Make tests pass with ensemble" and "Generate tests with ensemble".

Commands (``workspace/executeCommand``), offered as code actions on a function:

* ``codeconductor.fixWithTests`` ``{uri, range, version?, tests?, rounds?, apply?}``: the fix-until-green loop of
  :mod:`ensemble.fixloop` on the function at ``range`` (the editor's unsaved text is what gets tested). Without
  ``tests``, the project's tests that mention the function are used. Progress (round, model, test results) goes
  to ``$/progress``; the passing edit is applied with the label "k/n candidates pass the tests". When nothing
  passes, nothing is edited and the user sees the best attempt's result.
* ``codeconductor.generateTests`` ``{uri, range, codeCorrect?, apply?}``: :mod:`ensemble.testgen`; the kept tests
  become a new test file (``workspace/applyEdit`` with a ``CreateFile``).

Both are runs like ``codeconductor.run`` (:meth:`CodeConductorServer.track_run`): the progress notification's
cancel button (``window/workDoneProgress/cancel``), ``codeconductor.cancel`` and ``$/cancelRequest`` stop the loop
and its model calls at once; the reply is then ``{"status": "cancelled"}`` and nothing is edited.
"""

from __future__ import annotations

import ast
import asyncio
import logging
import re
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from lsprotocol import types as lsp
from pydantic import Field
from pygls.exceptions import JsonRpcInvalidParams
from pygls.workspace import TextDocument

from ensemble.context import enclosing_block
from ensemble.edits import span_lines
from ensemble.errors import CodeConductorError
from ensemble.languages import is_python
from ensemble.types import ProgressEvent, Request, Result, TaskKind

from .. import preview
from ..edits import doc_lines, language_of, line_span, target_span
from ..runs import RunRecord, Span
from ..server import CodeConductorServer, RunCancelled
from .commands import _Args, _parse, _Range

if TYPE_CHECKING:
    from ensemble.fixloop import FixOutcome, FixProgress

__all__ = ["FIX_KIND", "GEN_KIND", "code_actions", "find_tests", "register"]

logger = logging.getLogger(__name__)

FIX_KIND = "quickfix.codeconductor.fixWithTests"
GEN_KIND = "refactor.codeconductor.generateTests"


class _HasMessage(Protocol):
    message: str


_O = TypeVar("_O", bound=_HasMessage)


class _Stopped(Exception):
    """The run was cancelled or failed; ``reply`` is the command's answer."""

    def __init__(self, reply: dict[str, Any]) -> None:
        super().__init__(reply["message"])
        self.reply = reply


async def _tracked(ls: CodeConductorServer, run_id: str, work: Coroutine[Any, Any, _O], token: str | None) -> _O:
    """Run ``work`` as a cancellable run and end its progress with the outcome's message (or why it stopped)."""
    end_message = "cancelled"
    try:
        outcome = await ls.track_run(run_id, work, token=token)
        end_message = outcome.message
        return outcome
    except RunCancelled as exc:
        raise _Stopped({"runId": run_id, "status": "cancelled", "applied": False, "message": "cancelled"}) from exc
    except CodeConductorError as exc:
        end_message = str(exc)
        ls.show(f"CodeConductor: {exc}", 1)
        raise _Stopped({"runId": run_id, "status": "failed", "applied": False, "message": str(exc)}) from exc
    finally:
        if token is not None:
            ls.work_done_progress.end(token, lsp.WorkDoneProgressEnd(message=end_message))


class FixArgs(_Args):
    uri: str
    range: _Range
    version: int | None = None
    tests: list[str] = Field(default_factory=list)
    rounds: int = Field(default=3, ge=1, le=10)
    apply: bool = True


class GenArgs(_Args):
    uri: str
    range: _Range
    code_correct: bool = False
    apply: bool = True


def _root_of(ls: CodeConductorServer, doc: TextDocument) -> tuple[Path, str]:
    """The workspace folder holding the document (else the document's folder), and the document's path in it."""
    path = Path(doc.path).resolve()
    folders = [Path(f.uri.removeprefix("file://")) for f in (ls.workspace.folders or {}).values()]
    root_path = ls.workspace.root_path
    if root_path:
        folders.append(Path(root_path))
    for folder in sorted(folders, key=lambda f: len(str(f)), reverse=True):
        if path.is_relative_to(folder.resolve()):
            return folder.resolve(), path.relative_to(folder.resolve()).as_posix()
    return path.parent, path.name


def _function_at(ls: CodeConductorServer, doc: TextDocument, line: int) -> tuple[str, int, int]:
    """The qualified name and lines of the function at ``line`` (``Class.method`` inside a class)."""
    blocks = ls.blocks(doc, language_of(doc), line)
    block = enclosing_block(blocks, line, language_of(doc))
    if block is None or block.kind != "function":
        raise JsonRpcInvalidParams("put the cursor in a function (no function encloses that line)")
    outer = [b for b in blocks if b.kind == "class" and b.start <= block.start and block.end <= b.end]
    name = f"{max(outer, key=lambda b: b.start).name}.{block.name}" if outer else block.name
    return name, block.start, block.end


def find_tests(files: dict[str, str], function: str) -> list[str]:
    """Test functions (pytest node ids) in the project's test files that mention ``function``'s name."""
    name = function.rsplit(".", 1)[-1]
    word = re.compile(rf"\b{re.escape(name)}\b")
    found: list[str] = []
    for path, text in sorted(files.items()):
        base = path.rsplit("/", 1)[-1]
        if not (base.startswith("test_") or base.endswith("_test.py")) or not base.endswith(".py"):
            continue
        if not word.search(text):
            continue
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            is_test = node.name.startswith("Test" if isinstance(node, ast.ClassDef) else "test")
            if is_test and word.search(ast.get_source_segment(text, node) or ""):
                found.append(f"{path}::{node.name}")
    return found


async def fix_command(ls: CodeConductorServer, *args: Any) -> dict[str, Any]:
    # The loop pulls in the consensus and the sandbox: imported when first used, so the server starts fast.
    from ensemble.fixloop import FixTarget, fix_with_tests
    from ensemble.verify.pytest_runner import ProjectSnapshot

    a = _parse(args, FixArgs)
    doc = ls.document(a.uri)
    version = doc.version
    if a.version is not None and a.version != version:
        return {"status": "stale", "applied": False, "message": f"{doc.uri} changed since the request"}
    start_line, _ = line_span(doc, a.range.to_lsp())
    function, start, end = _function_at(ls, doc, start_line)
    root, rel = _root_of(ls, doc)
    tests = list(a.tests)
    if not tests:
        snapshot = await asyncio.to_thread(ProjectSnapshot.capture, root)
        tests = find_tests(snapshot.files, function)
        if not tests:
            message = (
                f"CodeConductor: no test in the project mentions {function}; "
                "pass test ids (e.g. tests/test_x.py::test_y) in the command's `tests` argument."
            )
            ls.show(message, 2)
            return {"status": "noTests", "applied": False, "message": message}
    run_id = ls.store.new_id()
    token = await ls._create_progress(f"CodeConductor: make tests pass ({function})")

    def report(event: FixProgress) -> None:
        if token is None or (event.phase == "model" and event.detail not in ("answered", "failed", "timeout")):
            return
        percentage = int(100 * max(0, event.round - 1) / event.rounds) if event.round else 0
        ls.work_done_progress.report(
            token, lsp.WorkDoneProgressReport(message=event.message, percentage=percentage, cancellable=True)
        )

    async def generate(request: Request, on_progress: Any) -> Result:
        return await ls.pipeline.run(request, on_progress=on_progress)

    target = FixTarget(root=str(root), path=rel, function=function, tests=tests, text=doc.source)
    try:
        outcome = await _tracked(
            ls, run_id, fix_with_tests(generate, target, rounds=a.rounds, on_progress=report), token
        )
    except _Stopped as stopped:
        return stopped.reply
    return await _deliver(ls, doc, a=a, run_id=run_id, version=version, outcome=outcome, span=(start, end), tests=tests)


async def _deliver(
    ls: CodeConductorServer,
    doc: TextDocument,
    *,
    a: FixArgs,
    run_id: str,
    version: int | None,
    outcome: FixOutcome,
    span: tuple[int, int],
    tests: list[str],
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "runId": run_id,
        "status": outcome.status,
        "applied": False,
        "message": outcome.message,
        "tests": tests,
        "outcome": outcome.model_dump(mode="json", exclude={"result"}),
    }
    if outcome.status != "passed" or outcome.result is None:
        ls.show(f"CodeConductor: {outcome.message}", 3 if outcome.status == "already_passing" else 2)
        return out
    start, end = span
    record = RunRecord(
        id=run_id,
        uri=doc.uri,
        task=TaskKind.FIX,
        result=outcome.result,
        span=Span(start, end),
        version=version,
        lines=doc_lines(doc)[start:end],
    )
    ls.store.add(record)
    # Exactly the text the tests passed on, not a second rendering of the pick.
    new_lines = span_lines(doc.source, outcome.new_text, start, end)
    out["newText"] = "\n".join(new_lines) + "\n"
    if not a.apply:
        return out | {"status": "proposed"}
    label = f"Apply fix: {outcome.message}"
    # Through the preview like every edit (server/preview.py); "passed" stays the status once it is applied.
    offered = await preview.offer(
        ls, doc, record, new_lines, cluster=0, label=label, version=version, members=list(outcome.pick_models)
    )
    if offered["applied"]:
        return out | {"applied": True}
    extra = {k: offered[k] for k in ("range", "preview", "version", "uri", "oldText") if k in offered}
    return out | extra | {"status": offered["status"], "message": offered["message"]}


async def generate_command(ls: CodeConductorServer, *args: Any) -> dict[str, Any]:
    a = _parse(args, GenArgs)
    doc = ls.document(a.uri)
    start_line, _ = line_span(doc, a.range.to_lsp())
    function, _, _ = _function_at(ls, doc, start_line)
    root, rel = _root_of(ls, doc)
    run_id = ls.store.new_id()
    token = await ls._create_progress(f"CodeConductor: generate tests ({function})")

    def report(event: ProgressEvent) -> None:
        if token is not None and event.status in ("answered", "failed", "timeout"):
            ls.work_done_progress.report(
                token,
                lsp.WorkDoneProgressReport(message=f"{event.done}/{event.total} models answered", cancellable=True),
            )

    async def generate(request: Request, _: Any) -> Result:
        return await ls.pipeline.run(request, on_progress=report)

    from ensemble.testgen import generate_tests

    work = generate_tests(generate, root=root, path=rel, function=function, code_correct=a.code_correct)
    try:
        outcome = await _tracked(ls, run_id, work, token)
    except _Stopped as stopped:
        return stopped.reply
    uri = (root / outcome.path).as_uri()
    out: dict[str, Any] = {
        "runId": run_id,
        "status": "generated" if outcome.content else "noTests",
        "applied": False,
        "message": outcome.message,
        "uri": uri,
        "content": outcome.content,
        "outcome": outcome.model_dump(mode="json", exclude={"result"}),
    }
    if not outcome.content or not a.apply:
        if not outcome.content:
            ls.show(f"CodeConductor: {outcome.message}", 2)
        return out
    edit = lsp.WorkspaceEdit(
        document_changes=[
            lsp.CreateFile(uri=uri, options=lsp.CreateFileOptions(overwrite=False, ignore_if_exists=False)),
            lsp.TextDocumentEdit(
                text_document=lsp.OptionalVersionedTextDocumentIdentifier(uri=uri, version=None),
                edits=[lsp.TextEdit(range=lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0)), new_text=outcome.content)],
            ),
        ]
    )
    try:
        reply = await ls.ask_client(
            lambda: ls.workspace_apply_edit_async(
                lsp.ApplyWorkspaceEditParams(edit=edit, label=f"Add generated tests ({outcome.message})")
            )
        )
    except Exception as exc:
        logger.warning("workspace/applyEdit failed: %s", exc)
        return out | {"message": f"the editor did not create the file: {exc}"}
    return out | {"applied": bool(reply.applied)}


def code_actions(ls: CodeConductorServer, params: lsp.CodeActionParams, only: list[str] | None) -> list[lsp.CodeAction]:
    """The two actions, offered when the cursor or selection is in a Python function."""
    doc = ls.document(params.text_document.uri)
    if not is_python(language_of(doc)):
        return []
    start, end = target_span(ls, doc, params.range)
    block = enclosing_block(ls.blocks(doc, "python", params.range.start.line), params.range.start.line, "python")
    if block is None or block.kind != "function":
        return []
    target = {
        "uri": doc.uri,
        "range": {"start": {"line": start, "character": 0}, "end": {"line": end, "character": 0}},
    }
    actions = []
    for title, kind, command, argument in (
        ("Make tests pass with ensemble", FIX_KIND, "codeconductor.fixWithTests", {**target, "version": doc.version}),
        ("Generate tests with ensemble", GEN_KIND, "codeconductor.generateTests", target),
    ):
        if not only or any(kind == o or kind.startswith(o + ".") for o in only):
            actions.append(
                lsp.CodeAction(
                    title=title, kind=kind, command=lsp.Command(title=title, command=command, arguments=[argument])
                )
            )
    return actions


def register(ls: CodeConductorServer) -> None:
    ls.command("codeconductor.fixWithTests")(fix_command)
    ls.command("codeconductor.generateTests")(generate_command)
