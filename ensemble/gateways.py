"""What a team's model servers say about themselves: which server it is, how many replicas a gateway has, and how
busy each one is.

* **LiteLLM proxy** (the gateway): ``/health/readiness`` (public: ``{"status": "healthy", ...}``) says whether it
  is ready; ``/model/info`` (with the key) lists each model group's deployments with the ``litellm_params`` they
  route to, i.e. how many replicas answer behind one model name (and that this is LiteLLM);
  ``/health/liveliness`` is its liveness probe. Each answer names the deployment that served it
  (``x-litellm-model-api-base``).
* **vLLM**: ``/health`` (200 when the engine is up) and the Prometheus text at ``/metrics``:
  ``vllm:num_requests_waiting`` (requests queued because the batch or the KV cache is full),
  ``vllm:num_requests_running`` and the KV-cache usage, ``vllm:kv_cache_usage_perc`` (``vllm:gpu_cache_usage_perc``
  before vLLM 0.10), a fraction in [0, 1].
* **llama.cpp** (the C++ ``llama-server`` with ``--metrics``): ``llamacpp:requests_deferred`` is its queue.
* **Ollama**: ``/api/ps`` says which models are in memory; a host that must first load the model is slower to answer.

:class:`LoadMonitor` keeps each replica's :class:`Load`, read at most every ``ttl_s`` with a short timeout so a busy
or silent metrics endpoint never delays a run by more than that; unknown load counts as idle. The dispatcher asks
the least loaded replica first, and asks an overloaded server later and for fewer samples.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from .providers.registry import provider_spec
from .types import ModelInfo

__all__ = [
    "OVERLOADED_WAITING",
    "Load",
    "LoadMonitor",
    "ServerTraits",
    "detect_openai_server",
    "parse_prometheus",
]

log = logging.getLogger(__name__)

# Requests queued per slot at which a server counts as overloaded (it is asked for fewer samples, and last).
OVERLOADED_WAITING = 4.0
# KV-cache usage at which vLLM starts queueing (and preempting) requests.
OVERLOADED_KV_CACHE = 0.95
_KV_METRICS = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")

HeadersFor = Callable[[str], Mapping[str, str]]


@dataclass(frozen=True)
class ServerTraits:
    """What an OpenAI-compatible endpoint turned out to be."""

    server: str | None  # "litellm", "vllm", "llama.cpp", or None (plain OpenAI-compatible)
    deployments: Mapping[str, int]  # LiteLLM: model group -> number of deployments


@dataclass(frozen=True)
class Load:
    """How busy one replica is. ``None`` fields: the server does not say."""

    ready: bool = True
    waiting: float | None = None  # requests queued at the server (all clients, not only ours)
    running: float | None = None
    kv_cache: float | None = None  # vLLM KV-cache usage in [0, 1]
    loaded: bool | None = None  # Ollama: the model is in memory there

    def pressure(self, capacity: int = 1) -> float:
        """Extra work ahead of a new request, in units of one slot; ``inf`` when the server is not ready."""
        if not self.ready:
            return math.inf
        value = (self.waiting or 0.0) / max(1, capacity)
        if self.kv_cache is not None and self.kv_cache >= OVERLOADED_KV_CACHE:
            value += 1.0
        if self.loaded is False:
            value += 0.5  # it must load the model first
        return value

    def overloaded(self, capacity: int = 1) -> bool:
        return self.pressure(capacity) >= OVERLOADED_WAITING


_LINE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> list[tuple[str, dict[str, str], float]]:
    """The samples of a Prometheus text exposition: ``(metric, labels, value)``; comments and bad lines skipped."""
    samples: list[tuple[str, dict[str, str], float]] = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            continue
        try:
            value = float(match.group(3))
        except ValueError:
            continue
        labels = {k: v.replace('\\"', '"').replace("\\\\", "\\") for k, v in _LABEL.findall(match.group(2) or "")}
        samples.append((match.group(1), labels, value))
    return samples


def _metric(samples: Sequence[tuple[str, dict[str, str], float]], names: Sequence[str], model: str) -> float | None:
    """The sum of the first of ``names`` present, over the samples for ``model`` (or all, when none name one)."""
    for name in names:
        found = [(labels, value) for metric, labels, value in samples if metric == name]
        if not found:
            continue
        mine = [v for labels, v in found if labels.get("model_name") == model]
        if mine:
            return sum(mine)
        if not any("model_name" in labels for labels, _ in found):
            return sum(v for _, v in found)
        return 0.0
    return None


async def _get(
    client: httpx.AsyncClient, url: str, headers: Mapping[str, str], timeout: float
) -> httpx.Response | None:
    try:
        return await client.get(url, headers=dict(headers), timeout=timeout)
    except httpx.HTTPError as exc:
        log.debug("GET %s: %s", url, type(exc).__name__)
        return None


def _json(response: httpx.Response | None) -> Any:
    if response is None or response.status_code != 200:
        return None
    try:
        return response.json()
    except ValueError:
        return None


async def detect_openai_server(
    client: httpx.AsyncClient, url: str, headers: Mapping[str, str], timeout: float
) -> ServerTraits:
    """Which server an OpenAI-compatible endpoint is (LiteLLM, vLLM, llama.cpp), and LiteLLM's deployments."""
    readiness = _json(await _get(client, f"{url}/health/readiness", headers, timeout))
    if isinstance(readiness, dict) and "status" in readiness:
        # LiteLLM's readiness is {"status": "healthy", "db": ...}; its /model/info lists each deployment with the
        # litellm_params it routes to, which nothing else serves.
        info = _json(await _get(client, f"{url}/model/info", headers, timeout))
        entries = [e for e in (info.get("data") or []) if isinstance(e, dict)] if isinstance(info, dict) else []
        if "litellm_version" in readiness or any("litellm_params" in e for e in entries):
            counts: dict[str, int] = {}
            for entry in entries:
                if isinstance(entry.get("model_name"), str):
                    counts[entry["model_name"]] = counts.get(entry["model_name"], 0) + 1
            return ServerTraits("litellm", counts)
    metrics = await _get(client, f"{url}/metrics", headers, timeout)
    if metrics is not None and metrics.status_code == 200:
        text = metrics.text
        if "vllm:" in text:
            return ServerTraits("vllm", {})
        if "llamacpp:" in text:
            return ServerTraits("llama.cpp", {})
    return ServerTraits(None, {})


