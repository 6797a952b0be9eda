"""Reading JSON-RPC frames so that no input can stop the server: the read loop used instead of pygls' own.

pygls reads ``Content-Length`` headers with an anchored pattern and a fixed state machine: after one malformed header
(``Content-Length: abc``) every following header is glued to the previous body and the server never answers again;
a body that is not UTF-8 or nests too deeply is logged and dropped, so the client waits forever. Here:

* :class:`FrameParser` (no I/O) finds the next well-formed header anywhere in the byte stream, so garbage, a bad
  length or a body shorter than announced costs that one message and the stream recovers at the next header. A body
  that stays incomplete for :data:`STALL_S` with no byte arriving (a length larger than what was sent) is given up
  and searched for the next header. Lengths over :data:`MAX_BODY` are refused.
* :func:`dispatch` answers what cannot be read: invalid UTF-8 and invalid JSON with ``-32700``, nesting too deep and
  messages that are not JSON-RPC objects with ``-32600`` — to the request's id when it can be read from the bytes
  (``null`` otherwise, as JSON-RPC says), and for notifications an error in the log.
* :func:`serve` runs the loop over stdin (a reader thread) or a TCP stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
from collections.abc import Awaitable, Callable
from typing import Any, BinaryIO

from lsprotocol.types import ResponseError
from pygls.exceptions import JsonRpcException
from pygls.protocol import JsonRPCProtocol

__all__ = ["MAX_BODY", "STALL_S", "FrameParser", "dispatch", "peek_envelope", "serve", "stdin_chunks"]

logger = logging.getLogger(__name__)

MAX_BODY = 128 * 1024 * 1024  # a 5 MB document is normal; a frame claiming more than this is refused
STALL_S = 2.0  # a body with no byte arriving for this long was announced longer than it is
PARSE_ERROR, INVALID_REQUEST = -32700, -32600
_CHUNK = 65536
_KEEP = 4096  # bytes kept while no header is found (a header cut in two by a read)

# One well-formed header block, wherever it starts: Content-Length (any case), then other headers, then a blank line.
# Header names are letters, digits and dashes (all the LSP base protocol uses), so a JSON body glued to a header
# line is never taken for one.
_HEADER = re.compile(
    rb"content-length[ \t]*:[ \t]*(\d{1,15})[ \t]*\r\n(?:[A-Za-z][A-Za-z0-9-]*[ \t]*:[^\r\n]*\r\n)*\r\n",
    re.IGNORECASE,
)
_HEADER_LINES = re.compile(rb"(?:[A-Za-z][A-Za-z0-9-]*[ \t]*:[^\r\n]*\r\n)*")
_MENTIONS_HEADER = re.compile(rb"content-length", re.IGNORECASE)


class FrameParser:
    """Bytes in, message bodies out; never stuck. ``skipped`` counts the bytes thrown away (for tests and logs)."""

    def __init__(self, max_body: int = MAX_BODY) -> None:
        self._buf = bytearray()
        self._length: int | None = None  # the body length of the header just read
        self.max_body = max_body
        self.skipped = 0

    @property
    def in_body(self) -> bool:
        """A header was read and its body is not complete yet."""
        return self._length is not None

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next_body(self) -> bytes | None:
        """The next complete body, or None until more bytes arrive."""
        if self._length is None and not self._find_header():
            return None
        assert self._length is not None
        if len(self._buf) < self._length:
            return None
        body = bytes(self._buf[: self._length])
        del self._buf[: self._length]
        self._length = None
        return body

    def stalled(self) -> None:
        """No byte came for a while in the middle of a body: the length was a lie. Look for a header in what came."""
        if self._length is not None:
            logger.error(
                "JSON-RPC framing: a body announced as %d bytes stopped after %d; resynchronising",
                self._length,
                len(self._buf),
            )
            self._length = None

    def push_back(self, body: bytes) -> None:
        """Search an unusable body again for a header (it may have swallowed the next message)."""
        if _MENTIONS_HEADER.search(body):
            self._buf[:0] = body[1:]

    def _find_header(self) -> bool:
        match = _HEADER.search(self._buf)
        if match is None:
            if len(self._buf) > _KEEP:
                cut = len(self._buf) - _KEEP
                self._skip(bytes(self._buf[:cut]))
                del self._buf[:cut]
            return False
        if match.start():
            self._skip(bytes(self._buf[: match.start()]))
        length = int(match.group(1))
        del self._buf[: match.end()]
        if length > self.max_body:
            logger.error("JSON-RPC framing: refused a %d-byte message (limit %d); resynchronising", length, MAX_BODY)
            return self._find_header()
        self._length = length
        return True

    def _skip(self, data: bytes) -> None:
        # Headers other than Content-Length (Content-Type) before it are normal; anything else is not.
        if _HEADER_LINES.fullmatch(data) is None:
            self.skipped += len(data)
            logger.error("JSON-RPC framing: skipped %d bytes that were not a message: %r", len(data), data[:80])


# ---- reading what a broken message says about itself -------------------------------------------------------------

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]]', re.S)
_COLON = re.compile(r"\s*:\s*")


def peek_envelope(text: str) -> tuple[Any, str | None, bool, bool]:
    """``(id, method, has_id, is_response)`` of a JSON-RPC message that could not be parsed whole (nested too
    deeply, cut short, invalid UTF-8 replaced), read from its top-level members only; ``(None, None, False,
    False)`` when none is readable. ``is_response``: it has a ``result`` or ``error`` and no ``method``."""
    decoder = json.JSONDecoder()
    found: dict[str, Any] = {}
    keys: set[str] = set()
    depth = 0
    for token in _TOKEN.finditer(text):
        value = token.group()
        if value in "{[":
            depth += 1
            continue
        if value in "}]":
            depth -= 1
            continue
        if depth != 1:
            continue
        colon = _COLON.match(text, token.end())
        if colon is None:
            continue  # a value, not a key
        key = value[1:-1]
        keys.add(key)
        if key not in ("id", "method") or key in found:
            continue
        try:
            found[key], _ = decoder.raw_decode(text, colon.end())
        except (ValueError, RecursionError):
            continue
    msg_id = found.get("id")
    valid_id = "id" in found and (isinstance(msg_id, str) or (isinstance(msg_id, int) and not isinstance(msg_id, bool)))
    method = found.get("method")
    is_response = "method" not in keys and bool(keys & {"result", "error"})
    return (msg_id if valid_id else None), (method if isinstance(method, str) else None), valid_id, is_response


def _refuse(protocol: JsonRPCProtocol, text: str, code: int, why: str) -> None:
    msg_id, method, has_id, is_response = peek_envelope(text)
    if is_response:
        logger.error("dropped a response to %r: %s", msg_id, why)
        return
    if method is not None and not has_id:
        logger.error("dropped a notification %r: %s", method[:100], why)
        return
    logger.error("refused a message (id %r, method %r): %s", msg_id, (method or "")[:100], why)
    protocol._send_response(msg_id, error=ResponseError(code=code, message=why))


def dispatch(protocol: JsonRPCProtocol, body: bytes, parser: FrameParser | None = None) -> None:
    """Hand one body to pygls, answering (or logging) what it could not read."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        _refuse(
            protocol, body.decode("utf-8", "replace"), PARSE_ERROR, f"Parse error: not valid UTF-8 at byte {exc.start}"
        )
        return
    try:
        message = json.loads(text, object_hook=protocol.structure_message)
    except RecursionError:
        _refuse(protocol, text, INVALID_REQUEST, "Invalid Request: nested too deeply")
        return
    except json.JSONDecodeError as exc:
        _refuse(protocol, text, PARSE_ERROR, f"Parse error: {exc.msg} at character {exc.pos}")
        if parser is not None:
            parser.push_back(body)
        return
    except JsonRpcException:
        # structure_message already answered a request it could not type (see CodeConductorProtocol).
        logger.warning("message not handled: its params do not fit the method", exc_info=True)
        return
    if not hasattr(message, "jsonrpc"):  # a scalar, a batch, or an object without "jsonrpc"
        _refuse(protocol, text, INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 message object")
        return
    try:
        protocol.handle_message(message)
    except Exception:
        logger.exception("unable to handle a message")


# ---- the loop ----------------------------------------------------------------------------------------------------


def stdin_chunks(stream: BinaryIO) -> Callable[[], Awaitable[bytes]]:
    """A source of chunks from ``stream``, read by a daemon thread (a blocked read never holds up the exit)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    try:
        fd = stream.fileno()
    except (OSError, ValueError, AttributeError):
        fd = -1
    # The file descriptor itself where there is one: a thread blocked in a buffered read holds the buffer's lock,
    # which the interpreter wants at exit ("could not acquire lock for <stdin> at interpreter shutdown").
    read: Callable[[int], bytes] = (lambda n: os.read(fd, n)) if fd >= 0 else getattr(stream, "read1", stream.read)

    def pump() -> None:
        while True:
            try:
                chunk = read(_CHUNK)
            except (OSError, ValueError):
                chunk = b""
            try:
                loop.call_soon_threadsafe(queue.put_nowait, chunk)
            except RuntimeError:  # the loop is closed
                return
            if not chunk:
                return

    threading.Thread(target=pump, name="lsp-stdin", daemon=True).start()
    return queue.get


async def serve(read_chunk: Callable[[], Awaitable[bytes]], protocol: JsonRPCProtocol, stop: threading.Event) -> None:
    """Read and dispatch messages until end of input or ``stop``."""
    parser = FrameParser()
    while not stop.is_set():
        while (body := parser.next_body()) is not None:
            dispatch(protocol, body, parser)
            await asyncio.sleep(0)  # let handlers scheduled by this message start before the next is read
        try:
            chunk = await asyncio.wait_for(read_chunk(), STALL_S if parser.in_body else None)
        except TimeoutError:
            parser.stalled()
            continue
        if not chunk:
            logger.info("end of input: the client closed the connection")
            break
        parser.feed(chunk)
