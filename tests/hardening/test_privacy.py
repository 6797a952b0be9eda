"""Privacy and secrets.

* With default settings no request leaves this machine: a configured endpoint on another host
  (``remote.invalid``) is skipped and the result says why. An HTTP transport wrapper records every request the
  engine attempts and refuses (without sending anything) any that is not for loopback; the same wrapper with
  ``allow_remote`` on shows that it does catch such a request.
* An API key (from the environment variable named by ``api_key_env``) is sent to the server that requires it, but
  never appears in logs (the engine's, httpx's, the language server's ``window/logMessage`` and stderr), in
  results, or in the history database's bytes.

The key-checking server is the fault-injection FAKE (``tests.support.fault_server``) with ``api_key`` set.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from codeconductor.ensemble.context import build_context
from codeconductor.ensemble.history import open_history
from codeconductor.ensemble.pipeline import Pipeline
from codeconductor.ensemble.settings import Settings, is_loopback_url, parse_settings
from codeconductor.ensemble.types import AnswerStatus, Request, TaskKind
from tests.support.fault_server import FaultServer
from tests.support.faulty_ensemble import GOOD, GOOD_TEXT
from tests.support.rawlsp import RawServer

REMOTE = "http://remote.invalid:8080"
SECRET = "sk-hardening-7f3c9a1e5b2d4c6e8a0b"
KEY_ENV = "CODECONDUCTOR_HARDENING_KEY"
TEXT = "def add(a, b):\n    return a - b\n"
# The same bug with an example it fails: a fix that makes it pass is checked, so it may be applied unseen.
DOCUMENTED_TEXT = 'def add(a, b):\n    """>>> add(2, 3)\n    5\n    """\n    return a - b\n'


class LoopbackOnly(httpx.AsyncBaseTransport):
    """Wraps the real transport: records every request; sends only those for loopback hosts."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.attempted: list[str] = []
        self.refused: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.attempted.append(url)
        if not is_loopback_url(url):
            self.refused.append(url)
            raise httpx.ConnectError("refused by the test: not loopback", request=request)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _request() -> Request:
    return Request(task=TaskKind.FIX, context=build_context(TEXT, 0, 2))


def _defaults_plus(fault_url: str, **changes: Any) -> Settings:
    """Default settings, plus a remote endpoint and the fake (loopback) one; runs use only the fake's models."""
    return Settings().model_copy(
        update={
            "endpoints": parse_settings(
                {"endpoints": [{"url": REMOTE, "kind": "openai"}, {"url": fault_url, "kind": "openai"}]}
            ).endpoints,
            "include_models": list(GOOD),
            "history": False,
            **changes,
        }
    )


async def test_default_settings_send_nothing_off_loopback(hard_models: FaultServer) -> None:
    transport = LoopbackOnly()
    hosts: list[str] = []

    async def on_request(request: httpx.Request) -> None:
        hosts.append(request.url.host)

    settings = _defaults_plus(hard_models.url)
    assert settings.allow_remote is False
    assert settings.probe_local is True
    async with (
        httpx.AsyncClient(transport=transport, event_hooks={"request": [on_request]}) as client,
        Pipeline(settings, client=client) as pipeline,
    ):
        result = await pipeline.run(_request())
        endpoints = await pipeline.endpoints()
    assert transport.attempted  # local ports were probed and the fake was asked
    assert transport.refused == []
    assert all(is_loopback_url(url) for url in transport.attempted)
    assert set(hosts) <= {"127.0.0.1", "localhost", "::1"}
    remote = next(e for e in endpoints if e.url == REMOTE)
    assert remote.state == "skipped-remote"
    assert "allow_remote" in (remote.detail or "")
    assert any(REMOTE in note and "allow_remote" in note for note in result.notes)
    assert {a.model.name for a in result.answers} == set(GOOD)


async def test_the_guard_does_catch_a_remote_request(hard_models: FaultServer) -> None:
    """Control: with ``allow_remote`` on, the engine does try the remote host, and the wrapper refuses it."""
    transport = LoopbackOnly()
    settings = _defaults_plus(hard_models.url, allow_remote=True, probe_local=False)
    async with httpx.AsyncClient(transport=transport) as client, Pipeline(settings, client=client) as pipeline:
        endpoints = await pipeline.endpoints()
    assert transport.refused
    assert all("remote.invalid" in url for url in transport.refused)
    assert next(e for e in endpoints if e.url == REMOTE).state in ("down", "error")


