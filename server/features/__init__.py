"""The editor features, one module each; :func:`register_all` wires them onto a server."""

from __future__ import annotations

from ..server import CodeConductorServer
from . import code_actions, commands, configuration, diagnostics, fix_with_tests, hover, progress

__all__ = ["register_all"]


def register_all(ls: CodeConductorServer) -> None:
    for module in (configuration, diagnostics, code_actions, commands, fix_with_tests, hover, progress):
        module.register(ls)
