"""The one exception tree of CodeConductor.

Everything the ``ensemble`` package raises on purpose derives from :class:`CodeConductorError`::

    CodeConductorError
    ├── SettingsError               invalid settings; ``.errors`` names each bad field
    ├── ProviderError               anything that went wrong talking to one model server
    │   ├── ProviderUnavailable     cannot connect (refused, DNS, reset before a response)
    │   ├── ProviderTimeout         connect/read/pool timeout or the per-model deadline
    │   ├── ProviderHTTPError       the server answered with an HTTP error status (``.status_code``)
    │   ├── ProviderProtocolError   the server answered, but not in the wire format expected (garbage)
    │   ├── ModelError              the server reported an in-band error for this model (e.g. Ollama ``error``)
    │   └── ProviderClosed          the stream broke off mid-answer
    ├── SandboxError                the sandbox could not run a candidate at all (not: the candidate failed)
    │   └── SandboxUnavailable      no sandbox can run here, so nothing is executed (the message says why + fix)
    ├── HistoryError                the history database cannot be used (newer schema, unreadable)
    │   ├── HistoryCorruptError     the file is damaged (``.path``; ``codeconductor stats --move-aside``)
    │   └── HistoryDatabaseError    a statement failed (busy past the timeout, disk full, connection lost)
    └── RequestError                a request that cannot be served (no models, bad range, unknown task)

Transport errors are translated into this tree at one choke point,
:func:`codeconductor.ensemble.providers.base.translate_transport_errors`; the original exception is kept as ``__cause__``.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "CodeConductorError",
    "HistoryCorruptError",
    "HistoryDatabaseError",
    "HistoryError",
    "ModelError",
    "ProviderClosed",
    "ProviderError",
    "ProviderHTTPError",
    "ProviderProtocolError",
    "ProviderTimeout",
    "ProviderUnavailable",
    "RequestError",
    "SandboxError",
    "SandboxUnavailable",
    "SettingsError",
]


class CodeConductorError(Exception):
    """Base of every error CodeConductor raises on purpose."""


class SettingsError(CodeConductorError):
    """Settings failed validation. ``errors`` is a list of ``(field path, message)``."""

    def __init__(self, message: str, errors: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.errors: list[tuple[str, str]] = errors or []


class ProviderError(CodeConductorError):
    """A failure talking to one model server. ``endpoint`` is its base URL (never with credentials)."""

    def __init__(self, message: str, *, endpoint: str = "", model: str | None = None) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.model = model

    # A short machine-friendly reason, used in results and history (``timeout``, ``http_500``, ...).
    _reason: ClassVar[str] = "error"

    @property
    def reason(self) -> str:
        return self._reason


class ProviderUnavailable(ProviderError):
    _reason = "unavailable"


class ProviderTimeout(ProviderError):
    _reason = "timeout"


class ProviderHTTPError(ProviderError):
    def __init__(self, message: str, *, status_code: int, endpoint: str = "", model: str | None = None) -> None:
        super().__init__(message, endpoint=endpoint, model=model)
        self.status_code = status_code

    @property
    def reason(self) -> str:
        return f"http_{self.status_code}"


class ProviderProtocolError(ProviderError):
    _reason = "protocol"


class ModelError(ProviderError):
    _reason = "model_error"


class ProviderClosed(ProviderError):
    _reason = "stream_closed"


class SandboxError(CodeConductorError):
    """The sandbox itself failed (could not start a worker), as opposed to a candidate failing inside it."""


class SandboxUnavailable(SandboxError):
    """No sandbox can run here (bubblewrap missing or refused), so no candidate and none of the user's code was
    executed. The message is for the user: what is missing and how to fix it. ``reason`` is the short cause."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class HistoryError(CodeConductorError):
    """The history database cannot be used (newer schema, unreadable file); runs go on without recording."""


class HistoryCorruptError(HistoryError):
    """The history file is damaged (not a database, or pages that do not read back). ``path`` is the file."""

    def __init__(self, path: Any) -> None:
        super().__init__(
            f"the history database {path} is damaged; move it aside with `codeconductor stats --move-aside` "
            "(a new one is started on the next run)"
        )
        self.path = path


class HistoryDatabaseError(HistoryError):
    """A statement of the history's database failed: SQLite's or PostgreSQL's own error, in its first line
    (``__cause__`` is the driver's exception). Every storage backend of the history raises this, so the history
    treats a failing database alike whatever it is."""


class RequestError(CodeConductorError):
    """A request that cannot be served as asked. ``data`` may carry details for LSP error responses."""

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.data = data
