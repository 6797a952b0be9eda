"""Starts the CodeConductor language server over stdio (what editors launch) or TCP (for debugging, or several
editors sharing one server). ``codeconductor serve`` calls :func:`start`."""

from __future__ import annotations

import logging
import sys

from .features import register_all
from .logbridge import install
from .server import CodeConductorServer

__all__ = ["create_server", "start"]


def create_server() -> CodeConductorServer:
    """A server with every feature registered (tests and benchmarks start it in-process too)."""
    ls = CodeConductorServer()
    register_all(ls)
    install(ls)
    return ls


def start(tcp: tuple[str, int] | None = None) -> None:
    """Serve until the client says exit: stdio by default, or TCP on ``tcp`` = (host, port)."""
    # stdout carries JSON-RPC: anything logged before the client connects goes to stderr.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    ls = create_server()
    if tcp is not None:
        ls.start_tcp(*tcp)
    else:
        ls.start_io()
