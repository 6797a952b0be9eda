"""CodeConductor's language server: a thin pygls adapter putting the ensemble into any LSP editor (code actions,
progress, edits, diagnostics, hover, commands). Start it with ``python -m codeconductor.server``, ``codeconductor
serve`` or :func:`serve`."""

from __future__ import annotations

__all__ = ["serve"]


def serve(tcp: str | None = None) -> None:
    """Run the language server until its client leaves: over stdio, or listening on ``tcp`` (``HOST:PORT``; an empty
    host is 127.0.0.1). The server's modules are imported here, not with the package, so that the handshake
    (``python -m codeconductor.server --handshake``) stays fast."""
    from .app import start

    if tcp:
        host, _, port = tcp.rpartition(":")
        start((host or "127.0.0.1", int(port)))
    else:
        start()
