"""Invalid settings of every kind: each field of :class:`codeconductor.ensemble.settings.Settings` (and of an endpoint) given a
value of the wrong type, plus out-of-range values, unknown keys and a settings value that is not an object. Each
one is named in a ``window/showMessage`` error and the previous valid settings stay in force."""

from __future__ import annotations

from typing import Any

import pytest
from lsprotocol import types as lsp
from pydantic.alias_generators import to_camel
from pytest_lsp import LanguageClient

from codeconductor.ensemble.settings import Settings
from tests.support.fault_server import FaultServer
from tests.support.faulty_ensemble import GOOD, ensemble_settings
from tests.support.lsp_client import command, editor_of


def _wrong_type(field: str) -> Any:
    # An object is the wrong type for every field but the one that is a mapping.
    return "heavy" if field == "model_weights" else {"wrong": "type"}


WRONG_TYPES = [(name, _wrong_type(name)) for name in Settings.model_fields]
MORE: list[tuple[str, str, Any]] = [
    # (field named in the message, camelCase key, value)
    ("timeout_s", "timeoutS", "soon"),
    ("timeout_s", "timeoutS", -1),
    ("max_models", "maxModels", "many"),
    ("max_models", "maxModels", 0),
    ("probe_local", "probeLocal", "maybe"),
    ("embedded", "embedded", "sometimes"),
    ("log_level", "logLevel", "loud"),
    ("include_models", "includeModels", "*"),
    ("quorum", "quorum", 0),
    ("model_weights", "modelWeights", {"llama*": 3.0}),
    ("temperature", "temperature", float("inf")),
    ("endpoints.0.url", "endpoints", [{"url": "ftp://127.0.0.1:1"}]),
    ("endpoints.0.url", "endpoints", [{"url": 12}]),
    ("endpoints.0.kind", "endpoints", [{"url": "http://127.0.0.1:1", "kind": "grpc"}]),
    ("endpoints.0.api_key_env", "endpoints", [{"url": "http://127.0.0.1:1", "api_key_env": 5}]),
    ("endpoints.0.api_key_env", "endpoints", [{"url": "http://127.0.0.1:1", "apiKeyEnv": 5}]),  # either spelling
    ("endpoints.0.surprise", "endpoints", [{"url": "http://127.0.0.1:1", "surprise": True}]),
    ("time_out", "timeOut", 5),  # unknown key (a typo): named, not silently ignored
]


async def _names(client: LanguageClient) -> list[str]:
    listed = await command(client, "codeconductor.listModels")
    return sorted(m["name"] for m in listed["models"])


async def _send_and_expect_error(client: LanguageClient, settings: Any, field: str) -> str:
    errors_before = [m for m in client.messages if m.type == lsp.MessageType.Error]
    client.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(settings={"codeconductor": settings}))
    await editor_of(client).wait_for(
        lambda: len([m for m in client.messages if m.type == lsp.MessageType.Error]) > len(errors_before)
    )
    message = [m for m in client.messages if m.type == lsp.MessageType.Error][-1].message
    assert field in message, (field, message)
    assert "Keeping the previous settings" in message
    return message


async def test_every_field_with_a_wrong_type_is_named(client: LanguageClient, hard_models: FaultServer) -> None:
    assert await _names(client) == sorted(GOOD)
    for field, value in WRONG_TYPES:
        valid = ensemble_settings(hard_models.url, ["ok-hard-a"])
        await _send_and_expect_error(client, valid | {to_camel(field): value}, field)
        # Nothing of the rejected settings leaked in: the model list is the original one.
        assert await _names(client) == sorted(GOOD), field
    assert await command(client, "codeconductor.status")


@pytest.mark.parametrize(("field", "key", "value"), MORE, ids=[f"{m[1]}={m[2]!r}"[:40] for m in MORE])
async def test_invalid_values_are_named(
    client: LanguageClient, hard_models: FaultServer, field: str, key: str, value: Any
) -> None:
    valid = ensemble_settings(hard_models.url, ["ok-hard-a"])
    await _send_and_expect_error(client, valid | {key: value}, field)
    assert await _names(client) == sorted(GOOD)


async def test_settings_that_are_not_an_object(client: LanguageClient) -> None:
    client.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(settings={"codeconductor": ["a"]}))
    # Not an object under the section: the server asks the client instead (workspace/configuration) and keeps
    # its settings when the client has none to give.
    assert await _names(client) == sorted(GOOD)
    assert await command(client, "codeconductor.status")
