"""Team-scale fixtures: a throw-away PostgreSQL server, LiteLLM proxies in front of llama.cpp replicas.

* ``postgres_server``  session: :class:`tests.support.postgres.PostgresServer` on a socket in a temporary folder
* ``pg_url``           function: a fresh, empty database on it (its URL)
* ``tiny_replicas``    session: two llama.cpp servers on the same tiny GGUF file (model name ``"tiny"``)
* ``litellm_proxy``    session: a LiteLLM proxy with model group ``"tiny"`` over ``tiny_replicas`` (simple-shuffle)

In CI (``CI`` set) a missing PostgreSQL or LiteLLM install is an error, not a skip: ``scripts/setup.sh --dev``
installs both.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.litellm_proxy import LiteLLMProxy, LiteLLMUnavailable, find_litellm
from tests.support.llama_server import LlamaServer, start_llama_server
from tests.support.postgres import PostgresServer, PostgresUnavailable


def _missing(what: str, exc: Exception) -> None:
    if os.environ.get("CI"):
        raise exc
    pytest.skip(f"{what} not installed here: {exc}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer()
    except PostgresUnavailable as exc:
        _missing("PostgreSQL", exc)
    with server:
        yield server


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database()


@pytest.fixture(scope="session")
def tiny_replicas(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[LlamaServer]]:
    logs = tmp_path_factory.mktemp("replica-logs")
    servers: list[LlamaServer] = []
    try:
        for _ in range(2):
            servers.append(start_llama_server(tiny_gguf, alias="tiny", n_ctx=2048, log_dir=logs))
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="session")
def litellm_proxy(tiny_replicas: list[LlamaServer], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiteLLMProxy]:
    try:
        find_litellm()
    except LiteLLMUnavailable as exc:
        _missing("the LiteLLM proxy", exc)
    groups = {"tiny": [s.url for s in tiny_replicas]}
    with LiteLLMProxy(groups, routing="simple-shuffle", folder=tmp_path_factory.mktemp("litellm")) as proxy:
        yield proxy
