"""The one settings model, shared by the CLI (``pyproject.toml [tool.codeconductor]`` or ``codeconductor.toml``),
the language server (``initializationOptions`` / ``workspace/configuration``) and the VS Code extension (whose
``contributes.configuration`` is generated from :func:`json_schema`).

Invalid settings raise :class:`~ensemble.errors.SettingsError` naming each bad field; callers keep their previous
(or default) settings.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import SettingsError

__all__ = ["EndpointSettings", "Settings", "is_loopback_url", "json_schema", "load_settings", "parse_settings"]


def is_loopback_url(url: str) -> bool:
    """True when the URL's host is on this machine (127.0.0.0/8, ::1, localhost)."""
    host = (urlsplit(url).hostname or "").lower()
    return host == "localhost" or host.startswith("127.") or host in ("::1", "[::1]")


class EndpointSettings(BaseModel):
    """A model server the user configured explicitly."""

    model_config = ConfigDict(extra="forbid")

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


class Settings(BaseModel):
    """Every setting of CodeConductor. Field descriptions double as documentation and VS Code setting text."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

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
    store_code: bool = Field(default=False, description="Store code and answers in the history database.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(default="info", description="Log level.")
    apply: Literal["preview", "auto", "never"] = Field(
        default="preview",
        description=(
            "What happens to a suggested edit: 'preview' shows the diff first (accept or reject it), 'auto' applies "
            "it at once when the confidence reaches autoApplyConfidence (else previews it), 'never' only offers it "
            "as a code action."
        ),
    )
    auto_apply_confidence: float = Field(
        default=0.8, ge=0, le=1, description="With apply 'auto': the lowest confidence that applies an edit unseen."
    )

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

    Keys may be camelCase (editors) or snake_case (TOML); ``None`` means defaults.
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


def load_settings(start: Path | None = None) -> Settings:
    """Settings for the CLI: ``codeconductor.toml`` or ``pyproject.toml [tool.codeconductor]`` in ``start`` or
    the nearest parent; defaults when neither exists."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        own = folder / "codeconductor.toml"
        if own.is_file():
            return parse_settings(_read_toml(own), source=str(own))
        project = folder / "pyproject.toml"
        if project.is_file():
            table = _read_toml(project).get("tool", {}).get("codeconductor")
            if table is not None:
                return parse_settings(table, source=f"{project} [tool.codeconductor]")
    return Settings()


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read: {exc}", [("<file>", str(exc))]) from exc


def json_schema() -> dict[str, Any]:
    """The JSON schema of :class:`Settings` (source of the VS Code extension's settings)."""
    return Settings.model_json_schema()
