"""Team-scale fixtures: a throw-away PostgreSQL server, LiteLLM proxies in front of llama.cpp replicas.

* ``postgres_server``  session: :class:`tests.support.postgres.PostgresServer` on a socket in a temporary folder
* ``pg_url``           function: a fresh, empty database on it (its URL)
* ``tiny_replicas``    session: llama.cpp servers on the same tiny GGUF file: two serve ``"tiny"``, two ``"tiny-k"``
                       (the kill test's, since it kills one of them)
* ``litellm_proxy``    session: a LiteLLM proxy (simple-shuffle, no retries of its own) with model groups ``"tiny"``
                       and ``"tiny-k"`` over those replicas; its master key is in ``$CC_TEST_LITELLM_KEY``

In CI (``CI`` set) a missing PostgreSQL or LiteLLM install is an error, not a skip: ``scripts/setup.sh --dev``
installs both.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.litellm_proxy import LiteLLMProxy, LiteLLMUnavailable, find_litellm
from tests.support.llama_server import LlamaServer, llama_servers
from tests.support.postgres import PostgresServer, PostgresUnavailable

KEY_ENV = "CC_TEST_LITELLM_KEY"


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
def tiny_replicas(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, list[LlamaServer]]]:
    aliases = ("tiny", "tiny", "tiny-k", "tiny-k")
    with llama_servers(tiny_gguf, aliases, n_ctx=2048, log_dir=tmp_path_factory.mktemp("replica-logs")) as servers:
        yield {"tiny": servers[:2], "tiny-k": servers[2:]}


@pytest.fixture(scope="session")
def litellm_proxy(
    tiny_replicas: dict[str, list[LlamaServer]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiteLLMProxy]:
    try:
        find_litellm()
    except LiteLLMUnavailable as exc:
        _missing("the LiteLLM proxy", exc)
    groups = {name: [s.url for s in servers] for name, servers in tiny_replicas.items()}
    with LiteLLMProxy(groups, routing="simple-shuffle", folder=tmp_path_factory.mktemp("litellm")) as proxy:
        os.environ[KEY_ENV] = proxy.master_key
        try:
            yield proxy
        finally:
            os.environ.pop(KEY_ENV, None)
