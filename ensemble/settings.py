"""The one settings model, shared by the CLI (``pyproject.toml [tool.codeconductor]`` or ``codeconductor.toml``),
the language server (``initializationOptions`` / ``workspace/configuration``) and the VS Code extension (whose
``contributes.configuration`` is generated from :func:`json_schema`).

Invalid settings raise :class:`~codeconductor.ensemble.errors.SettingsError` naming each bad field; callers keep their previous
(or default) settings.

Workspace trust: a repository's own settings file must not be able to send the user's code or a secret anywhere.
Keys that decide where code and keys go (:data:`USER_ONLY_KEYS`, and endpoints that are not loopback) apply only
from user-level settings: the user's config file (:func:`user_config_path`), the editor's user settings, or a
workspace the user trusted (``trusted_workspaces`` in the user's config file, or ``--trust-workspace``). A
project file that sets them gets a warning naming the key and the file, and the rest of its settings apply.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from .errors import SettingsError

__all__ = [
    "USER_ONLY_KEYS",
    "EndpointSettings",
    "Settings",
    "host_is_loopback",
    "is_loopback_url",
    "json_schema",
    "load_settings",
    "parse_settings",
    "restrict_workspace_settings",
    "user_config_path",
]

logger = logging.getLogger(__name__)

# Keys a project's own settings file may not set (unless the user trusted the workspace): each decides where code,
# a secret or the history may go. ``endpoints`` is checked per entry (loopback ones without a key are fine).
USER_ONLY_KEYS: tuple[str, ...] = ("allow_remote", "history_path", "history_url", "trusted_workspaces")
_RESOLVE_TIMEOUT_S = 2.0


def _resolve(host: str) -> list[str]:
    """Every address ``host`` resolves to (the system resolver: /etc/hosts, DNS)."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)]


def _ip_is_loopback(text: str) -> bool:
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 zone ("%eth0") is not part of the address
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def host_is_loopback(host: str) -> bool:
    """True when ``host`` (an IP address or a name) is this machine: an address in 127.0.0.0/8 or ::1, or a name
    whose every resolved address is. Decided on addresses, never on how the name is spelled
    (``127.attacker.example`` is whatever it resolves to); a name that does not resolve within 2 s is not loopback."""
    host = host.strip().strip("[]").rstrip(".")
    if not host:
        return False
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    else:
        return _ip_is_loopback(host)
    addresses = _resolve_within(host, _RESOLVE_TIMEOUT_S)
    return bool(addresses) and all(_ip_is_loopback(address) for address in addresses)


def _resolve_within(host: str, timeout: float) -> list[str]:
    """:func:`_resolve`, or [] when it fails or takes longer than ``timeout`` (a daemon thread: a resolver that
    hangs must not hold up the caller, nor the interpreter's exit)."""
    found: list[list[str]] = []

    def work() -> None:
        try:
            found.append(_resolve(host))
        except (OSError, UnicodeError):
            found.append([])

    thread = threading.Thread(target=work, name="codeconductor-resolve", daemon=True)
    thread.start()
    thread.join(timeout)
    return found[0] if found else []


def is_loopback_url(url: str) -> bool:
    """True when the URL's host is on this machine (see :func:`host_is_loopback`)."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    return host is not None and host_is_loopback(host)


class _SettingsModel(BaseModel):
    """What every level of the settings shares: camelCase keys (editors) or snake_case ones (TOML) for each field,
    unknown keys refused, and errors that name the field by its Python (snake_case) name."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, loc_by_alias=False)


class EndpointSettings(_SettingsModel):
    """A model server the user configured explicitly."""

    url: str = Field(description="Base URL, e.g. http://127.0.0.1:11434 or https://llm.example.com")
    kind: Literal["auto", "ollama", "openai"] = Field(
        default="auto", description="Which API it speaks; 'auto' detects it."
    )
    api_key_env: str | None = Field(
        default=None, description="Name of an environment variable holding a bearer key (never the key itself)."
    )
    name: str | None = Field(default=None, description="A label shown in model lists.")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL with a host")
        return value.rstrip("/")


