"""Model identity: the same model reached through several endpoints is one ensemble member with several replicas.

A team runs each model several times over (two Ollama hosts with the same tag, a vLLM replica set, two llama.cpp
servers on the same GGUF file, a LiteLLM model group). If each endpoint counted as a model, one model would get
several votes in the consensus and outvote the others by sheer number of copies. So discovery groups what it finds
into *members*: one :class:`~codeconductor.ensemble.types.ModelInfo` per model, its ``replicas`` listing every endpoint that
serves it (the member itself is its first replica). The dispatcher spreads a member's samples across its replicas
and fails over from one that breaks; every answer is recorded under the member (one vote) and says in
``ModelAnswer.replica`` which replica produced it.

The identity rule (this is the one place it is decided)
------------------------------------------------------
Two models found on different endpoints are the same model when

1. their **normalised names** are equal (:func:`normalized_name`): compared case-insensitively, with a gateway's
   provider route dropped (LiteLLM's ``openai/``, ``ollama/``, ``ollama_chat/``, ``hosted_vllm/``, ``vllm/``), a
   file path reduced to its file name and a ``.gguf`` suffix dropped (llama.cpp servers often name a model by its
   file), and Ollama's implicit ``:latest`` tag dropped; and
2. **nothing the servers report about the weights disagrees** (:func:`fingerprint`): Ollama's digest, the weight
   file's size in bytes (Ollama's ``size``, llama.cpp's ``meta.size``) and the quantisation. A value only one side
   reports does not decide anything (a gateway reports none of them); a value both report must be equal. So two
   hosts that pulled the same tag at different times (different digests), or one GGUF quantised twice, stay two
   members, each with its own vote, as they are in fact different weights.

Names are not otherwise guessed at: ``qwen2.5-coder:7b`` on Ollama and ``Qwen/Qwen2.5-Coder-7B-Instruct`` on vLLM
are two members (their weights differ in format and often in quantisation, and they do answer differently).
A model group behind a gateway is one member whatever its size (the gateway spreads the calls); if the same model is
also reachable directly, the gateway's group and the direct servers join one member when the names match.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .types import ModelInfo

__all__ = ["ROUTE_PREFIXES", "fingerprint", "group_replicas", "normalized_name", "replicas_of", "same_model"]

# Provider routes a gateway puts in front of a model name (LiteLLM's ``provider/model`` convention).
ROUTE_PREFIXES = (
    "openai/",
    "ollama/",
    "ollama_chat/",
    "hosted_vllm/",
    "vllm/",
    "litellm_proxy/",
    "text-completion-openai/",
)


def normalized_name(name: str) -> str:
    """The part of a model's name that identifies it across servers (see the module docstring, rule 1)."""
    key = name.strip().lower()
    for prefix in ROUTE_PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix) :]
            break
    if key.endswith(".gguf"):
        key = key.rsplit("/", 1)[-1].removesuffix(".gguf")
    return key.removesuffix(":latest")


@dataclass(frozen=True)
class _Fingerprint:
    digest: str | None
    size_bytes: int | None
    quantization: str | None

    def conflicts(self, other: _Fingerprint) -> bool:
        pairs = (
            (self.digest, other.digest),
            (self.size_bytes, other.size_bytes),
            (self.quantization, other.quantization),
        )
        return any(a is not None and b is not None and a != b for a, b in pairs)

    def merged(self, other: _Fingerprint) -> _Fingerprint:
        return _Fingerprint(
            self.digest or other.digest,
            self.size_bytes if self.size_bytes is not None else other.size_bytes,
            self.quantization or other.quantization,
        )


def fingerprint(model: ModelInfo) -> _Fingerprint:
    """What the server reports about the weights (see the module docstring, rule 2)."""
    digest = model.digest.lower().removeprefix("sha256:") if model.digest else None
    quant = model.quantization.upper() if model.quantization else None
    return _Fingerprint(digest or None, model.size_bytes, quant)


def same_model(a: ModelInfo, b: ModelInfo) -> bool:
    """True when ``a`` and ``b`` are the same model by the identity rule."""
    return normalized_name(a.name) == normalized_name(b.name) and not fingerprint(a).conflicts(fingerprint(b))


def replicas_of(model: ModelInfo) -> list[ModelInfo]:
    """Every endpoint serving ``model``, ``model`` (as discovered there) first."""
    return list(model.replicas) if model.replicas else [model]


@dataclass
class _Group:
    key: str
    print: _Fingerprint
    members: list[ModelInfo]


def group_replicas(models: Iterable[ModelInfo]) -> list[ModelInfo]:
    """Merge the models that are the same model (by the rule above) into members, in discovery order.

    Each member is its first replica (the first endpoint found serving it, so configured endpoints come before the
    usual local ports) with ``replicas`` listing all of them; a model found once is returned unchanged. ``loaded``
    is true when any replica has the model in memory.
    """
    groups: list[_Group] = []
    for model in models:
        for replica in replicas_of(model):
            key = normalized_name(replica.name)
            mark = fingerprint(replica)
            group = next((g for g in groups if g.key == key and not g.print.conflicts(mark)), None)
            if group is None:
                groups.append(_Group(key, mark, [replica.model_copy(update={"replicas": []})]))
            elif all(r.id != replica.id for r in group.members):
                group.print = group.print.merged(mark)
                group.members.append(replica.model_copy(update={"replicas": []}))
    return [_member(g.members) for g in groups]


def _member(replicas: Sequence[ModelInfo]) -> ModelInfo:
    first = replicas[0]
    if len(replicas) == 1:
        return first
    loaded = True if any(r.loaded for r in replicas) else first.loaded
    return first.model_copy(update={"replicas": list(replicas), "loaded": loaded})
