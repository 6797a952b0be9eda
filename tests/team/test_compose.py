"""docs/team/compose.yaml is a valid Compose file whose LiteLLM config is one CodeConductor can use.

docker is not available on the test machines, so the file is parsed with PyYAML and its structure checked against
what Compose and LiteLLM require (and what docs/team.md promises).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docs" / "team" / "compose.yaml"
_SERVICE_KEYS = {
    "image", "command", "environment", "volumes", "ports", "deploy", "healthcheck", "depends_on", "configs", "ipc",
}  # fmt: skip


def _load() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_compose_structure() -> None:
    data = _load()
    assert set(data) <= {"name", "services", "configs", "volumes", "networks"}
    services = data["services"]
    for name, service in services.items():
        assert set(service) <= _SERVICE_KEYS, name
        image = service["image"]
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", image), f"{name}: pin an image tag ({image})"
        assert not image.endswith(":latest"), name
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert source in data["volumes"], f"{name}: undeclared volume {source}"
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name}: depends on unknown {dependency}"
        for config in service.get("configs", []):
            assert config["source"] in data["configs"], name
    # Health-gated start of the gateway on the vLLM replicas' /health.
    for name, condition in services["litellm"]["depends_on"].items():
        if name.startswith("vllm"):
            assert condition == {"condition": "service_healthy"}
            assert "/health" in " ".join(services[name]["healthcheck"]["test"])


def test_litellm_config_groups_replicas_and_keeps_secrets_out() -> None:
    data = _load()
    litellm = data["services"]["litellm"]
    assert litellm["image"].split(":")[1].startswith("v1.106.12"), "the gateway's version is pinned"
    assert litellm["environment"]["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert litellm["environment"]["LITELLM_MASTER_KEY"].startswith("${")  # from the environment, not the file
    config = yaml.safe_load(data["configs"]["litellm-config"]["content"])
    assert config["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    assert config["router_settings"]["routing_strategy"] in ("simple-shuffle", "least-busy")
    groups: dict[str, list[str]] = {}
    for entry in config["model_list"]:
        groups.setdefault(entry["model_name"], []).append(entry["litellm_params"]["api_base"])
    services = data["services"]
    for name, bases in groups.items():
        assert len(bases) >= 2, f"{name}: a model group of one replica"
        assert len(set(bases)) == len(bases), name
        for base in bases:
            host = re.match(r"http://([\w-]+):\d+", base)
            assert host is not None, base
            assert host.group(1) in services, f"{name}: {base} is not a service here"
