"""The editor-like LSP client of the language-server tests (``tests/lsp``, ``tests/hardening``): the real
``python -m codeconductor.server`` in a subprocess, driven by a pytest-lsp client that applies ``workspace/applyEdit`` to its
own copy of the text and sends ``didChange`` (:class:`Editor`), settings as an editor sends them, and small
builders.

The ``client`` fixture is imported by the suites' conftest files; each suite chooses the server's settings by
defining the ``lsp_settings`` fixture.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Union, cast

import pytest_lsp
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

SERVER = [sys.executable, "-m", "codeconductor.server"]
WORKSPACE = Path("/tmp/codeconductor-lsp-tests")  # the root the client initialises the server with


FIXED = "def add(a, b):\n    return a + b\n"
ALTERNATIVE = "def add(a, b):\n    return sum((a, b))\n"
BUGGY = "import os\n\n\ndef add(a, b):\n    return a - b\n\n\ndef stub(x):\n    ...\n"


def fenced(code: str) -> str:
    return f"```python\n{code}```\n"


def settings_for(url: str, include: list[str], **extra: Any) -> dict[str, Any]:
    """Settings (camelCase, as an editor sends them) for an ensemble of ``include`` on the fault server at ``url``;
    ``extra`` keys are added or override."""
    data: dict[str, Any] = {
        "endpoints": [{"url": url, "kind": "openai"}],
        "probeLocal": False,
        "embedded": "off",
        "includeModels": include,
        "verify": False,
        "history": False,
        "timeoutS": 20,
        "deadlineS": 60,
        "perEndpointConcurrency": 8,
        "discoveryTtlS": 600,
    }
    data.update(extra)
    return data


@dataclass
class Editor:
    """What a real editor keeps: open documents, versions, and the edits it applied on the server's request."""

    client: LanguageClient
    texts: dict[str, str] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    applied: list[lsp.ApplyWorkspaceEditParams] = field(default_factory=list)
    refuse: bool = False
    discard_confirmations: bool = False  # the user discards edits shown for confirmation (needsConfirmation)
    confirmations: list[str] = field(default_factory=list)  # labels of edits shown for confirmation
    status: list[Any] = field(default_factory=list)
    init_result: lsp.InitializeResult | None = None

    def open(self, uri: str, text: str, language: str = "python") -> None:
        self.texts[uri] = text
        self.versions[uri] = 1
        self.client.text_document_did_open(
            lsp.DidOpenTextDocumentParams(
                text_document=lsp.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)
            )
        )

    def change(self, uri: str, rng: lsp.Range, new_text: str) -> None:
        """Edit like a user: apply locally, bump the version, tell the server incrementally."""
        self.texts[uri] = _splice(self.texts[uri], rng, new_text)
        self.versions[uri] += 1
        self.client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
                content_changes=[lsp.TextDocumentContentChangePartial(range=rng, text=new_text)],
            )
        )

    def on_apply_edit(self, params: lsp.ApplyWorkspaceEditParams) -> lsp.ApplyWorkspaceEditResult:
        self.applied.append(params)
        if self.refuse:
            return lsp.ApplyWorkspaceEditResult(applied=False, failure_reason="refused by the test")
        annotations = params.edit.change_annotations or {}
        confirm = [a.label for a in annotations.values() if a.needs_confirmation]
        if confirm:
            # What VS Code does: show the edit in its refactor preview; the user applies or discards it.
            self.confirmations.extend(confirm)
            if self.discard_confirmations:
                return lsp.ApplyWorkspaceEditResult(applied=False)
        for change in params.edit.document_changes or []:
            assert isinstance(change, lsp.TextDocumentEdit)
            uri = change.text_document.uri
            if change.text_document.version != self.versions[uri]:
                return lsp.ApplyWorkspaceEditResult(applied=False, failure_reason="version mismatch")
            for edit in change.edits:
                assert isinstance(edit, lsp.TextEdit | lsp.AnnotatedTextEdit)
                self.change(uri, edit.range, edit.new_text)
        return lsp.ApplyWorkspaceEditResult(applied=True)

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("condition not met in time")
            await asyncio.sleep(0.02)


def _splice(text: str, rng: lsp.Range, new_text: str) -> str:
    lines = text.splitlines(keepends=True)

    def offset(pos: lsp.Position) -> int:
        return sum(len(line) for line in lines[: pos.line]) + pos.character

    return text[: offset(rng.start)] + new_text + text[offset(rng.end) :]