@pytest.fixture
def keyed_server() -> Iterator[FaultServer]:
    with FaultServer(["ok-key-a", "ok-key-b"], api_key=SECRET) as server:
        for name in ("ok-key-a", "ok-key-b"):
            server.add_model(name, text=GOOD_TEXT)
        yield server


def _keyed_settings(url: str, db: Path) -> dict[str, Any]:
    return {
        "endpoints": [{"url": url, "kind": "openai", "api_key_env": KEY_ENV}],
        "probeLocal": False,
        "embedded": "off",
        "history": True,
        "historyPath": str(db),
        "storeCode": True,
        "logLevel": "debug",
        "verify": False,
        "apply": "auto",  # a bare client (no change annotations) would otherwise get a preview, not the edit
        "autoApplyConfidence": 0.0,
    }


def _db_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


async def test_api_key_is_used_but_never_logged_or_stored(
    keyed_server: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    caplog.set_level(logging.DEBUG)  # everything: ensemble, httpx, httpcore
    db = tmp_path / "history.sqlite3"
    settings = parse_settings(_keyed_settings(keyed_server.url, db))
    history = open_history(settings)
    try:
        async with Pipeline(settings, history=history) as pipeline:
            result = await pipeline.run(_request())
            models = await pipeline.models()
    finally:
        history.close()
    assert [a.status for a in result.answers] == [AnswerStatus.ANSWERED] * 2
    # The key was really sent (the fake refuses requests without it) ...
    assert any(r.headers.get("authorization") == f"Bearer {SECRET}" for r in keyed_server.requests)
    # ... and is nowhere else.
    assert SECRET not in caplog.text
    assert SECRET not in result.model_dump_json()
    assert SECRET not in json.dumps([m.model_dump(mode="json") for m in models])
    assert SECRET.encode() not in _db_bytes(db)
    assert _db_bytes(db)  # the history really was written


async def test_wrong_api_key_is_reported_without_the_key(
    keyed_server: FaultServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    wrong = "sk-wrong-0123456789abcdef"
    monkeypatch.setenv(KEY_ENV, wrong)
    caplog.set_level(logging.DEBUG)
    settings = parse_settings(_keyed_settings(keyed_server.url, tmp_path / "h.sqlite3") | {"history": False})
    async with Pipeline(settings) as pipeline:
        endpoints = await pipeline.endpoints()
    status = next(e for e in endpoints if e.url == keyed_server.url)
    assert status.state == "error"
    assert "api_key_env" in (status.detail or "")
    assert wrong not in caplog.text
    assert wrong not in json.dumps([e.model_dump() for e in endpoints])


def test_api_key_never_reaches_the_editor_or_stderr(keyed_server: FaultServer, tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite3"
    stderr = tmp_path / "stderr.log"
    uri = "file:///tmp/codeconductor-hardening/secret.py"
    with RawServer(env={KEY_ENV: SECRET}, stderr_path=stderr) as server:
        # Verified: only a checked edit is ever applied unseen (``apply: auto``).
        server.initialize(_keyed_settings(keyed_server.url, db) | {"verify": True})
        server.open(uri, DOCUMENTED_TEXT)
        rng = {"start": {"line": 0, "character": 0}, "end": {"line": 5, "character": 0}}
        reply = server.request(
            "workspace/executeCommand",
            {"command": "codeconductor.run", "arguments": [{"uri": uri, "range": rng, "task": "fix"}]},
            timeout=60,
        )
        models = server.request("workspace/executeCommand", {"command": "codeconductor.listModels", "arguments": []})
        assert reply["result"]["status"] == "applied"
        assert any(m["method"] == "window/logMessage" for m in server.messages)
        seen = json.dumps([reply, models, server.messages, server.edits])
    assert any(r.headers.get("authorization") == f"Bearer {SECRET}" for r in keyed_server.requests)
    assert SECRET not in seen
    assert SECRET not in stderr.read_text(errors="replace")
    assert SECRET.encode() not in _db_bytes(db)
