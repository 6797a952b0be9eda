"""The CodeConductor language server object: everything the editor features share.

It holds the settings, the one ensemble pipeline, the stored results (``RunStore``) and the runs in flight, and
knows how to run the ensemble for a request with progress and cancellation. Editor features live in
``server/features/`` and only talk to this object; no state lives in module globals.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.workspace import TextDocument

from ensemble.context import Block, is_stub, parse_blocks
from ensemble.errors import SettingsError
from ensemble.settings import Settings, parse_settings
from ensemble.types import ProgressEvent, Request, Result

from .runs import RunStore

if TYPE_CHECKING:
    from ensemble.history import History, NullHistory
    from ensemble.pipeline import Pipeline

__all__ = ["STATUS_NOTIFICATION", "CodeConductorProtocol", "CodeConductorServer", "RunCancelled"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

STATUS_NOTIFICATION = "codeconductor/status"
_CLIENT_REPLY_TIMEOUT_S = 10.0


class RunCancelled(Exception):
    """The run was cancelled by the user (progress cancel, ``codeconductor.cancel``, ``$/cancelRequest``)."""


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

    def _handle_cancel_notification(self, msg_id: Any) -> None:
        super()._handle_cancel_notification(msg_id)
        server = self._server
        if isinstance(server, CodeConductorServer):
            server.cancel_request(msg_id)


class CodeConductorServer(LanguageServer):
    """The language server: settings, pipeline, stored results, runs in flight."""

    def __init__(self) -> None:
        super().__init__("codeconductor", "0.1.0", protocol_cls=CodeConductorProtocol)
        self.settings = Settings()
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

    # ---- documents -------------------------------------------------------------------------------------------

    def document(self, uri: Any) -> TextDocument:
        """The open document ``uri``; InvalidParams when the client never opened it."""
        if not isinstance(uri, str):
            raise JsonRpcInvalidParams(f"uri must be a string, got {type(uri).__name__}")
        doc: TextDocument | None = self.workspace.text_documents.get(unquote(uri))
        if doc is None:
            raise JsonRpcInvalidParams(f"unknown document {uri!r} (not open)")
        return doc

    def blocks(self, doc: TextDocument, language: str) -> list[Block]:
        """The document's functions and classes, parsed once per version (code actions ask on every move)."""
        cached = self._blocks.get(doc.uri)
        if cached is not None and cached[0] == doc.version:
            return cached[1]
        blocks = parse_blocks(doc.source, language)
        self._blocks[doc.uri] = (doc.version, blocks)
        return blocks

    def is_stub(self, doc: TextDocument, start: int, end: int, language: str) -> bool:
        """Whether lines ``[start, end)`` are a stub function, remembered per document version."""
        key = (doc.uri, doc.version, start, end)
        found = self._stubs.get(key)
        if found is None:
            if len(self._stubs) > 256:
                self._stubs.clear()
            found = self._stubs[key] = is_stub("".join(doc.lines[start:end]), language)
        return found

    def forget(self, uri: str) -> None:
        self._blocks.pop(uri, None)
        self.store.close(uri)

    # ---- settings --------------------------------------------------------------------------------------------

    def apply_settings(self, data: Any, *, source: str) -> bool:
        """Validate and use ``data``; on error tell the user which fields are wrong and keep the previous ones."""
        try:
            settings = parse_settings(data, source=source)
        except SettingsError as exc:
            fields = "; ".join(f"{name}: {msg}" for name, msg in exc.errors) or str(exc)
            self.show(f"CodeConductor: invalid settings ({source}): {fields}. Keeping the previous settings.", 1)
            logger.warning("invalid settings from %s: %s", source, fields)
            return False
        history_changed = (settings.history, settings.history_path) != (
            self.settings.history,
            self.settings.history_path,
        )
        self.settings = settings
        if history_changed and self._pipeline is not None and not self._runs:
            # The history store is fixed per pipeline: start a fresh one with the new store.
            old, self._pipeline = self._pipeline, None
            self.spawn(old.aclose())
            if self._history is not None:
                self._history.close()
                self._history = None
        logging.getLogger("ensemble").setLevel(settings.log_level.upper())
        logging.getLogger("server").setLevel(settings.log_level.upper())
        if self._pipeline is not None:
            self._pipeline.update_settings(settings)
        logger.info("settings from %s applied", source)
        return True

    @property
    def pipeline(self) -> Pipeline:
        """The ensemble pipeline, created on first use (so starting the server stays fast), recording runs in the
        history the settings ask for (learned weights feed the next consensus)."""
        if self._pipeline is None:
            from ensemble.history import open_history
            from ensemble.pipeline import Pipeline

            self._history = open_history(self.settings)
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
        self.protocol.notify(STATUS_NOTIFICATION, {"models": self.model_count, "running": len(self._runs)})

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

    async def run_ensemble(self, run_id: str, request: Request, *, title: str) -> Result:
        """Run the pipeline for ``request`` with ``$/progress`` and cancellation; raises :class:`RunCancelled`."""
        token = await self._create_progress(title)
        total = 0

        def on_progress(event: ProgressEvent) -> None:
            nonlocal total
            total = event.total
            if token is None or event.status in ("queued", "loading", "started"):
                return
            percentage = int(100 * event.done / event.total) if event.total else None
            self.work_done_progress.report(
                token,
                lsp.WorkDoneProgressReport(
                    message=f"{event.done}/{event.total} models answered", percentage=percentage, cancellable=True
                ),
            )

        end_message = "cancelled"
        try:
            result = await self.track_run(run_id, self.pipeline.run(request, on_progress=on_progress), token=token)
            end_message = result.summary
            return result
        finally:
            if token is not None:
                self.work_done_progress.end(token, lsp.WorkDoneProgressEnd(message=end_message))
                # pygls keeps every token it ever saw (one future per run): forget finished ones.
                self.work_done_progress.tokens.pop(token, None)

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

    async def _create_progress(self, title: str) -> str | None:
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
