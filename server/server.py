"""The CodeConductor language server object: everything the editor features share.

It holds the settings, the one ensemble pipeline, the stored results (``RunStore``) and the runs in flight, and
runs long work cancellably (``track_run``; ``features/_common.py`` adds the progress around it). Editor features
live in ``server/features/`` and only talk to this object; no state lives in module globals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
import threading
import uuid
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar
from urllib.parse import unquote

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.workspace import TextDocument

from codeconductor import __version__

from . import framing
from .protocol import STATUS_NOTIFICATION, StatusNotification
from .runs import RunStore

# The engine (pydantic, the settings model, the parsers) is imported inside the functions that use it: answering
# ``initialize`` needs none of it, and importing it took most of the server's start-up (docs/benchmarks.md).
if TYPE_CHECKING:
    from codeconductor.ensemble import Block, CodeContext, History, NullHistory, Pipeline, Result, Settings

__all__ = [
    "FULL_PARSE_LINES",
    "CodeConductorProtocol",
    "CodeConductorServer",
    "RunCancelled",
    "block_window",
    "blocks_near",
    "document_context",
]

logger = logging.getLogger(__name__)
# The loggers whose records reach the editor and follow the logLevel setting: the engine's and this package's
# (their names follow the packages' import names, which the build maps under codeconductor).
_PACKAGE = __name__.rpartition(".")[0]  # codeconductor.server
OWN_LOGGERS: tuple[str, ...] = (f"{_PACKAGE.rpartition('.')[0]}.ensemble", _PACKAGE)

_T = TypeVar("_T")
_NOT_GIVEN: Any = object()

_CLIENT_REPLY_TIMEOUT_S = 10.0
# Parsing a whole document holds the event loop (``ast.parse`` of 200,000 lines takes seconds and never lets go of
# the GIL, so a thread would not help): documents longer than this are parsed around the lines asked about.
FULL_PARSE_LINES = 5000
_WINDOW_REACH = 2000  # at most this many lines above and below them
_CONTEXT_MARGIN_CHARS = 8000  # surrounding text kept for build_context (twice its default budget)
_STUB_MAX_LINES = 2000  # a longer function is not a placeholder
_INTERNAL_ERROR = -32603
# Something that names a file: two path separators, a drive, a traceback line or an install directory.
_PATH_LIKE = re.compile(r"[\\/][^\s\\/]+[\\/]|[A-Za-z]:\\|site-packages|File \"|~/")


def _top_level(line: str) -> bool:
    """A line that starts a top-level statement (not indented, not a comment or a closing bracket)."""
    return bool(line) and line[0] not in " \t\r\n#)]}"


def block_window(lines: Sequence[str], first: int, last: int, reach: int = _WINDOW_REACH) -> tuple[int, int]:
    """Lines ``[a, b)`` holding lines ``first..last`` and the top-level statements around them: from the nearest
    top-level line at or above ``first`` (with its decorators) to the next one after ``last``, each at most
    ``reach`` lines away. Parsing only these finds the blocks enclosing those lines."""
    n = len(lines)
    if n == 0:
        return 0, 0
    first = min(max(first, 0), n - 1)
    last = min(max(last, first), n - 1)
    a, low = first, max(0, first - reach)
    while a > low and not _top_level(lines[a]):
        a -= 1
    while a > low and lines[a - 1].startswith("@"):
        a -= 1
    b, high = last + 1, min(n, last + 1 + reach)
    while b < high and not _top_level(lines[b]):
        b += 1
    return a, b


def _shift(block: Block, offset: int) -> Block:
    from codeconductor.ensemble import Block

    return Block(block.start + offset, block.end + offset, block.kind, block.name, block.header)


class RunCancelled(Exception):
    """The run was cancelled by the user (progress cancel, ``codeconductor.cancel``, ``$/cancelRequest``)."""


def blocks_near(lines: Sequence[str], line: int, language: str) -> list[Block]:
    """The functions and classes of the top-level statements around ``line`` (:func:`block_window`), with
    document line numbers: enough to know what encloses ``line``, in milliseconds however long the document."""
    from codeconductor.ensemble import parse_blocks

    a, b = block_window(lines, line, line)
    return [_shift(block, a) for block in parse_blocks("".join(lines[a:b]), language)]


def document_context(doc: TextDocument, start: int, end: int, language: str) -> CodeContext:
    """:func:`~codeconductor.ensemble.context.build_context` for lines ``[start, end)`` of ``doc``, bounded on huge documents:
    only the top-level statements around the selection (and enough text for its surroundings) are parsed."""
    from codeconductor.ensemble import CodeContext, build_context, enclosing_block, find_imports

    lines = doc.lines
    n = len(lines)
    if n <= FULL_PARSE_LINES:
        return build_context(doc.source, start, end, language=language, path=doc.path)
    start = max(0, min(start, n))
    end = max(start, min(end, n))
    imports = find_imports(doc.source, language)
    if end - start > FULL_PARSE_LINES:
        # Far more than the context budget: no room for surroundings (as build_context decides); the enclosing
        # block is the one around the first line.
        block = enclosing_block(blocks_near(lines, start, language), start, language, prefer="class")
        inside = block is not None and block.start >= start and block.end <= end
        return CodeContext(
            path=doc.path,
            language=language,
            selection="\n".join("".join(lines[start:end]).splitlines()),
            start_line=start,
            end_line=end,
            before="",
            after="",
            enclosing=None if block is None or inside else block.header,
            imports=imports,
        )
    a, b = _margin(lines, start, end)
    context = build_context("".join(lines[a:b]), start - a, end - a, language=language, path=doc.path)
    return context.model_copy(
        update={"start_line": context.start_line + a, "end_line": context.end_line + a, "imports": imports}
    )


def _margin(lines: Sequence[str], start: int, end: int) -> tuple[int, int]:
    """Lines around ``[start, end)`` with :data:`_CONTEXT_MARGIN_CHARS` of text on each side, widened to whole
    top-level statements."""
    above, used = start, 0
    while above > 0 and used < _CONTEXT_MARGIN_CHARS:
        above -= 1
        used += len(lines[above])
    below, used = end, 0
    while below < len(lines) and used < _CONTEXT_MARGIN_CHARS:
        used += len(lines[below])
        below += 1
    a, _ = block_window(lines, above, above)
    _, b = block_window(lines, max(below - 1, a), max(below - 1, a))
    return min(a, start), max(b, end)


class CodeConductorProtocol(LanguageServerProtocol):
    """pygls' protocol, plus: ``$/cancelRequest`` on a running command cancels its model calls.

    pygls cancels only the request's outer future (and answers RequestCancelled); the command's own task would go
    on calling models, so the server is told to cancel the run started by that request too.
    """

    def structure_message(self, data: dict[str, Any]) -> Any:
        """pygls drops a request whose params do not fit the method's types (logging it), so the client would wait
        for an answer forever: answer it with the error (InvalidParams) instead, then let pygls drop it."""
        if "method" in data and "params" not in data and self.get_message_type(data["method"]) is None:
            # params are optional in JSON-RPC; pygls' generic request type insists on them, which turned an unknown
            # method without params into an internal error instead of MethodNotFound.
            data = {**data, "params": None}
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            msg_id = data.get("id")
            if "method" in data and isinstance(msg_id, int | str) and not isinstance(msg_id, bool):
                error = type(exc)(f"{exc.message} for {str(data['method'])[:100]}", exc.code)
                self._send_response(msg_id, error=error.to_response_error())
            raise

    def _send_response(self, msg_id: Any, result: Any | None = None, error: lsp.ResponseError | None = None) -> None:
        """Every response goes through here: an error's traceback (pygls puts one in ``data`` of internal errors)
        goes to the server log, and the client gets the error's kind without details that could carry paths."""
        if error is not None and (error.code == _INTERNAL_ERROR or isinstance(error.data, dict)):
            data = error.data if isinstance(error.data, dict) else {}
            trace = "".join(str(line) for line in data.get("traceback", []))
            logger.error("internal error answering request %r: %s\n%s", msg_id, error.message, trace)
            message = error.message
            if error.code == _INTERNAL_ERROR:
                first = (error.message or "").strip().splitlines()[0] if (error.message or "").strip() else "error"
                if _PATH_LIKE.search(first) or len(first) > 200:
                    first = first.split(":", 1)[0][:60]  # the exception's kind only: its text names a file
                message = f"Internal error: {first} (details in the CodeConductor server log)"
            error = lsp.ResponseError(code=error.code, message=message)
        super()._send_response(msg_id, result, error)

    def _handle_cancel_notification(self, msg_id: Any) -> None:
        super()._handle_cancel_notification(msg_id)
        server = self._server
        if isinstance(server, CodeConductorServer):
            server.cancel_request(msg_id)


