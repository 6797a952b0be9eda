"""Start and stop a real LiteLLM proxy (the team gateway) on a loopback port for tests and benchmarks.

The proxy runs from its own virtual environment (``.venv-litellm``, installed by ``scripts/setup.sh --dev`` from
``requirements/litellm-proxy.txt`` with hashes), or from ``$CODECONDUCTOR_LITELLM``. Each model group lists
OpenAI-compatible replicas (llama.cpp servers); the config sets a strong random ``master_key`` (the proxy refuses
to start without one) and the process gets ``LITELLM_LOCAL_MODEL_COST_MAP=True`` (otherwise it downloads a cost map
from the internet at start). It listens on 127.0.0.1 only, at a port chosen at run time.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import httpx

from .llama_server import free_port

__all__ = ["LiteLLMProxy", "LiteLLMUnavailable", "find_litellm", "proxy_env"]

ROOT = Path(__file__).resolve().parents[2]
_STARTUP_TIMEOUT_S = 90.0


class LiteLLMUnavailable(RuntimeError):
    """The LiteLLM proxy is not installed (run scripts/setup.sh --dev)."""


def find_litellm() -> Path:
    """The ``litellm`` executable: ``$CODECONDUCTOR_LITELLM``, the repository's ``.venv-litellm``, or on PATH."""
    candidates = [os.environ.get("CODECONDUCTOR_LITELLM"), str(ROOT / ".venv-litellm" / "bin" / "litellm")]
    candidates.append(shutil.which("litellm"))
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise LiteLLMUnavailable("litellm not found: run scripts/setup.sh --dev (it creates .venv-litellm)")


def proxy_env() -> dict[str, str]:
    """The environment for the proxy: the local cost map, no telemetry, quiet logs, no inherited proxies."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and k != "PYTHONPATH"}
    env |= {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
        "NO_PROXY": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
    }
    return env


def _config(
    groups: Mapping[str, Sequence[str]], routing: str, master_key: str, served_as: str | None
) -> dict[str, object]:
    model_list = [
        {
            "model_name": group,
            "litellm_params": {
                "model": f"openai/{served_as or group}",
                "api_base": f"{url.rstrip('/')}/v1",
                "api_key": "none",
            },
        }
        for group, urls in groups.items()
        for url in urls
    ]
    return {
        "model_list": model_list,
        # No retries inside the proxy: CodeConductor fails over itself, and a test must see what a replica did.
        "router_settings": {"routing_strategy": routing, "num_retries": 0},
        "litellm_settings": {"drop_params": True, "telemetry": False, "request_timeout": 120},
        "general_settings": {"master_key": master_key},
    }


class LiteLLMProxy:
    """A running proxy. ``url`` is its base URL (without ``/v1``); ``master_key`` its key."""

    def __init__(
        self,
        groups: Mapping[str, Sequence[str]],
        *,
        routing: str = "simple-shuffle",
        folder: Path,
        startup_timeout: float = _STARTUP_TIMEOUT_S,
        served_as: str | None = None,
    ) -> None:
        """``served_as``: the model name the replicas serve, when it is not the group's name."""
        self.served_as = served_as
        self.groups = {k: list(v) for k, v in groups.items()}
        self.routing = routing
        self.folder = Path(folder)
        self.startup_timeout = startup_timeout
        self.master_key = "sk-" + secrets.token_urlsafe(32)
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.folder / "litellm.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.master_key}"}

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "<no log>"

    def start(self) -> LiteLLMProxy:
        executable = find_litellm()
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "config.yaml"
        # JSON is YAML: no YAML writer needed here.
        config.write_text(json.dumps(_config(self.groups, self.routing, self.master_key, self.served_as), indent=1))
        config.chmod(0o600)  # it holds the master key
        self.port = free_port()
        cmd = [str(executable), "--config", str(config), "--host", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--num_workers", "1"]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=proxy_env(),
                cwd=self.folder,
                start_new_session=True,  # its workers go with it when stopped
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        assert self.process is not None
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"litellm exited with {self.process.returncode}:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.url}/health/liveliness").status_code == 200:
                        return
                time.sleep(0.25)
        raise RuntimeError(f"litellm not ready after {self.startup_timeout:.0f}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the proxy and its worker processes. Safe to call twice."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout)

    def __enter__(self) -> LiteLLMProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