def fix_code_action_structuring(client: LanguageClient) -> None:
    """lsprotocol's client-side hook reads any code action that *has* a command as a bare ``Command`` (it only
    checks for the key); a ``Command``'s ``command`` is a string, a ``CodeAction``'s an object: use that."""
    converter = client.protocol._converter

    def hook(obj: Any, _: Any) -> lsp.Command | lsp.CodeAction:
        if isinstance(obj.get("command"), str):
            return converter.structure(obj, lsp.Command)
        return converter.structure(obj, lsp.CodeAction)

    converter.register_structure_hook(Union[lsp.Command, lsp.CodeAction], hook)  # noqa: UP007 - the key lsprotocol uses


def params(options: dict[str, Any] | None, capabilities: lsp.ClientCapabilities | None = None) -> lsp.InitializeParams:
    return lsp.InitializeParams(
        capabilities=capabilities or client_capabilities("visual-studio-code"),
        initialization_options=options,
        root_uri=WORKSPACE.as_uri(),
    )


class _WithEditor(Protocol):
    """A client that carries its editor: pytest-lsp's ``LanguageClient`` has no such attribute, the tests add it."""

    editor: Editor


def attach_editor(client: LanguageClient) -> Editor:
    """A new :class:`Editor` for ``client``, which :func:`editor_of` returns from then on."""
    editor = Editor(client)
    cast(_WithEditor, client).editor = editor
    return editor


def editor_of(client: LanguageClient) -> Editor:
    editor = cast(_WithEditor, client).editor
    assert isinstance(editor, Editor)
    return editor


Progress = lsp.WorkDoneProgressBegin | lsp.WorkDoneProgressReport | lsp.WorkDoneProgressEnd


def progress_of(client: LanguageClient, token: lsp.ProgressToken) -> list[Progress]:
    """The progress received for ``token``: pytest-lsp keeps the begin/report/end values, though it declares
    ``ProgressParams`` (against which mypy finds every ``isinstance`` impossible and skips what follows)."""
    return cast(list[Progress], client.progress_reports[token])


def command_argument(action: lsp.CodeAction) -> dict[str, Any]:
    """The first argument of ``action``'s command: our commands take one JSON object."""
    assert action.command is not None
    assert action.command.arguments
    argument = action.command.arguments[0]
    assert isinstance(argument, dict)
    return argument


def whole(text: str) -> lsp.Range:
    lines = text.splitlines()
    return lsp.Range(lsp.Position(0, 0), lsp.Position(len(lines), 0))


def span(start: int, end: int) -> dict[str, Any]:
    return {"start": {"line": start, "character": 0}, "end": {"line": end, "character": 0}}


async def command(client: LanguageClient, name: str, *args: Any) -> Any:
    return await client.workspace_execute_command_async(lsp.ExecuteCommandParams(command=name, arguments=list(args)))


async def started_token(client: LanguageClient, editor: Editor, known: set[Any] | None = None) -> Any:
    """Wait until a new run's progress has begun; its token."""
    known = set(known or ())

    def begun() -> bool:
        return any(
            t not in known and any(isinstance(v, lsp.WorkDoneProgressBegin) for v in vs)
            for t, vs in client.progress_reports.items()
        )

    await editor.wait_for(begun)
    return next(
        t
        for t, vs in client.progress_reports.items()
        if t not in known and any(isinstance(v, lsp.WorkDoneProgressBegin) for v in vs)
    )


async def open_session(
    client: LanguageClient, settings: dict[str, Any], capabilities: lsp.ClientCapabilities | None = None
) -> Editor:
    """Initialize ``client`` as an editor that applies the server's edits (``client.editor``) and keeps its status
    notifications; ``capabilities`` default to VS Code's."""
    editor = attach_editor(client)

    # pygls tags handlers with attributes, so they must be plain functions (not bound methods).
    def apply_edit(p: lsp.ApplyWorkspaceEditParams) -> lsp.ApplyWorkspaceEditResult:
        return editor.on_apply_edit(p)

    def status(p: Any) -> None:
        # pygls turns unknown notifications' params into namedtuples.
        editor.status.append(p._asdict() if hasattr(p, "_asdict") else dict(p))

    fix_code_action_structuring(client)
    client.feature(lsp.WORKSPACE_APPLY_EDIT)(apply_edit)
    client.feature("codeconductor/status")(status)
    editor.init_result = await client.initialize_session(params(settings, capabilities))
    return editor


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient, lsp_settings: dict[str, Any]) -> AsyncIterator[None]:
    await open_session(lsp_client, lsp_settings)
    yield
    await lsp_client.shutdown_session()
