"""Model identity (codeconductor.ensemble.replicas) and the servers' load signals (codeconductor.ensemble.gateways): the pure parts."""

from __future__ import annotations

import math

import pytest

from codeconductor.ensemble.gateways import Load, parse_prometheus
from codeconductor.ensemble.replicas import group_replicas, normalized_name, replicas_of, same_model
from codeconductor.ensemble.types import ModelInfo, ProviderKind


def _m(name: str, endpoint: str, kind: ProviderKind = ProviderKind.OPENAI, **extra: object) -> ModelInfo:
    return ModelInfo(name=name, provider=kind, endpoint=endpoint, **extra)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("Qwen2.5-Coder:7B", "qwen2.5-coder:7b"),
        ("qwen2.5-coder:latest", "qwen2.5-coder"),
        ("openai/tiny", "tiny"),
        ("hosted_vllm/Qwen/Qwen2.5-Coder-7B-Instruct", "qwen/qwen2.5-coder-7b-instruct"),
        ("/models/tiny.gguf", "tiny"),
        ("ollama_chat/llama3.1:8b", "llama3.1:8b"),
    ],
)
def test_normalized_name(raw: str, key: str) -> None:
    assert normalized_name(raw) == key


def test_two_ollama_hosts_with_the_same_tag_and_digest_are_one_member() -> None:
    a = _m("qwen2.5-coder:7b", "http://10.0.0.1:11434", ProviderKind.OLLAMA, digest="sha256:abc", size_bytes=10)
    b = _m("qwen2.5-coder:7b", "http://10.0.0.2:11434", ProviderKind.OLLAMA, digest="abc", size_bytes=10)
    other = _m("llama3.1:8b", "http://10.0.0.1:11434", ProviderKind.OLLAMA, digest="def")
    members = group_replicas([a, other, b])
    assert [m.name for m in members] == ["qwen2.5-coder:7b", "llama3.1:8b"]
    assert [r.endpoint for r in replicas_of(members[0])] == [a.endpoint, b.endpoint]
    assert members[0].id == a.id  # the member keeps its first replica's id: one stable vote
    assert replicas_of(members[1]) == [other]


def test_different_weights_under_one_tag_stay_two_members() -> None:
    a = _m("qwen2.5-coder:7b", "http://10.0.0.1:11434", ProviderKind.OLLAMA, digest="aaa")
    b = _m("qwen2.5-coder:7b", "http://10.0.0.2:11434", ProviderKind.OLLAMA, digest="bbb")
    assert not same_model(a, b)
    assert len(group_replicas([a, b])) == 2
    q4 = _m("tiny", "http://127.0.0.1:1", quantization="Q4_K_M")
    q8 = _m("tiny", "http://127.0.0.1:2", quantization="Q8_0")
    assert len(group_replicas([q4, q8])) == 2
    big = _m("tiny", "http://127.0.0.1:1", size_bytes=100)
    small = _m("tiny", "http://127.0.0.1:2", size_bytes=99)
    assert len(group_replicas([big, small])) == 2


def test_a_gateway_group_joins_the_servers_it_fronts_by_name() -> None:
    gateway = _m("tiny", "http://127.0.0.1:4000", server="litellm", deployments=2)
    direct = [_m("tiny.gguf", "http://127.0.0.1:8081", size_bytes=5), _m("tiny", "http://127.0.0.1:8082", size_bytes=5)]
    (member,) = group_replicas([gateway, *direct])
    assert [r.endpoint for r in replicas_of(member)] == [
        "http://127.0.0.1:4000",
        "http://127.0.0.1:8081",
        "http://127.0.0.1:8082",
    ]
    assert member.server == "litellm"
    assert member.deployments == 2
    # A model reported by a replica that conflicts with what the group already knows starts its own member.
    odd = _m("tiny", "http://127.0.0.1:8083", size_bytes=6)
    assert len(group_replicas([gateway, *direct, odd])) == 2


def test_grouping_is_idempotent_and_a_single_model_is_unchanged() -> None:
    a = _m("m", "http://127.0.0.1:1", loaded=False)
    b = _m("m", "http://127.0.0.1:2", loaded=True)
    once = group_replicas([a, b])
    assert once[0].loaded is True
    assert group_replicas(once) == once
    assert group_replicas([a]) == [a]
    assert group_replicas([a, a]) == [a]  # the same endpoint twice is not a replica


VLLM_METRICS = """\
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="Qwen/Qwen2.5-Coder-7B-Instruct"} 6.0
vllm:num_requests_waiting{engine="1",model_name="Qwen/Qwen2.5-Coder-7B-Instruct"} 2.0
vllm:num_requests_running{engine="0",model_name="Qwen/Qwen2.5-Coder-7B-Instruct"} 16.0
vllm:kv_cache_usage_perc{engine="0",model_name="Qwen/Qwen2.5-Coder-7B-Instruct"} 0.97
vllm:prompt_tokens_total{model_name="a \\"quoted\\" name"} 1.5e3
garbage line without value
"""


def test_parse_prometheus_text() -> None:
    samples = parse_prometheus(VLLM_METRICS)
    waiting = [(labels["engine"], v) for name, labels, v in samples if name == "vllm:num_requests_waiting"]
    assert waiting == [("0", 6.0), ("1", 2.0)]
    assert ("vllm:prompt_tokens_total", {"model_name": 'a "quoted" name'}, 1500.0) in samples
    assert all(name.startswith("vllm:") for name, _, _ in samples)


def test_load_pressure_and_overload() -> None:
    assert Load().pressure() == 0.0
    assert not Load(waiting=3).overloaded()
    assert Load(waiting=8).overloaded()
    assert not Load(waiting=8).overloaded(capacity=4)  # 2 per slot
    assert Load(waiting=3, kv_cache=0.99).overloaded()
    assert Load(ready=False).pressure() == math.inf
    assert Load(loaded=False).pressure() == 0.5
