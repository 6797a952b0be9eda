"""The VS Code extension's settings must be exactly those the server's pydantic model accepts: this test fails when
``vscode-extension/package.json`` drifts from :func:`codeconductor.ensemble.settings.json_schema` (fix: run
``python scripts/gen_vscode_settings.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from codeconductor.ensemble.errors import SettingsError
from codeconductor.ensemble.settings import USER_ONLY_KEYS, Settings, parse_settings
from tests.support.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]


gen = load_script("gen_vscode_settings")


def _package() -> dict[str, Any]:
    package: dict[str, Any] = json.loads((ROOT / "vscode-extension" / "package.json").read_text(encoding="utf-8"))
    return package


def _server_section(package: dict[str, Any]) -> dict[str, Any]:
    sections = package["contributes"]["configuration"]
    properties: dict[str, Any] = next(s for s in sections if s["id"] == "codeconductor")["properties"]
    return properties


def test_package_json_configuration_matches_the_schema() -> None:
    assert _package()["contributes"]["configuration"] == gen.configuration(), (
        "package.json settings are stale: run `python scripts/gen_vscode_settings.py`"
    )


def test_check_mode_reports_drift(tmp_path: Path) -> None:
    package = _package()
    props = _server_section(package)
    props.pop("codeconductor.maxModels")  # a field the server knows but VS Code would not offer
    stale = tmp_path / "package.json"
    stale.write_text(json.dumps(package), encoding="utf-8")
    assert gen.main(["--check", "--package-json", str(stale)]) == 1
    assert gen.main(["--package-json", str(stale)]) == 0  # regenerating repairs it
    assert gen.main(["--check", "--package-json", str(stale)]) == 0
    assert "codeconductor.maxModels" in _server_section(json.loads(stale.read_text(encoding="utf-8")))


def test_every_field_is_offered_with_its_default() -> None:
    props = _server_section(_package())
    defaults = Settings().model_dump(mode="json")
    assert set(props) == {f"codeconductor.{gen.camel(name)}" for name in Settings.model_fields}
    for name, value in defaults.items():
        assert props[f"codeconductor.{gen.camel(name)}"]["default"] == value, name


def test_settings_as_vscode_sends_them_parse_back_to_the_defaults() -> None:
    # What the extension sends: the "codeconductor" section's keys without the prefix, camelCase.
    sent = {key.removeprefix("codeconductor."): prop["default"] for key, prop in _server_section(_package()).items()}
    assert parse_settings(sent) == Settings()


def test_extension_only_settings_would_be_rejected_by_the_server() -> None:
    # Why the extension must strip them before sending: the server forbids unknown keys.
    for key in gen.EXTENSION_ONLY:
        leaf = key.removeprefix("codeconductor.").split(".")[0]
        with pytest.raises(SettingsError):
            parse_settings({leaf: "x"})


def test_enum_and_bounds_survive() -> None:
    props = _server_section(_package())
    assert props["codeconductor.embedded"]["enum"] == ["auto", "on", "off"]
    assert props["codeconductor.maxModels"]["minimum"] == 1
    assert props["codeconductor.quorum"]["type"] == ["integer", "null"]
    endpoint = props["codeconductor.endpoints"]["items"]
    assert endpoint["required"] == ["url"]
    assert endpoint["properties"]["kind"]["enum"] == ["auto", "ollama", "openai"]


def test_camel() -> None:
    assert gen.camel("probe_local") == "probeLocal"
    assert gen.camel("per_endpoint_concurrency") == "perEndpointConcurrency"
    assert gen.camel("verify") == "verify"


def test_where_code_goes_is_set_in_user_settings_only() -> None:
    # "application": never from a repository's .vscode/settings.json, and still read from the user's settings in
    # a remote window (code-server, Remote-SSH), which drops "machine" settings from them.
    props = _server_section(_package())
    for name in ("endpoints", *USER_ONLY_KEYS):
        key = f"codeconductor.{gen.camel(name)}"
        if key in props:
            assert props[key]["scope"] == "application", key
    assert {prop.get("scope") for prop in props.values()} <= {None, "application"}
