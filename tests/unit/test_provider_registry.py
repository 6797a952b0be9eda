"""The provider registry: every kind of provider is declared once, in its module, and the engine asks that
declaration instead of branching on the kind (a new provider is one module and a line in the registry)."""

from __future__ import annotations

import ast
from pathlib import Path

import httpx

from codeconductor.ensemble.providers import EmbeddedProvider, OllamaProvider, OpenAICompatProvider
from codeconductor.ensemble.providers.base import ProviderContext
from codeconductor.ensemble.providers.registry import PROVIDERS, detectable_specs, provider_spec
from codeconductor.ensemble.types import ProviderKind

ROOT = Path(__file__).resolve().parents[2]


async def test_every_kind_has_one_spec_that_makes_its_provider() -> None:
    assert set(PROVIDERS) == set(ProviderKind)
    async with httpx.AsyncClient() as client:
        made = {
            kind: provider_spec(kind).create(ProviderContext("http://127.0.0.1:9", client, api_key="k", label="team"))
            for kind in ProviderKind
        }
    assert isinstance(made[ProviderKind.OLLAMA], OllamaProvider)
    assert isinstance(made[ProviderKind.OPENAI], OpenAICompatProvider)
    assert isinstance(made[ProviderKind.EMBEDDED], EmbeddedProvider)
    for kind, provider in made.items():
        assert provider.kind is kind
    openai = made[ProviderKind.OPENAI]
    assert isinstance(openai, OpenAICompatProvider)
    assert openai.label == "team"
    assert "api_key=set" in repr(openai)


def test_discovery_probes_ollama_before_openai_and_never_the_in_process_runtime() -> None:
    # Ollama speaks the OpenAI API too: probed the other way round, an Ollama server would be taken for OpenAI.
    assert [spec.kind for spec in detectable_specs()] == [ProviderKind.OLLAMA, ProviderKind.OPENAI]
    assert provider_spec(ProviderKind.EMBEDDED).in_process
    assert not provider_spec(ProviderKind.OPENAI).in_process
    assert provider_spec(ProviderKind.OLLAMA).loads_on_first_call
    assert not provider_spec(ProviderKind.OPENAI).loads_on_first_call


def _kind_branches(tree: ast.AST) -> list[int]:
    """Lines comparing something with a ProviderKind member (``x is ProviderKind.OLLAMA``, ``==``, ``in``)."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for operand in [node.left, *node.comparators]:
                if (
                    isinstance(operand, ast.Attribute)
                    and isinstance(operand.value, ast.Name)
                    and operand.value.id == "ProviderKind"
                ):
                    lines.append(node.lineno)
    return lines


def test_the_engine_asks_the_registry_instead_of_branching_on_the_kind() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted((ROOT / "ensemble").rglob("*.py"))
        if "providers" not in path.parts
        for line in _kind_branches(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert offenders == []
    assert _kind_branches(ast.parse("if model.provider is ProviderKind.OLLAMA:\n    pass\n")) == [1]