class CodeConductorServer(LanguageServer):
    """The language server: settings, pipeline, stored results, runs in flight."""

    def __init__(self) -> None:
        super().__init__("codeconductor", __version__, protocol_cls=CodeConductorProtocol)
        self._settings: Settings | None = None  # the defaults, made when first read
        self._initial: Any = _NOT_GIVEN  # initializationOptions, validated when the settings are first read
        self.init_options: dict[str, Any] = {}
        self.store = RunStore()
        self.model_count = 0
        self._pipeline: Pipeline | None = None
        self._history: History | NullHistory | None = None
        self._runs: dict[str, asyncio.Task[Any]] = {}
        self._request_runs: dict[Any, str] = {}  # JSON-RPC request id -> run id
        self._token_runs: dict[str, str] = {}  # progress token -> run id
        self._user_cancelled: set[str] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._blocks: dict[str, tuple[int | None, list[Block]]] = {}  # uri -> (version, functions/classes)
        self._stubs: dict[tuple[str, int | None, int, int], bool] = {}

    # ---- transport -------------------------------------------------------------------------------------------

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        """Serve over stdio with :mod:`codeconductor.server.framing`'s read loop (recovers from any bytes a client sends)."""
        self._stop_event = stop = threading.Event()
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))

        async def main() -> None:
            await framing.serve(framing.stdin_chunks(stdin or sys.stdin.buffer), self.protocol, stop)

        try:
            asyncio.run(main())
        except BrokenPipeError:
            logger.error("the connection to the client is lost; shutting down")
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.shutdown()  # type: ignore[no-untyped-call]

    def start_tcp(self, host: str, port: int) -> None:
        """Serve one TCP client at a time with the same read loop as :meth:`start_io`."""
        self._stop_event = stop = threading.Event()

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.protocol.set_writer(writer)
            await framing.serve(lambda: reader.read(65536), self.protocol, stop)
            self.shutdown()  # type: ignore[no-untyped-call]

        async def main() -> None:
            self._server = server = await asyncio.start_server(connection, host, port)
            async with server:
                await server.serve_forever()

        with contextlib.suppress(asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            asyncio.run(main())

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Errors outside a request (a failing notification handler): logged with details; the user is told only
        that something failed (pygls would show the exception's text, which can carry paths)."""
        logger.error("server error (%s): %s", getattr(source, "__name__", source), error)
        if getattr(source, "__name__", "") == "FeatureRequestError":
            return  # the request's error response says it
        self.show("CodeConductor: an internal error occurred; the details are in the server log.", 1)

    # ---- documents -------------------------------------------------------------------------------------------

    def document(self, uri: Any) -> TextDocument:
        """The open document ``uri``; InvalidParams when the client never opened it."""
        if not isinstance(uri, str):
            raise JsonRpcInvalidParams(f"uri must be a string, got {type(uri).__name__}")
        doc: TextDocument | None = self.workspace.text_documents.get(unquote(uri))
        if doc is None:
            raise JsonRpcInvalidParams(f"unknown document {uri!r} (not open)")
        return doc

    def blocks(self, doc: TextDocument, language: str, line: int | None = None) -> list[Block]:
        """The document's functions and classes, parsed once per version (code actions ask on every move). In a
        document longer than :data:`FULL_PARSE_LINES`, with ``line`` given: those around ``line`` only
        (:func:`block_window`), so a huge file costs milliseconds, not seconds of a blocked server."""
        lines = doc.lines
        if line is not None and len(lines) > FULL_PARSE_LINES:
            return blocks_near(lines, line, language)
        cached = self._blocks.get(doc.uri)
        if cached is not None and cached[0] == doc.version:
            return cached[1]
        from codeconductor.ensemble import parse_blocks

        blocks = parse_blocks(doc.source, language)
        self._blocks[doc.uri] = (doc.version, blocks)
        return blocks

    def is_stub(self, doc: TextDocument, start: int, end: int, language: str) -> bool:
        """Whether lines ``[start, end)`` are a stub function, remembered per document version."""
        if end - start > _STUB_MAX_LINES:
            return False  # parsing it would hold the server for seconds, and a placeholder is short
        key = (doc.uri, doc.version, start, end)
        found = self._stubs.get(key)
        if found is None:
            from codeconductor.ensemble import is_stub

            if len(self._stubs) > 256:
                self._stubs.clear()
            found = self._stubs[key] = is_stub("".join(doc.lines[start:end]), language)
        return found

    def forget(self, uri: str) -> None:
        self._blocks.pop(uri, None)
        self.store.close(uri)

    # ---- settings --------------------------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The settings in use (the client's ``initializationOptions`` once validated, else the defaults)."""
        if self._initial is not _NOT_GIVEN:
            self.apply_initial_settings()
        if self._settings is None:
            from codeconductor.ensemble import Settings

            self._settings = Settings()
        return self._settings

    @settings.setter
    def settings(self, value: Settings) -> None:
        self._settings = value

    def defer_initial_settings(self, options: Any) -> None:
        """Keep the client's ``initializationOptions`` (nested under ``codeconductor`` or not) to validate after
        the ``initialize`` reply: validating needs the settings model (pydantic), which the reply does not. They
        are applied at ``initialized``, or before if anything reads :attr:`settings` first."""
        self._initial = options

    def apply_initial_settings(self) -> None:
        """Validate and use the deferred ``initializationOptions`` (once); invalid ones are named to the user."""
        options, self._initial = self._initial, _NOT_GIVEN
        if options is _NOT_GIVEN or options is None:
            return
        if not isinstance(options, dict):
            self.apply_settings(options, source="initializationOptions")  # names the problem
            return
        if self.apply_settings(options, source="initializationOptions"):
            self.init_options = dict(options)

    def apply_settings(self, data: Any, *, source: str) -> bool:
        """Validate and use ``data``; on error tell the user which fields are wrong and keep the previous ones."""
        from codeconductor.ensemble import SettingsError, parse_settings

        try:
            settings = parse_settings(data, source=source)
        except SettingsError as exc:
            fields = "; ".join(f"{name}: {msg}" for name, msg in exc.errors) or str(exc)
            self.show(f"CodeConductor: invalid settings ({source}): {fields}. Keeping the previous settings.", 1)
            logger.warning("invalid settings from %s: %s", source, fields)
            return False
        history_changed = (settings.history, settings.history_path, settings.history_url) != (
            self.settings.history,
            self.settings.history_path,
            self.settings.history_url,
        )
        self.settings = settings
        if history_changed and self._pipeline is not None and not self._runs:
            # The history store is fixed per pipeline: start a fresh one with the new store.
            old, self._pipeline = self._pipeline, None
            self.spawn(old.aclose())
            if self._history is not None:
                self._history.close()
                self._history = None
        for name in OWN_LOGGERS:
            logging.getLogger(name).setLevel(settings.log_level.upper())
        if self._pipeline is not None:
            self._pipeline.update_settings(settings)
        logger.info("settings from %s applied", source)
        return True

    @property
    def pipeline(self) -> Pipeline:
        """The ensemble pipeline, created on first use (so starting the server stays fast), recording runs in the
        history the settings ask for (learned weights feed the next consensus)."""
        if self._pipeline is None:
            from codeconductor.ensemble import Pipeline, open_history

            self._history = open_history(self.settings)
            reason = getattr(self._history, "reason", None)
            if reason:  # a damaged history file: runs go on without it, and the user is told how to fix it
                self.show(f"CodeConductor: {reason}", 2)
            self._pipeline = Pipeline(self.settings, history=self._history)
        return self._pipeline

    @property
    def history(self) -> History | NullHistory | None:
        """The history the pipeline records into (None until the pipeline is first used)."""
        return self._history

    def feedback(self, result: Result, members: list[str], action: str) -> None:
        """Tell the history what the user did with a suggestion (applied the consensus, chose an alternative)."""
        if self._history is None or not members:
            return
        try:
            self._history.record_feedback(result.id, members, action)
        except Exception:  # feedback is advice; a locked database must not fail the user's edit
            logger.warning("could not record feedback for %s", result.id, exc_info=True)

    async def aclose(self) -> None:
        """Cancel runs and background work, release the pipeline (models, HTTP client)."""
        for task in [*self._runs.values(), *self._background]:
            task.cancel()
        if self._pipeline is not None:
            await self._pipeline.aclose()
            self._pipeline = None
        if self._history is not None:
            self._history.close()
            self._history = None

    # ---- messages to the user --------------------------------------------------------------------------------

    def show(self, message: str, level: int = 3) -> None:
        """``window/showMessage`` (1 error, 2 warning, 3 info)."""
        self.window_show_message(lsp.ShowMessageParams(type=lsp.MessageType(level), message=message))

    def send_status(self) -> None:
        """``codeconductor/status`` for status bars: how many models, how many runs in flight."""
        status: StatusNotification = {"models": self.model_count, "running": len(self._runs)}
        self.protocol.notify(STATUS_NOTIFICATION, status)

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """Run ``coro`` in the background, keeping a reference so it is not garbage-collected mid-way."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def refresh_models(self, refresh: bool = True) -> list[Any]:
        models = await self.pipeline.models(refresh=refresh)
        self.model_count = len(models)
        self.send_status()
        return models

    # ---- runs ------------------------------------------------------------------------------------------------

    @property
    def running(self) -> list[str]:
        return list(self._runs)

    def cancel_run(self, run_id: str | None = None) -> list[str]:
        """Cancel one run (or all); every model call of it stops at once. Returns the runs cancelled."""
        ids = [run_id] if run_id is not None else list(self._runs)
        done = []
        for rid in ids:
            task = self._runs.get(rid)
            if task is not None and not task.done():
                self._user_cancelled.add(rid)
                task.cancel()
                done.append(rid)
        return done

    def cancel_request(self, msg_id: Any) -> None:
        run_id = self._request_runs.get(msg_id)
        if run_id is not None:
            logger.info("request %s cancelled by the client: cancelling run %s", msg_id, run_id)
            self.cancel_run(run_id)

    def cancel_token(self, token: lsp.ProgressToken) -> None:
        run_id = self._token_runs.get(str(token))
        if run_id is not None:
            logger.info("progress %s cancelled by the user: cancelling run %s", token, run_id)
            self.cancel_run(run_id)

    async def track_run(self, run_id: str, work: Coroutine[Any, Any, _T], *, token: str | None) -> _T:
        """Await ``work`` as the run ``run_id``: listed by ``codeconductor.status`` and stopped at once by
        ``codeconductor.cancel``, by ``$/cancelRequest`` on the request being handled and by the cancel button of
        the progress ``token``. Raises :class:`RunCancelled` when the user cancelled it. Every long command (the
        ensemble, the fix-until-green loop, test generation) goes through here, so cancelling works the same."""
        task: asyncio.Task[_T] = asyncio.ensure_future(work)
        self._runs[run_id] = task
        msg_id = self.protocol.msg_id
        if msg_id is not None:
            self._request_runs[msg_id] = run_id
        if token is not None:
            self._token_runs[str(token)] = run_id
        self.send_status()
        try:
            return await task
        except asyncio.CancelledError as exc:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                task.cancel()
                raise  # the command itself is being cancelled (shutdown): let it go
            if run_id in self._user_cancelled:
                raise RunCancelled(run_id) from exc
            raise
        finally:
            self._runs.pop(run_id, None)
            self._user_cancelled.discard(run_id)
            if msg_id is not None:
                self._request_runs.pop(msg_id, None)
            if token is not None:
                self._token_runs.pop(str(token), None)
            self.send_status()

    async def create_progress(self, title: str) -> str | None:
        """A server-initiated progress token, begun; None when the client cannot show progress."""
        window = self.client_capabilities.window
        if window is None or not window.work_done_progress:
            return None
        token = f"codeconductor-{uuid.uuid4().hex[:12]}"
        try:
            await asyncio.wait_for(self.work_done_progress.create_async(token), _CLIENT_REPLY_TIMEOUT_S)
        except Exception:  # a client that refuses progress still gets its result
            logger.debug("client refused progress token", exc_info=True)
            return None
        self.work_done_progress.begin(
            token,
            lsp.WorkDoneProgressBegin(
                title=title, cancellable=True, message="waiting for models to answer", percentage=0
            ),
        )
        return token

    async def ask_client(self, call: Callable[[], Any], timeout: float | None = None) -> Any:
        """Await a request to the client with a timeout (a client that never answers must not hang a run)."""
        return await asyncio.wait_for(call(), timeout or _CLIENT_REPLY_TIMEOUT_S)
