"""What every provider implements, and the one place transport errors are translated.

A provider speaks one server's API (Ollama, OpenAI-compatible) or runs models in-process (embedded). Providers
know nothing of prompts or consensus: they list models and generate text, streaming tokens to an optional
callback. All of them share one ``httpx.AsyncClient`` owned by the caller. :class:`ProviderSpec` is what each
provider's module declares about its kind (:mod:`codeconductor.ensemble.providers.registry`).
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from ..errors import (
    ProviderClosed,
    ProviderError,
    ProviderHTTPError,
    ProviderProtocolError,
    ProviderTimeout,
    ProviderUnavailable,
)
from ..types import ChatMessage, GenerationParams, GenerationResult, ModelInfo, ProviderKind, Request

__all__ = ["ApiProbe", "OnToken", "Provider", "ProviderContext", "ProviderSpec", "translate_transport_errors"]

OnToken = Callable[[str], None]


class Provider(abc.ABC):
    """One endpoint (or the in-process runtime) and the models it serves."""

    kind: ProviderKind

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    @abc.abstractmethod
    async def probe(self, timeout: float = 0.5) -> bool:
        """True when the endpoint is up and speaks this provider's API. Never raises; at most ``timeout`` s."""

    @abc.abstractmethod
    async def list_models(self, timeout: float = 2.0) -> list[ModelInfo]:
        """Models that can generate text (embedding-only models left out), with whatever metadata is known."""

    @abc.abstractmethod
    async def generate(
        self,
        model: ModelInfo,
        messages: Sequence[ChatMessage],
        params: GenerationParams,
        on_token: OnToken | None = None,
    ) -> GenerationResult:
        """Generate one answer. Chat models get ``messages``; completion-only models (``model.chat`` False) get
        them rendered into one prompt by the provider. Streams when ``on_token`` is given. Cancellation of the
        awaiting task closes the underlying stream at once. Raises :class:`~codeconductor.ensemble.errors.ProviderError`."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release resources the provider owns (not the shared HTTP client)."""


@dataclass(frozen=True)
class ProviderContext:
    """What a provider for one endpoint is made from (discovery has it)."""

    endpoint: str
    client: httpx.AsyncClient  # shared, owned by the caller
    api_key: str | None = None  # from the endpoint's api_key_env
    label: str | None = None  # the endpoint's configured name


@dataclass(frozen=True)
class ApiProbe:
    """How the provider's API is recognised at a server: a GET of ``path`` answering 200 with a JSON object that
    has ``key`` (:meth:`Provider.probe`: a ``value_type`` there). With ``sends_key`` the endpoint's API key goes
    along, and 401/403 means a wrong key."""

    path: str
    key: str
    value_type: type = object
    sends_key: bool = False


@dataclass(frozen=True)
class ProviderSpec:
    """One kind of provider, as the rest of the engine sees it."""

    kind: ProviderKind
    title: str  # the API's name in messages ("does not speak the Ollama API")
    create: Callable[[ProviderContext], Provider]
    # Discovery probes servers for the APIs that have one, in registry order (a server speaking several APIs is
    # taken for the first); None: not found on a server (the in-process runtime).
    probe: ApiProbe | None = None
    # Runs in this process: each model its own queue of one answer at a time, one provider object shared by the
    # whole process, and ``embedded_samples`` answers per model (one model's samples are the ensemble it affords).
    in_process: bool = False
    # The server loads a model into memory on its first call (one load per host at a time, a longer first wait).
    loads_on_first_call: bool = False
    # Which server it always is, for the gateways' load monitor and ``models`` (None: detected per endpoint).
    server: str | None = None
    # The provider's prompt quirk: the chat messages for ``request`` as this provider wants them.
    adjust_messages: Callable[[list[ChatMessage], Request, ModelInfo], list[ChatMessage]] | None = None


@asynccontextmanager
async def translate_transport_errors(endpoint: str, model: str | None = None) -> AsyncIterator[None]:
    """The choke point: every httpx (and stream-decoding) error becomes a :class:`ProviderError`, cause kept."""
    try:
        yield
    except ProviderError:
        raise
    except httpx.TimeoutException as exc:
        raise ProviderTimeout(f"{endpoint}: timed out ({type(exc).__name__})", endpoint=endpoint, model=model) from exc
    except httpx.HTTPStatusError as exc:
        status = exc.response.status_code
        raise ProviderHTTPError(
            f"{endpoint}: HTTP {status}", status_code=status, endpoint=endpoint, model=model
        ) from exc
    except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
        raise ProviderClosed(f"{endpoint}: connection closed mid-answer", endpoint=endpoint, model=model) from exc
    except (httpx.ConnectError, httpx.NetworkError, httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise ProviderUnavailable(f"{endpoint}: cannot connect", endpoint=endpoint, model=model) from exc
    except (httpx.DecodingError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise ProviderProtocolError(
            f"{endpoint}: unexpected response ({type(exc).__name__}: {str(exc)[:200]})", endpoint=endpoint, model=model
        ) from exc
    except httpx.HTTPError as exc:
        raise ProviderError(f"{endpoint}: {type(exc).__name__}", endpoint=endpoint, model=model) from exc
