"""The comparison server for ``bench.lsp``: a minimal pygls server that answers the same requests trivially
(a fixed list of five code actions carrying commands, and no hover). What any pygls server costs per request;
CodeConductor's server is measured against it.

    python -m bench.lsp_minimal      (speaks LSP over stdio)
"""

from __future__ import annotations

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

__all__ = ["create", "main"]

_TITLES = ["Fix with ensemble", "Improve with ensemble", "Add docstring", "Review with ensemble", "Implement"]


def create() -> LanguageServer:
    server = LanguageServer("minimal", "0")

    @server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION)
    def code_actions(ls: LanguageServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        args = [
            {
                "uri": params.text_document.uri,
                "range": {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 0}},
            }
        ]
        return [
            lsp.CodeAction(title=t, kind="refactor", command=lsp.Command(title=t, command="x.run", arguments=args))
            for t in _TITLES
        ]

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(ls: LanguageServer, params: lsp.HoverParams) -> lsp.Hover | None:
        return None

    return server


def main() -> None:
    create().start_io()


if __name__ == "__main__":
    main()