class LoadMonitor:
    """Reads and caches each replica's :class:`Load` (see the module docstring). Never raises."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        headers_for: HeadersFor | None = None,
        ttl_s: float = 2.0,
        timeout_s: float = 0.25,
    ) -> None:
        self._client = client
        self._headers_for = headers_for or (lambda _url: {})
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self._loads: dict[tuple[str, str], tuple[float, Load]] = {}
        self._inflight: dict[str, asyncio.Task[None]] = {}

    def load(self, replica: ModelInfo) -> Load | None:
        """The last load read for ``replica``; None when unknown (never read, or the server does not say)."""
        entry = self._loads.get((replica.endpoint, replica.name))
        return entry[1] if entry else None

    def set_load(self, replica: ModelInfo, load: Load) -> None:
        """Record a load (the dispatcher does, when a replica fails to connect)."""
        self._loads[(replica.endpoint, replica.name)] = (time.monotonic(), load)

    async def refresh(self, replicas: Sequence[ModelInfo]) -> None:
        """Read the load of every replica that can say, unless read within ``ttl_s``; at most ``timeout_s``."""
        now = time.monotonic()
        by_endpoint: dict[str, list[ModelInfo]] = {}
        for replica in replicas:
            if _source(replica) is None:
                continue
            entry = self._loads.get((replica.endpoint, replica.name))
            if entry is None or now - entry[0] >= self.ttl_s:
                by_endpoint.setdefault(replica.endpoint, []).append(replica)
        if not by_endpoint:
            return
        tasks = []
        for endpoint, group in by_endpoint.items():
            task = self._inflight.get(endpoint)
            if task is None or task.done():  # concurrent runs share one read per endpoint
                task = self._inflight[endpoint] = asyncio.ensure_future(self._read(endpoint, group))
            tasks.append(task)
        try:
            async with asyncio.timeout(self.timeout_s * 2):
                await asyncio.gather(*(asyncio.shield(t) for t in tasks), return_exceptions=True)
        except TimeoutError:
            log.debug("load read timed out for %s", ", ".join(by_endpoint))

    async def _read(self, endpoint: str, replicas: Sequence[ModelInfo]) -> None:
        source = _source(replicas[0])
        headers = self._headers_for(endpoint)
        try:
            if source == "vllm":
                loads = await self._vllm(endpoint, replicas, headers)
            elif source == "ollama":
                loads = await self._ollama(endpoint, replicas)
            elif source == "litellm":
                loads = await self._litellm(endpoint, replicas)
            else:
                return
        except Exception:  # a load signal is advice: never let it break a run
            log.exception("reading the load of %s failed", endpoint)
            return
        at = time.monotonic()
        for replica, load in zip(replicas, loads, strict=True):
            self._loads[(replica.endpoint, replica.name)] = (at, load)

    async def _vllm(self, endpoint: str, replicas: Sequence[ModelInfo], headers: Mapping[str, str]) -> list[Load]:
        health, metrics = await asyncio.gather(
            _get(self._client, f"{endpoint}/health", headers, self.timeout_s),
            _get(self._client, f"{endpoint}/metrics", headers, self.timeout_s),
        )
        ready = health is not None and health.status_code == 200
        samples = parse_prometheus(metrics.text) if metrics is not None and metrics.status_code == 200 else []
        return [
            Load(
                ready=ready,
                waiting=_metric(samples, ("vllm:num_requests_waiting",), r.name),
                running=_metric(samples, ("vllm:num_requests_running",), r.name),
                kv_cache=_metric(samples, _KV_METRICS, r.name),
            )
            for r in replicas
        ]

    async def _ollama(self, endpoint: str, replicas: Sequence[ModelInfo]) -> list[Load]:
        body = _json(await _get(self._client, f"{endpoint}/api/ps", {}, self.timeout_s))
        if not isinstance(body, dict):
            return [Load(ready=False)] * len(replicas)
        loaded = {str(m.get("name") or m.get("model")) for m in body.get("models") or [] if isinstance(m, dict)}
        return [Load(loaded=r.name in loaded) for r in replicas]

    async def _litellm(self, endpoint: str, replicas: Sequence[ModelInfo]) -> list[Load]:
        body = _json(await _get(self._client, f"{endpoint}/health/readiness", {}, self.timeout_s))
        ready = isinstance(body, dict) and str(body.get("status", "")).lower() in ("healthy", "connected")
        return [Load(ready=ready)] * len(replicas)


def _source(replica: ModelInfo) -> str | None:
    fixed = provider_spec(replica.provider).server
    if fixed is not None:
        return fixed
    if replica.server in ("vllm", "litellm"):
        return replica.server
    return None