class Settings(_SettingsModel):
    """Every setting of CodeConductor. Field descriptions double as documentation and VS Code setting text."""

    model_config = ConfigDict(validate_assignment=True)

    endpoints: list[EndpointSettings] = Field(
        default_factory=list, description="Model servers to use besides the local ones found automatically."
    )
    probe_local: bool = Field(
        default=True, description="Probe the usual local ports (Ollama, LM Studio, llama.cpp, vLLM, Jan, LocalAI)."
    )
    allow_remote: bool = Field(
        default=False,
        description="Allow code to be sent to configured endpoints that are not on this machine.",
    )
    include_models: list[str] = Field(
        default_factory=list, description="Glob patterns of model names to use (empty: all)."
    )
    exclude_models: list[str] = Field(
        default_factory=list,
        description="Glob patterns of model names never to use (embedding models are skipped anyway).",
    )
    max_models: int = Field(default=8, ge=1, le=64, description="At most this many models per run.")
    embedded: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="In-process default models (SmolLM2, Gemma 3 270M): 'auto' uses them when no server is up.",
    )
    timeout_s: float = Field(default=30.0, gt=0, le=3600, description="Per-model timeout in seconds.")
    deadline_s: float = Field(default=90.0, gt=0, le=7200, description="Overall deadline for one run in seconds.")
    connect_timeout_s: float = Field(default=0.25, gt=0, le=30, description="Connect timeout when probing.")
    per_endpoint_concurrency: int = Field(
        default=1, ge=1, le=64, description="Requests in flight at once per model server."
    )
    quorum: int | None = Field(
        default=None, ge=1, description="Stop waiting once this many answers agree (None: wait for all)."
    )
    samples_per_model: int = Field(default=1, ge=1, le=20, description="Samples asked of each model.")
    embedded_samples: int = Field(
        default=4,
        ge=1,
        le=20,
        description="Answers asked of each in-process model (an ensemble on a machine without a model server): "
        "the first at the run's temperature, the others sampled; as many as sample_budget_s allows.",
    )
    sample_budget_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="A model's extra samples start only while the run's time so far plus one more sample "
        "stays within this many seconds.",
    )
    temperature: float = Field(default=0.2, ge=0, le=2, description="Sampling temperature.")
    max_tokens: int = Field(default=512, ge=1, le=32768, description="Maximum tokens per answer.")
    keep_alive: str = Field(default="10m", description="Ollama keep_alive for models used by a run.")
    discovery_ttl_s: float = Field(default=30.0, ge=0, description="How long the model list is cached.")
    verify: bool = Field(
        default=True,
        description="Run candidate code in the sandbox on the docstring's examples to choose among candidates.",
    )
    model_weights: dict[str, float] = Field(
        default_factory=dict, description="Prior reliability per model name glob, in (0, 1]."
    )
    history: bool = Field(default=True, description="Record runs in the local history database.")
    history_path: str | None = Field(default=None, description="History database path (default: user data dir).")
    history_url: str | None = Field(
        default=None,
        description="A PostgreSQL history shared by a team, e.g. postgresql://codeconductor@db.example.com/history "
        "(instead of history_path; a server on another machine only with allow_remote). Keep the password in "
        "PGPASSWORD or ~/.pgpass, not here.",
    )
    store_code: bool = Field(default=False, description="Store code and answers in the history database.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(default="info", description="Log level.")
    apply: Literal["preview", "auto", "never"] = Field(
        default="preview",
        description=(
            "What happens to a suggested edit: 'preview' shows the diff first (accept or reject it), 'auto' applies "
            "it at once when it was checked against your code and the confidence reaches autoApplyConfidence (else "
            "previews it), 'never' only offers it as a code action."
        ),
    )
    auto_apply_confidence: float = Field(
        default=0.8,
        ge=0,
        le=1,
        description="With apply 'auto': the lowest confidence that applies an edit unseen. An edit that was not "
        "checked against your code is always previewed.",
    )
    project_python: str | None = Field(
        default=None,
        description=(
            "The Python interpreter of your project, which runs your code and its tests in the sandbox when "
            "answers are checked (a path, or a virtual environment's folder; relative to the project). Empty: the "
            "interpreter the editor selected for the workspace folder, else .venv or venv in the project, else "
            "$VIRTUAL_ENV, else the server's own."
        ),
    )

    @field_validator("history_url")
    @classmethod
    def _check_history_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("postgresql", "postgres"):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("model_weights")
    @classmethod
    def _check_weights(cls, value: dict[str, float]) -> dict[str, float]:
        for key, weight in value.items():
            if not 0 < weight <= 1:
                raise ValueError(f"weight of {key!r} must be in (0, 1], got {weight}")
        return value


def _format_errors(exc: ValidationError) -> list[tuple[str, str]]:
    return [(".".join(str(p) for p in err["loc"]) or "<root>", err["msg"]) for err in exc.errors()]


def parse_settings(data: Any, *, source: str = "settings") -> Settings:
    """Validate a mapping into :class:`Settings`; raise :class:`SettingsError` naming each bad field.

    Keys may be camelCase (editors) or snake_case (TOML) at every level; ``None`` means defaults. The top level's
    keys are turned to snake_case first, so an unknown key is named as the TOML files would spell it.
    """
    if data is None:
        return Settings()
    if not isinstance(data, dict):
        raise SettingsError(f"{source}: expected an object, got {type(data).__name__}", [("<root>", "not an object")])
    try:
        return Settings.model_validate({_snake(k): v for k, v in data.items()})
    except ValidationError as exc:
        errors = _format_errors(exc)
        detail = "; ".join(f"{field}: {msg}" for field, msg in errors)
        raise SettingsError(f"{source}: invalid settings: {detail}", errors) from exc


def _snake(key: str) -> str:
    out = []
    for ch in str(key):
        if ch.isupper():
            out.append("_")
            out.append(ch.lower())
        else:
            out.append(ch)
    return "".join(out)


def user_config_path() -> Path:
    """The user's own settings file: ``<user config dir>/codeconductor/codeconductor.toml`` (platformdirs; on Linux
    ``$XDG_CONFIG_HOME/codeconductor/codeconductor.toml``). Only this file and the editor's user settings may set
    :data:`USER_ONLY_KEYS` and remote endpoints."""
    return Path(platformdirs.user_config_dir("codeconductor", appauthor=False)) / "codeconductor.toml"


def _project_file(here: Path) -> tuple[Path, dict[str, Any], str] | None:
    """The nearest ``codeconductor.toml`` or ``pyproject.toml`` with ``[tool.codeconductor]``: its folder, table
    and a label for messages."""
    for folder in (here, *here.parents):
        own = folder / "codeconductor.toml"
        if own.is_file():
            return folder, _read_toml(own), str(own)
        project = folder / "pyproject.toml"
        if project.is_file():
            table = _read_toml(project).get("tool", {}).get("codeconductor")
            if table is not None:
                if not isinstance(table, dict):
                    raise SettingsError(f"{project}: [tool.codeconductor] is not a table", [("<root>", "not a table")])
                return folder, table, f"{project} [tool.codeconductor]"
    return None


def _pinned_loopback(url: Any) -> bool:
    """A loopback URL whose host cannot be re-pointed later: a loopback IP address, or ``localhost``."""
    if not isinstance(url, str):
        return False
    try:
        host = (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:
        return False
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        # Any other name could resolve to 127.0.0.1 now and elsewhere at the next request (DNS rebinding).
        return host.lower() == "localhost" and host_is_loopback(host)
    return host_is_loopback(host)


def restrict_workspace_settings(data: dict[str, Any], source: str) -> tuple[dict[str, Any], list[str]]:
    """Project-local settings without what only the user may set: :data:`USER_ONLY_KEYS`, endpoints that are not
    pinned to loopback, and ``api_key_env``. Returns the settings that may apply and one warning per refusal,
    naming the key and ``source``. Entries too malformed to judge are kept, so validation names them."""
    allowed: dict[str, Any] = {}
    refused: list[str] = []
    why = "only your user settings can set it (or trust this workspace)"
    for key, value in data.items():
        name = _snake(key)
        if name in USER_ONLY_KEYS:
            refused.append(f"{source}: ignored `{name}`: {why}")
            continue
        if name != "endpoints" or not isinstance(value, list):
            allowed[key] = value
            continue
        endpoints: list[Any] = []
        for index, entry in enumerate(value):
            if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
                endpoints.append(entry)
                continue
            if not _pinned_loopback(entry["url"]):
                refused.append(f"{source}: ignored endpoints[{index}] {entry['url']}: not on this machine; {why}")
                continue
            kept = {k: v for k, v in entry.items() if _snake(k) != "api_key_env"}
            if len(kept) != len(entry):
                refused.append(f"{source}: ignored `api_key_env` of endpoints[{index}]: {why}")
            endpoints.append(kept)
        allowed[key] = endpoints
    return allowed, refused


def _is_trusted(folder: Path, trusted: Any, source: str) -> bool:
    if trusted is None:
        return False
    if not isinstance(trusted, list) or not all(isinstance(p, str) for p in trusted):
        raise SettingsError(f"{source}: trusted_workspaces must be a list of paths", [("trusted_workspaces", "")])
    for entry in trusted:
        root = Path(entry).expanduser().resolve()
        if folder == root or root in folder.parents:
            return True
    return False


def load_settings(start: Path | None = None, *, trust_workspace: bool = False) -> Settings:
    """Settings for the CLI: the user's config file (:func:`user_config_path`), then ``codeconductor.toml`` or
    ``pyproject.toml [tool.codeconductor]`` in ``start`` or the nearest parent on top; defaults when neither
    exists. The project file may not set what :func:`restrict_workspace_settings` refuses (each refusal is logged
    as a warning) unless ``trust_workspace`` or the user's ``trusted_workspaces`` lists its folder. Endpoints of
    both files are used."""
    user_path = user_config_path()
    user: dict[str, Any] = {}
    trusted: Any = None
    if user_path.is_file():
        user = {_snake(k): v for k, v in _read_toml(user_path).items()}
        trusted = user.pop("trusted_workspaces", None)
        parse_settings(user, source=str(user_path))  # name the user file's own mistakes
    found = _project_file((start or Path.cwd()).resolve())
    if found is None:
        return parse_settings(user, source=str(user_path))
    folder, table, source = found
    project = {_snake(k): v for k, v in table.items()}
    if project.pop("trusted_workspaces", None) is not None:
        logger.warning("%s: ignored `trusted_workspaces`: a workspace cannot trust itself", source)
    if not (trust_workspace or _is_trusted(folder, trusted, str(user_path))):
        project, refused = restrict_workspace_settings(project, source)
        for message in refused:
            logger.warning("%s", message)
    merged = {**user, **project}
    if isinstance(user.get("endpoints"), list) and isinstance(project.get("endpoints"), list):
        merged["endpoints"] = [*user["endpoints"], *project["endpoints"]]
    return parse_settings(merged, source=source if not user else f"{user_path} + {source}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read: {exc}", [("<file>", str(exc))]) from exc


def json_schema() -> dict[str, Any]:
    """The JSON schema of :class:`Settings` (source of the VS Code extension's settings), by field name: the
    extension adds its own camelCase keys, and an endpoint's keys are shown as the TOML files spell them."""
    return Settings.model_json_schema(by_alias=False)
