"""The Model Manager: finds which model servers are up on this machine and which models they serve.

For the user this is "it just works": with Ollama, LM Studio, a llama.cpp server, vLLM, Jan, LocalAI,
text-generation-webui or koboldcpp running on its usual port, CodeConductor finds it and its models without any
configuration. Servers configured in ``Settings.endpoints`` are added (ones on other machines only when
``allow_remote`` is on, because code is sent to them). All endpoints are probed at once with short timeouts, so a
port where nothing listens costs next to nothing and a server that accepts connections but never answers costs
about a second. Which API a server speaks is detected (Ollama's ``/api/version`` first, since Ollama also speaks
the OpenAI API, then the OpenAI-compatible ``/v1/models``). When no server model is found, the in-process
embedded models are used (``Settings.embedded``). The result is cached for ``discovery_ttl_s``.

:meth:`Discovery.endpoints` tells per endpoint what happened (up, down, skipped-remote, error), for
``codeconductor models`` and the editor's status. API keys are read from the environment variable named in the
endpoint's settings when a request is made, and never logged.

Team servers (:mod:`codeconductor.ensemble.gateways`): an OpenAI-compatible endpoint that is a LiteLLM proxy, a vLLM or a
llama.cpp server is recognised, a LiteLLM model group's deployments are counted, and the same model found on
several endpoints becomes one member with several replicas (:mod:`codeconductor.ensemble.replicas`), so it has one vote.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, ConfigDict

from .errors import CodeConductorError
from .gateways import detect_openai_server
from .providers.base import Provider, ProviderContext
from .providers.registry import detectable_specs, provider_spec
from .replicas import group_replicas, replicas_of
from .settings import EndpointSettings, Settings, is_loopback_url
from .types import ModelInfo, ProviderKind

__all__ = [
    "DEFAULT_LOCAL_ENDPOINTS",
    "EMBEDDED_ENDPOINT",
    "PROBE_BUDGET_S",
    "Discovery",
    "EndpointState",
    "EndpointStatus",
    "LocalEndpoint",
]

logger = logging.getLogger(__name__)

# A server that accepts the connection but never answers costs at most this long (connect timeout aside).
PROBE_BUDGET_S = 1.0
# Listing models can take longer than detection (Ollama looks up each model's details).
LIST_TIMEOUT_S = 5.0
EMBEDDED_ENDPOINT = "embedded://"

EndpointState = Literal["up", "down", "skipped-remote", "skipped", "error"]


@dataclass(frozen=True)
class LocalEndpoint:
    """A well-known local server port."""

    name: str
    url: str


DEFAULT_LOCAL_ENDPOINTS: tuple[LocalEndpoint, ...] = (
    LocalEndpoint("Ollama", "http://127.0.0.1:11434"),
    LocalEndpoint("LM Studio", "http://127.0.0.1:1234"),
    LocalEndpoint("llama.cpp / LocalAI", "http://127.0.0.1:8080"),  # same default port: detection decides
    LocalEndpoint("vLLM", "http://127.0.0.1:8000"),
    LocalEndpoint("Jan", "http://127.0.0.1:1337"),
    LocalEndpoint("text-generation-webui", "http://127.0.0.1:5000"),
    LocalEndpoint("koboldcpp", "http://127.0.0.1:5001"),
)


class EndpointStatus(BaseModel):
    """What discovery found at one endpoint."""

    model_config = ConfigDict(extra="forbid")

    name: str  # a label: the server's usual name, or the configured name
    url: str
    source: Literal["default", "configured", "embedded"]
    state: EndpointState
    api: ProviderKind | None = None  # detected (or configured) API when up
    models: int = 0  # models used from it (after include/exclude)
    detail: str | None = None  # why it is down/skipped/in error, in words
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class _Target:
    name: str
    url: str
    source: Literal["default", "configured"]
    kind: Literal["auto", "ollama", "openai"]
    api_key_env: str | None = None


@dataclass
class _Snapshot:
    at: float
    models: list[ModelInfo]
    endpoints: list[EndpointStatus]
    notes: list[str]


class _ProbeFailure(Exception):
    """Internal: why an endpoint is not usable (becomes an EndpointStatus)."""

    def __init__(self, state: EndpointState, detail: str) -> None:
        super().__init__(detail)
        self.state: EndpointState = state
        self.detail = detail


def _normalize_url(url: str) -> str:
    """One spelling per server: no trailing slash or ``/v1``, ``localhost`` as 127.0.0.1 (so duplicates merge)."""
    parts = urlsplit(url.rstrip("/"))
    path = parts.path[:-3] if parts.path.endswith("/v1") else parts.path
    netloc = parts.netloc
    if parts.hostname == "localhost":
        netloc = netloc.replace("localhost", "127.0.0.1", 1)
    return urlunsplit((parts.scheme, netloc, path.rstrip("/"), "", ""))


def _matches(name: str, patterns: Sequence[str]) -> bool:
    lowered = name.lower()
    return any(fnmatch.fnmatchcase(lowered, pattern.lower()) for pattern in patterns)


class Discovery:
    """Finds models on local and configured servers; gives the provider for each model.

    ``client`` is the shared HTTP client (not closed here). ``local_endpoints`` replaces the well-known local
    ports (tests and benchmarks pass their own).
    """

    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient,
        *,
        local_endpoints: Sequence[LocalEndpoint] = DEFAULT_LOCAL_ENDPOINTS,
        probe_budget_s: float = PROBE_BUDGET_S,
    ) -> None:
        self._settings = settings
        self._client = client
        self._local = tuple(local_endpoints)
        self._budget = probe_budget_s
        self._snapshot: _Snapshot | None = None
        self._lock = asyncio.Lock()
        self._key_env: dict[str, str | None] = {}  # endpoint url -> env var holding its key
        self._labels: dict[str, str] = {}
        self._in_process: dict[ProviderKind, Provider] = {}  # one provider object per in-process kind

    @property
    def settings(self) -> Settings:
        return self._settings

    def update_settings(self, settings: Settings) -> None:
        """New settings; the cached model list is dropped."""
        self._settings = settings
        self.invalidate()

    def invalidate(self) -> None:
        """Forget the cached model list; the next call probes again."""
        self._snapshot = None

    @property
    def notes(self) -> list[str]:
        """Remarks from the last discovery, for the user (e.g. "no model servers found; using embedded models")."""
        return list(self._snapshot.notes) if self._snapshot else []

    async def models(self, refresh: bool = False) -> list[ModelInfo]:
        """The models to use, at most ``max_models``, filtered by ``include_models``/``exclude_models``."""
        return list((await self._discover(refresh)).models)

    async def endpoints(self, refresh: bool = False) -> list[EndpointStatus]:
        """What happened at each endpoint during the last discovery (probing first if needed)."""
        return [status.model_copy() for status in (await self._discover(refresh)).endpoints]

    def provider_for(self, model: ModelInfo) -> Provider:
        """The provider that serves ``model`` (its kind's :func:`~codeconductor.ensemble.providers.registry.provider_spec`
        makes it). HTTP providers are cheap views over the shared client; an in-process one is made once."""
        spec = provider_spec(model.provider)
        if spec.in_process:
            found = self._in_process.get(spec.kind)
            if found is None:
                found = self._in_process[spec.kind] = spec.create(ProviderContext(model.endpoint, self._client))
            return found
        context = ProviderContext(
            model.endpoint, self._client, api_key=self._api_key(model.endpoint), label=self._labels.get(model.endpoint)
        )
        return spec.create(context)

    async def aclose(self) -> None:
        """Release the in-process models, if loaded (the HTTP client belongs to the caller)."""
        providers = list(self._in_process.values())
        self._in_process.clear()
        for provider in providers:
            await provider.aclose()

    # -- probing ---------------------------------------------------------------------------------------------

    async def _discover(self, refresh: bool) -> _Snapshot:
        async with self._lock:  # concurrent callers share one probe
            snap = self._snapshot
            if snap is not None and not refresh and time.monotonic() - snap.at < self._settings.discovery_ttl_s:
                return snap
            snap = await self._probe_all()
            self._snapshot = snap
            return snap

    def _targets(self) -> list[_Target]:
        settings = self._settings
        targets: dict[str, _Target] = {}
        for endpoint in settings.endpoints:
            url = _normalize_url(endpoint.url)
            targets.setdefault(url, _configured(endpoint, url))
        if settings.probe_local:
            for local in self._local:
                url = _normalize_url(local.url)
                targets.setdefault(url, _Target(local.name, url, "default", "auto"))
        return list(targets.values())

    async def _probe_all(self) -> _Snapshot:
        settings = self._settings
        targets = self._targets()
        self._key_env = {t.url: t.api_key_env for t in targets}
        self._labels = {t.url: t.name for t in targets if t.source == "configured"}
        notes: list[str] = []
        statuses: list[EndpointStatus] = []
        probes: list[tuple[_Target, asyncio.Task[tuple[EndpointStatus, list[ModelInfo]]]]] = []
        # Loopback is decided on resolved addresses; resolving a name may take a moment, so not on the event loop.
        local = set() if settings.allow_remote else await asyncio.to_thread(_loopback_urls, targets)
        async with asyncio.TaskGroup() as group:
            for target in targets:
                if not settings.allow_remote and target.url not in local:
                    continue
                probes.append((target, group.create_task(self._probe(target))))
        found: list[ModelInfo] = []
        tasks = dict(probes)
        for target in targets:
            task = tasks.get(target)
            if task is None:
                statuses.append(
                    EndpointStatus(
                        name=target.name,
                        url=target.url,
                        source=target.source,
                        state="skipped-remote",
                        detail="not on this machine and allow_remote is off",
                    )
                )
                notes.append(f"skipped remote endpoint {target.url} (set allow_remote to use it)")
                continue
            status, models = task.result()
            statuses.append(status)
            found.extend(models)

        server_models = group_replicas(self._filter(found))
        embedded_models: list[ModelInfo] = []
        mode = settings.embedded
        if mode == "on" or (mode == "auto" and not server_models):
            embedded_status, embedded_models = await self._embedded_models()
            statuses.append(embedded_status)
            embedded_models = self._filter(embedded_models)
            if mode == "auto" and embedded_models:
                notes.append("no model servers found; using embedded models")
            elif embedded_status.state != "up":
                notes.append(f"embedded models unavailable: {embedded_status.detail}")

        chosen = self._limit(server_models + embedded_models, notes)
        counts: dict[str, int] = {}
        for model in chosen:
            for replica in replicas_of(model):
                counts[replica.endpoint] = counts.get(replica.endpoint, 0) + 1
        for status in statuses:
            if status.state == "up":
                status.models = counts.get(status.url, 0)
        return _Snapshot(at=time.monotonic(), models=chosen, endpoints=statuses, notes=notes)

    async def _probe(self, target: _Target) -> tuple[EndpointStatus, list[ModelInfo]]:
        started = time.perf_counter()

        def status(
            state: EndpointState, *, api: ProviderKind | None = None, detail: str | None = None
        ) -> EndpointStatus:
            return EndpointStatus(
                name=target.name,
                url=target.url,
                source=target.source,
                state=state,
                api=api,
                detail=detail,
                elapsed_s=round(time.perf_counter() - started, 4),
            )

        try:
            try:
                async with asyncio.timeout(self._budget):
                    api = await self._detect(target)
            except TimeoutError as exc:
                raise _ProbeFailure(
                    "error", f"accepts connections but did not answer within {self._budget:g} s"
                ) from exc
            try:
                provider = self.provider_for(ModelInfo(name="", provider=api, endpoint=target.url))
                models = await provider.list_models(timeout=LIST_TIMEOUT_S)
            except CodeConductorError as exc:
                raise _ProbeFailure("error", f"{api.value} API detected, but listing models failed: {exc}") from exc
            models = await self._describe(target, api, models)
        except _ProbeFailure as failure:
            log = logger.debug if failure.state == "down" else logger.info
            log("endpoint %s: %s", target.url, failure.detail)
            return status(failure.state, detail=failure.detail), []
        except Exception as exc:  # a surprise at one endpoint must not hide the others
            logger.exception("probing %s failed", target.url)
            return status("error", detail=f"{type(exc).__name__}: {exc}"), []
        detail = None if models else "up, but serves no text-generation model"
        return status("up", api=api, detail=detail), models

    async def _detect(self, target: _Target) -> ProviderKind:
        """Which API the server speaks. Raises _ProbeFailure (down / error)."""
        timeout = httpx.Timeout(self._budget, connect=self._settings.connect_timeout_s)
        answered_http = False
        tried = [spec for spec in detectable_specs() if target.kind in ("auto", spec.kind.value)]
        for spec in tried:
            probe = spec.probe
            assert probe is not None  # detectable_specs: only those with a probe
            headers = self.auth_headers(target.url) if probe.sends_key else {}
            response = await self._get(f"{target.url}{probe.path}", timeout, headers=headers)
            if response is not None:
                answered_http = True
                if response.status_code == 200 and _json_has(response, probe.key):
                    return spec.kind
                if probe.sends_key and response.status_code in (401, 403):
                    raise _ProbeFailure("error", f"HTTP {response.status_code}: check the API key (api_key_env)")
        if not answered_http:
            raise _ProbeFailure("down", "nothing listening")
        wanted = " or ".join(f"the {spec.title}" for spec in tried)
        raise _ProbeFailure("error", f"answers HTTP but does not speak {wanted} API")

    async def _get(self, url: str, timeout: httpx.Timeout, *, headers: dict[str, str]) -> httpx.Response | None:
        """GET, or None when nothing is listening."""
        try:
            return await self._client.get(url, timeout=timeout, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            return None
        except httpx.TimeoutException as exc:
            raise _ProbeFailure("error", f"accepts connections but did not answer within {self._budget:g} s") from exc
        except httpx.HTTPError as exc:
            raise _ProbeFailure("error", f"{type(exc).__name__}: {exc}") from exc

    def _api_key(self, url: str) -> str | None:
        env = self._key_env.get(url)
        if env is None:  # not probed by this instance (models passed in by the caller): the settings say
            env = next(
                (e.api_key_env for e in self._settings.endpoints if e.api_key_env and _normalize_url(e.url) == url),
                None,
            )
        return os.environ.get(env) if env else None

    def auth_headers(self, url: str) -> dict[str, str]:
        """The bearer header for endpoint ``url`` (from its ``api_key_env``), or none."""
        key = self._api_key(url)
        return {"Authorization": f"Bearer {key}"} if key else {}

    async def _describe(self, target: _Target, api: ProviderKind, models: list[ModelInfo]) -> list[ModelInfo]:
        """Say which server this is (LiteLLM, vLLM, llama.cpp, Ollama) and, for a gateway, how many deployments
        each model group has."""
        server = provider_spec(api).server
        if server is not None:
            return [m.model_copy(update={"server": server}) for m in models]
        if not models:
            return models
        try:  # as long as listing may take: a busy gateway answers slowly, and this is once per discovery
            async with asyncio.timeout(LIST_TIMEOUT_S):
                traits = await detect_openai_server(
                    self._client, target.url, self.auth_headers(target.url), LIST_TIMEOUT_S
                )
        except TimeoutError:
            logger.info("endpoint %s: could not tell which server it is in time", target.url)
            return models
        return [
            m.model_copy(update={"server": traits.server, "deployments": traits.deployments.get(m.name)})
            for m in models
        ]

    # -- embedded and filtering ----------------------------------------------------------------------------------

    def _embedded_provider(self) -> Provider:
        return self.provider_for(ModelInfo(name="", provider=ProviderKind.EMBEDDED, endpoint=EMBEDDED_ENDPOINT))

    async def _embedded_models(self) -> tuple[EndpointStatus, list[ModelInfo]]:
        started = time.perf_counter()

        def status(state: EndpointState, detail: str | None) -> EndpointStatus:
            return EndpointStatus(
                name="embedded (in-process)",
                url=EMBEDDED_ENDPOINT,
                source="embedded",
                state=state,
                api=ProviderKind.EMBEDDED if state == "up" else None,
                detail=detail,
                elapsed_s=round(time.perf_counter() - started, 4),
            )

        try:
            from .providers.embedded import EmbeddedProvider

            if not EmbeddedProvider.available():
                return status("down", "llama-cpp-python or the default model weights are not installed"), []
            models = await self._embedded_provider().list_models()
        except ImportError as exc:
            return status("down", f"cannot import the embedded runtime: {exc}"), []
        except CodeConductorError as exc:
            return status("error", str(exc)), []
        return status("up", None if models else "no embedded model weights found"), models

    def _filter(self, models: Sequence[ModelInfo]) -> list[ModelInfo]:
        settings = self._settings
        seen: set[str] = set()
        kept: list[ModelInfo] = []
        for model in models:
            if model.id in seen:
                continue
            seen.add(model.id)
            if settings.include_models and not _matches(model.name, settings.include_models):
                continue
            if settings.exclude_models and _matches(model.name, settings.exclude_models):
                continue
            kept.append(model)
        return kept

    def _limit(self, models: list[ModelInfo], notes: list[str]) -> list[ModelInfo]:
        limit = self._settings.max_models
        if len(models) <= limit:
            return models
        # Prefer models already in memory (no load wait), otherwise keep discovery order.
        ranked = sorted(range(len(models)), key=lambda i: models[i].loaded is not True)[:limit]
        notes.append(f"using {limit} of {len(models)} models (max_models)")
        return [models[i] for i in sorted(ranked)]


def _loopback_urls(targets: Sequence[_Target]) -> set[str]:
    return {t.url for t in targets if is_loopback_url(t.url)}


def _configured(endpoint: EndpointSettings, url: str) -> _Target:
    return _Target(endpoint.name or url, url, "configured", endpoint.kind, endpoint.api_key_env)


def _json_has(response: httpx.Response, key: str) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and key in body
