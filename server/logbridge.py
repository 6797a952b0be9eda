"""Shows the server's and the engine's log in the editor (``window/logMessage``) instead of stdout, which is the
JSON-RPC channel. Records logged from worker threads (embedded models) are handed to the event loop's thread."""

from __future__ import annotations

import asyncio
import logging
import threading

from lsprotocol import types as lsp

from .server import OWN_LOGGERS, CodeConductorServer

__all__ = ["LogBridge", "install"]

_TYPES = {
    logging.CRITICAL: lsp.MessageType.Error,
    logging.ERROR: lsp.MessageType.Error,
    logging.WARNING: lsp.MessageType.Warning,
    logging.INFO: lsp.MessageType.Info,
    logging.DEBUG: lsp.MessageType.Log,
}


class LogBridge(logging.Handler):
    """A logging handler sending each record to the client as ``window/logMessage``."""

    def __init__(self, ls: CodeConductorServer) -> None:
        super().__init__()
        self.ls = ls
        self.loop: asyncio.AbstractEventLoop | None = None
        self._local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._local, "busy", False):
            return  # sending logged something itself: do not loop
        try:
            message = self.format(record)
        except Exception:
            self.handleError(record)
            return
        kind = _TYPES.get(record.levelno, lsp.MessageType.Log)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None:
            self.loop = running
            self._send(kind, message)
        elif self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._send, kind, message)

    def _send(self, kind: lsp.MessageType, message: str) -> None:
        if self.ls.protocol.writer is None:
            return  # not connected yet (or any more)
        self._local.busy = True
        try:
            self.ls.window_log_message(lsp.LogMessageParams(type=kind, message=message))
        except Exception:  # a closed pipe must not take the server down with it
            pass
        finally:
            self._local.busy = False


def install(ls: CodeConductorServer, loggers: tuple[str, ...] = OWN_LOGGERS) -> LogBridge:
    """Attach a :class:`LogBridge` to the engine's and server's loggers."""
    bridge = LogBridge(ls)
    bridge.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    for name in loggers:
        logger = logging.getLogger(name)
        logger.addHandler(bridge)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
    return bridge
