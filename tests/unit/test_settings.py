"""Settings keys are camelCase (editors) or snake_case (TOML) at every level of the model, top-level fields and an
endpoint's alike; a bad value is named by its snake_case field, whichever spelling carried it, and nothing of
the bad settings applies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic.alias_generators import to_camel

from codeconductor.ensemble.errors import SettingsError
from codeconductor.ensemble.settings import (
    EndpointSettings,
    Settings,
    load_settings,
    parse_settings,
    restrict_workspace_settings,
)

# Not the defaults, so that a key that was not understood cannot pass unnoticed; the model_weights key has an
# underscore, and stays as it is: it is a model-name glob, not a field.
CHOSEN = Settings(
    endpoints=[
        EndpointSettings(url="http://127.0.0.1:8080", kind="openai", api_key_env="LOCAL_KEY", name="box"),
        EndpointSettings(url="http://127.0.0.1:11434", kind="ollama"),
    ],
    probe_local=False,
    include_models=["qwen*"],
    max_models=3,
    timeout_s=12.5,
    per_endpoint_concurrency=2,
    quorum=2,
    model_weights={"qwen_coder*": 0.5},
    history_url="postgresql://team@127.0.0.1/history",
    auto_apply_confidence=0.9,
)


def _camel(data: dict[str, Any]) -> dict[str, Any]:
    return {to_camel(key): value for key, value in data.items()}


def _spelled(top: str, endpoint: str) -> dict[str, Any]:
    """CHOSEN as a settings mapping, its top-level keys and each endpoint's keys spelled as asked."""
    data = CHOSEN.model_dump()
    data["endpoints"] = [_camel(e) if endpoint == "camel" else e for e in data["endpoints"]]
    return _camel(data) if top == "camel" else data


SPELLINGS = [("snake", "snake"), ("camel", "camel"), ("camel", "snake"), ("snake", "camel")]


@pytest.mark.parametrize(("top", "endpoint"), SPELLINGS, ids=[f"top-{t}-endpoint-{e}" for t, e in SPELLINGS])
def test_both_spellings_at_every_level(top: str, endpoint: str) -> None:
    data = _spelled(top, endpoint)
    assert ("maxModels" if top == "camel" else "max_models") in data
    assert ("apiKeyEnv" if endpoint == "camel" else "api_key_env") in data["endpoints"][0]  # one word either way
    settings = parse_settings(data)
    assert settings == CHOSEN
    assert settings.model_weights == {"qwen_coder*": 0.5}


def test_the_dump_is_by_field_name_and_parses_back() -> None:
    # The CLI re-validates a dump with its overrides on top (cli/_common.py): names, not aliases.
    dump = CHOSEN.model_dump()
    assert "max_models" in dump
    assert "api_key_env" in dump["endpoints"][0]
    assert parse_settings(dump) == CHOSEN


BAD = [
    # settings, the field named, pydantic's message
    pytest.param(
        {"endpoints": [{"url": "http://127.0.0.1:1", "apiKeyEnv": 5}]},
        "endpoints.0.api_key_env",
        "valid string",
        id="endpoint-apiKeyEnv",
    ),
    pytest.param(
        {"endpoints": [{"url": "http://127.0.0.1:1", "api_key_env": 5}]},
        "endpoints.0.api_key_env",
        "valid string",
        id="endpoint-api_key_env",
    ),
    pytest.param(
        {"endpoints": [{"url": "http://127.0.0.1:1", "kind": "grpc"}]},
        "endpoints.0.kind",
        "'openai'",
        id="endpoint-kind",
    ),
    pytest.param(
        {"endpoints": [{"url": "http://127.0.0.1:1", "apiKey": "x"}]},
        "endpoints.0.apiKey",  # an unknown key is named as it was given
        "Extra inputs",
        id="endpoint-unknown-key",
    ),
    pytest.param({"maxModels": 0}, "max_models", "greater than or equal to 1", id="maxModels"),
    pytest.param({"max_models": 0}, "max_models", "greater than or equal to 1", id="max_models"),
    # Unknown top-level keys are named in snake_case, as before.
    pytest.param({"timeOut": 5}, "time_out", "Extra inputs", id="top-unknown-key"),
]


@pytest.mark.parametrize(("data", "field", "message"), BAD)
def test_a_bad_value_is_named_by_its_field(data: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings(data, source="editor")
    assert [name for name, _ in caught.value.errors] == [field]
    assert message in caught.value.errors[0][1]
    assert str(caught.value).startswith(f"editor: invalid settings: {field}: ")


def test_nested_camel_case_from_the_config_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's files: the user's own may set an endpoint's key variable in either spelling; a project's may set
    neither (workspace trust), and its other nested keys still apply."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    user = tmp_path / "config" / "codeconductor" / "codeconductor.toml"
    user.parent.mkdir(parents=True)
    user.write_text('[[endpoints]]\nurl = "http://127.0.0.1:8080"\napiKeyEnv = "LOCAL_KEY"\n', encoding="utf-8")
    project = tmp_path / "project"
    project.mkdir()
    project.joinpath("codeconductor.toml").write_text(
        'maxModels = 3\n[[endpoints]]\nurl = "http://127.0.0.1:11434"\nkind = "ollama"\napiKeyEnv = "STOLEN"\n',
        encoding="utf-8",
    )
    settings = load_settings(project)
    assert settings.max_models == 3
    assert [(e.url, e.kind, e.api_key_env) for e in settings.endpoints] == [
        ("http://127.0.0.1:8080", "auto", "LOCAL_KEY"),
        ("http://127.0.0.1:11434", "ollama", None),
    ]


@pytest.mark.parametrize("key", ["api_key_env", "apiKeyEnv"])
def test_a_workspace_cannot_name_a_key_variable_in_either_spelling(key: str) -> None:
    kept, refused = restrict_workspace_settings({"endpoints": [{"url": "http://127.0.0.1:1", key: "K"}]}, "repo")
    assert kept == {"endpoints": [{"url": "http://127.0.0.1:1"}]}
    assert refused == [
        "repo: ignored `api_key_env` of endpoints[0]: only your user settings can set it (or trust this workspace)"
    ]


def test_an_invalid_file_names_the_field_and_nothing_of_it_applies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    tmp_path.joinpath("codeconductor.toml").write_text(
        'maxModels = 3\n[[endpoints]]\nurl = "http://127.0.0.1:1"\nkind = "grpc"\n', encoding="utf-8"
    )
    with pytest.raises(SettingsError) as caught:
        load_settings(tmp_path)
    assert [name for name, _ in caught.value.errors] == ["endpoints.0.kind"]
    assert str(tmp_path / "codeconductor.toml") in str(caught.value)
