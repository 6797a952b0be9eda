"""The request path end to end on real tiny llama.cpp servers: discovery, prompts, dispatch, consensus, history."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from codeconductor.ensemble.errors import RequestError
from codeconductor.ensemble.history import HistoryLike, NullHistory
from codeconductor.ensemble.pipeline import Pipeline
from codeconductor.ensemble.settings import Settings
from codeconductor.ensemble.types import AnswerStatus, CodeContext, ModelInfo, ProgressEvent, Request, Result, TaskKind
from tests.support.fault_server import FaultServer
from tests.support.llama_server import LlamaServer, free_port, llama_servers

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def servers(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[LlamaServer]]:
    """Two real llama.cpp servers with room for the task prompts (the tiny vocabulary is one token per byte)."""
    with llama_servers(
        tiny_gguf, ("tiny-a", "tiny-b"), n_ctx=2048, log_dir=tmp_path_factory.mktemp("llama-logs")
    ) as started:
        yield started


CODE = "def add(a, b):\n    return a - b\n"


def settings(*urls: str, **extra: object) -> Settings:
    data: dict[str, object] = {
        "endpoints": [{"url": u} for u in urls],
        "probe_local": False,
        "embedded": "off",
        "max_tokens": 8,
        "temperature": 0.0,
        "verify": False,
        "discovery_ttl_s": 600,
    }
    data.update(extra)
    return Settings.model_validate(data)


def request(**extra: object) -> Request:
    return Request.model_validate(
        {"task": "fix", "context": CodeContext(selection=CODE, end_line=2), "instruction": "fix it", **extra}
    )


class RecordingHistory(NullHistory):
    """A real (in-memory) history: gives fixed learned weights and keeps what it is asked to record."""

    def __init__(self, learned: Mapping[str, float]) -> None:
        super().__init__()
        self.learned = dict(learned)
        self.asked: list[tuple[TaskKind, list[str]]] = []
        self.recorded: list[Result] = []

    def weights(self, task: TaskKind, models: Sequence[ModelInfo]) -> dict[str, float]:
        self.asked.append((task, [m.id for m in models]))
        return dict(self.learned)

    def record(self, result: Result) -> None:
        self.recorded.append(result)


async def test_end_to_end_on_two_real_servers(servers: list[LlamaServer]) -> None:
    tiny_server, other = servers
    history = RecordingHistory({f"tiny-a@{tiny_server.url}": 0.5})
    assert isinstance(history, HistoryLike)
    events: list[ProgressEvent] = []
    async with Pipeline(settings(tiny_server.url, other.url), history=history) as pipeline:
        result = await pipeline.run(request(), on_progress=events.append)
    assert re.fullmatch(r"[0-9a-f]{32}", result.id)
    assert {a.model.name for a in result.answers} == {"tiny-a", "tiny-b"}
    assert all(a.status is AnswerStatus.ANSWERED for a in result.answers)
    assert result.consensus.asked == 2
    assert result.consensus.answered == 2
    # Tiny random weights write noise: either a pick or an honest "no edit", never both, never neither.
    assert bool(result.consensus.pick) != bool(result.consensus.no_edit)
    assert result.wall_s > 0
    assert {e.status for e in events} >= {"queued", "started", "answered"}
    assert history.recorded == [result]
    assert history.asked == [(TaskKind.FIX, [m.model.id for m in result.answers])]


async def test_explicit_models_and_samples(servers: list[LlamaServer]) -> None:
    async with Pipeline(settings(servers[0].url, servers[1].url)) as pipeline:
        models = await pipeline.models()
        assert [m.name for m in models] == ["tiny-a", "tiny-b"]
        result = await pipeline.run(request(samples_per_model=2), models=models[:1])
    assert [(a.model.name, a.sample) for a in result.answers] == [("tiny-a", 0), ("tiny-a", 1)]
    assert result.consensus.asked == 2


async def test_settings_samples_used_when_request_does_not_say(servers: list[LlamaServer]) -> None:
    async with Pipeline(settings(servers[0].url, samples_per_model=2)) as pipeline:
        result = await pipeline.run(request())
    assert len(result.answers) == 2


async def test_update_settings_drops_the_cached_model_list(servers: list[LlamaServer]) -> None:
    tiny_server, other = servers
    async with Pipeline(settings(tiny_server.url)) as pipeline:
        assert [m.name for m in await pipeline.models()] == ["tiny-a"]
        pipeline.update_settings(settings(tiny_server.url, other.url))
        assert pipeline.settings.endpoints[1].url == other.url
        assert sorted(m.name for m in await pipeline.models()) == ["tiny-a", "tiny-b"]
        statuses = await pipeline.endpoints()
        assert [s.state for s in statuses] == ["up", "up"]


async def test_no_models_raises_request_error_with_advice() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with Pipeline(settings(dead)) as pipeline:
        with pytest.raises(RequestError, match="no models available") as caught:
            await pipeline.run(request())
    assert caught.value.data["endpoints"][0]["state"] == "down"


async def test_broken_history_does_not_lose_the_answer(servers: list[LlamaServer]) -> None:
    class Broken:
        def weights(self, task: TaskKind, models: Sequence[ModelInfo]) -> Mapping[str, float]:
            raise OSError("database is locked")

        def skip_reason(self, model: ModelInfo, deadline_s: float) -> str | None:
            raise OSError("database is locked")

        def record(self, result: Result) -> None:
            raise OSError("disk full")

    async with Pipeline(settings(servers[0].url), history=Broken()) as pipeline:
        result = await pipeline.run(request())
    assert result.answers[0].status is AnswerStatus.ANSWERED


async def test_quorum_through_the_consensus_key() -> None:
    # Same code, different formatting: the consensus's key counts them as agreeing, so the hanging model is dropped.
    with FaultServer(["ok-a", "ok-b", "hang"], apis=("openai",)) as server:
        server.add_model("ok-b", text="def add(a,b):\n\n    return a+b\n")
        configured = settings(server.url, quorum=2, per_endpoint_concurrency=4, timeout_s=60)
        async with Pipeline(configured) as pipeline:
            result = await pipeline.run(request(task="implement"))
    statuses = {a.model.name: (a.status, a.reason) for a in result.answers}
    assert statuses == {
        "ok-a": (AnswerStatus.ANSWERED, None),
        "ok-b": (AnswerStatus.ANSWERED, None),
        "hang": (AnswerStatus.CANCELLED, "quorum"),
    }


async def test_priors_weigh_the_models_when_the_history_is_off() -> None:
    # A free-text question: one trusted model against two others that agree with each other. The prior glob is
    # matched case-insensitively, and a model without a prior counts the default 0.5 (as in the code consensus),
    # so the trusted answer (0.9) beats the agreeing pair (0.1 + 0.5).
    trusted = "Use a dictionary keyed by the user id; lookups are constant time."
    other = "Sort the list first and then binary search it for every query you make."
    with FaultServer(["ok-trusted", "ok-doubted", "ok-unknown"], apis=("openai",)) as server:
        server.add_model("ok-trusted", text=trusted)
        server.add_model("ok-doubted", text=other)
        server.add_model("ok-unknown", text=other)
        configured = settings(
            server.url,
            history=False,
            per_endpoint_concurrency=4,
            # The longer glob would say 0.7, the exact name says 0.1; ok-unknown has no prior.
            model_weights={"ok-doubted*": 0.7, "OK-TRUSTED*": 0.9, "ok-doubted": 0.1},
        )
        async with Pipeline(configured) as pipeline:
            result = await pipeline.run(request(task="ask", instruction="how do I find users fast?"))
    assert [a.status for a in result.answers] == [AnswerStatus.ANSWERED] * 3
    assert result.consensus.pick == trusted
    supports = sorted(round(c.support, 6) for c in result.consensus.clusters)
    assert supports == [0.6, 0.9]
