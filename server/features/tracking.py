"""Keeping stored results on their lines while the user types (``textDocument/didChange``) and dropping them when
the document closes (``textDocument/didClose``); the diagnostics follow (:mod:`codeconductor.server.runs` decides what moves)."""

from __future__ import annotations

from urllib.parse import unquote

from lsprotocol import types as lsp

from ..diagnostics import publish
from ..edits import doc_lines
from ..server import CodeConductorServer

__all__ = ["did_change", "did_close"]


def did_change(server: CodeConductorServer, params: lsp.DidChangeTextDocumentParams) -> None:
    doc = server.workspace.text_documents.get(unquote(params.text_document.uri))
    if doc is None or not server.store.for_uri(doc.uri):
        return  # the common case: nothing stored here, nothing to do
    uri = doc.uri
    changes = [(getattr(change, "range", None), change.text) for change in params.content_changes]
    if server.store.on_change(uri, changes, doc_lines(doc)):
        publish(server, uri)


def did_close(server: CodeConductorServer, params: lsp.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    had = bool(server.store.for_uri(uri))
    server.forget(uri)
    if had:
        server.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
