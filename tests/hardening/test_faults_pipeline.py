"""Faults through the engine: an ensemble of eight models where five misbehave (two hang, one answers HTTP 500, one
drops the connection mid-answer, one sends garbage) still answers by its deadline, names each failed model and
why, gives a lower confidence than the same three good answers alone, and leaves no task or connection behind.

The misbehaving models are the fault-injection FAKE server (``tests.support.fault_server``): a real model server
cannot be made to hang or send invalid UTF-8 on demand.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from codeconductor.ensemble.context import build_context
from codeconductor.ensemble.pipeline import Pipeline
from codeconductor.ensemble.settings import parse_settings
from codeconductor.ensemble.types import AnswerStatus, Request, Result, TaskKind
from tests.support.fault_server import FaultServer
from tests.support.faulty_ensemble import FAILING, GARBAGE, GOOD, connections, ensemble_settings, settle
from tests.support.lsp_client import FIXED

BUGGY = "def add(a, b):\n    return a - b\n"
DEADLINE_S = 8.0
# Hard bound on one run: the deadline plus generous slack for a loaded CI machine. Exceeding it means a hang.
RUN_BOUND_S = DEADLINE_S + 20.0


def _request() -> Request:
    return Request(task=TaskKind.FIX, context=build_context(BUGGY, 0, 2))


async def _run(url: str, models: list[str], kind: str = "openai") -> Result:
    settings = parse_settings(
        ensemble_settings(url, models, deadlineS=DEADLINE_S) | {"endpoints": [{"url": url, "kind": kind}]}
    )
    async with Pipeline(settings) as pipeline:
        async with asyncio.timeout(RUN_BOUND_S):
            return await pipeline.run(_request())


def _outcomes(result: Result) -> dict[str, tuple[str, str | None]]:
    return {a.model.name: (a.status.value, a.reason) for a in result.answers}


@pytest.mark.parametrize(
    ("kind", "garbage"),
    [("openai", "garbage-utf8"), ("openai", "garbage-json"), ("openai", "huge"), ("ollama", "garbage-json")],
)
async def test_five_of_eight_fail_and_each_is_named(hard_models: FaultServer, kind: str, garbage: str) -> None:
    failing = [*FAILING, garbage]
    hard_models.clear_log()
    result = await _run(hard_models.url, [*GOOD, *failing], kind)

    outcomes = _outcomes(result)
    assert len(outcomes) == 8
    for name in GOOD:
        assert outcomes[name] == ("answered", None)
    expected = {**FAILING, **GARBAGE}
    for name in failing:
        assert outcomes[name] == expected[name], name
    for answer in result.answers:
        if answer.status is not AnswerStatus.ANSWERED:
            assert answer.error, f"{answer.model.name} failed without saying why"
    c = result.consensus
    assert (c.asked, c.answered, c.agree) == (8, 3, 3)
    assert c.pick.strip() == FIXED.strip()
    # The hung calls were abandoned: the fake server saw both clients go away.
    await settle(lambda: {"hang", "stall"} <= set(hard_models.disconnects))
    assert {"hang", "stall"} <= set(hard_models.disconnects)


async def test_missing_models_lower_the_confidence(hard_models: FaultServer) -> None:
    """The same three good answers, alone and next to five failing models: the pick is the same, the missing
    models are named, and the confidence is lower with them missing (their evidence is unknown; factor
    sqrt((answered + 1) / (asked + 1)), ``ensemble/consensus/confidence.py``)."""
    alone = await _run(hard_models.url, list(GOOD))
    with_failures = await _run(hard_models.url, [*GOOD, *FAILING, "garbage-json"])
    assert alone.consensus.pick == with_failures.consensus.pick
    assert (alone.consensus.agree, alone.consensus.asked) == (3, 3)
    assert (with_failures.consensus.agree, with_failures.consensus.answered, with_failures.consensus.asked) == (3, 3, 8)
    assert 0 < with_failures.consensus.confidence < alone.consensus.confidence
    assert with_failures.consensus.confidence == pytest.approx(alone.consensus.confidence * (4 / 9) ** 0.5, abs=2e-4)
    assert any("5 of 8 models gave no answer" in note for note in with_failures.consensus.notes)
    assert with_failures.summary.startswith("3/8 models agree")


async def test_no_task_or_connection_left_behind(hard_models: FaultServer) -> None:
    pid = os.getpid()
    port = hard_models.port
    tasks_before = set(asyncio.all_tasks())
    client_before = connections(pid, port, side="client")
    server_before = connections(pid, port, side="server")
    for garbage in GARBAGE:
        await _run(hard_models.url, [*GOOD, *FAILING, garbage])
    # Every model call is its own task; all of them are finished and gone.
    leftover = {t for t in asyncio.all_tasks() - tasks_before if not t.done()}
    assert leftover == set(), [t.get_name() for t in leftover]
    # Each pipeline closed its client: no socket of ours to the fake server stays open, and the server side
    # (hung handlers included) closes too.
    assert await settle(lambda: connections(pid, port, side="client") <= client_before)
    assert await settle(lambda: connections(pid, port, side="server") <= server_before)


async def test_cancelling_a_run_with_hung_models_stops_everything(hard_models: FaultServer) -> None:
    settings = parse_settings(ensemble_settings(hard_models.url, ["hang", "stall", *GOOD], timeoutS=60, deadlineS=120))
    pid, port = os.getpid(), hard_models.port
    client_before = connections(pid, port, side="client")
    tasks_before = set(asyncio.all_tasks())
    async with Pipeline(settings) as pipeline:
        run = asyncio.ensure_future(pipeline.run(_request()))
        await settle(lambda: connections(pid, port, side="client") >= client_before + 2)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        leftover = {t for t in asyncio.all_tasks() - tasks_before if not t.done()}
        assert leftover == set(), [t.get_name() for t in leftover]
    assert await settle(lambda: connections(pid, port, side="client") <= client_before)
