"""The editor features, one module each; :func:`register_all` wires them onto a server. A feature imports only
:mod:`._common` and the server layer (``server/*.py``), never another feature."""

from __future__ import annotations

from ..server import CodeConductorServer
from . import code_actions, commands, configuration, fix_with_tests, hover, lifecycle, progress, tracking

__all__ = ["register_all"]


def register_all(ls: CodeConductorServer) -> None:
    for module in (configuration, tracking, code_actions, commands, fix_with_tests, hover, progress, lifecycle):
        module.register(ls)
