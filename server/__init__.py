"""CodeConductor's language server: a thin pygls adapter putting the ensemble into any LSP editor (code actions,
progress, edits, diagnostics, hover, commands). Start it with ``python -m codeconductor.server`` or :func:`codeconductor.server.app.start`."""

from __future__ import annotations

__all__: list[str] = []
