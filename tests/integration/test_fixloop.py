"""The fix-until-green loop end to end: candidates arrive through the real HTTP path (the fault-injection fake's
"ok-*" models with fixed answers, so which candidate is right is known), the user's pytest tests run on each in
the real sandbox, and the loop reports an honest pass or fail without touching the user's files."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeconductor.ensemble.fixloop import FixProgress, FixTarget, Generate, fix_with_tests
from codeconductor.ensemble.pipeline import Pipeline
from codeconductor.ensemble.settings import Settings
from codeconductor.ensemble.types import ModelInfo, ProviderKind
from codeconductor.ensemble.verify.pytest_runner import PytestRunner
from codeconductor.ensemble.verify.sandbox import Sandbox
from tests.support import clamp
from tests.support.fault_server import FaultServer

pytestmark = pytest.mark.timeout(240)

BUGGY = clamp.BUGGY
RIGHT = clamp.answer(clamp.RIGHT)
WRONG = clamp.answer(clamp.WRONG)
HALF = clamp.answer("def clamp(x, lo, hi):\n    return max(lo, x)\n")
TESTS = (
    "from pkg.util import clamp\n\n\n"
    "def test_low():\n    assert clamp(-5, 0, 10) == 0\n\n\n"
    "def test_high():\n    assert clamp(50, 0, 10) == 10\n\n\n"
    "def test_inside():\n    assert clamp(5, 0, 10) == 5\n"
)
ALL_TESTS = ["tests/test_util.py::test_low", "tests/test_util.py::test_high", "tests/test_util.py::test_inside"]


@pytest.fixture(scope="module")
def fake() -> Iterator[FaultServer]:
    with FaultServer(apis=("openai",)) as server:
        yield server


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(workers=1) as box:
        yield box


def make_project(root: Path, code: str = BUGGY) -> Path:
    clamp.write_package(root, "import math\n\n\n" + code + "\n\nPI = math.pi\n", TESTS)
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    return root


def tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def generator(fake: FaultServer, names: list[str]) -> tuple[Pipeline, Generate]:
    settings = Settings.model_validate(
        {"probe_local": False, "embedded": "off", "verify": False, "history": False, "timeout_s": 20}
    )
    pipeline = Pipeline(settings)
    models = [ModelInfo(name=n, provider=ProviderKind.OPENAI, endpoint=fake.url) for n in names]

    return pipeline, functools.partial(pipeline.run, models=models)


def target(root: Path, tests: list[str] | None = None) -> FixTarget:
    return FixTarget(root=str(root), path="pkg/util.py", function="clamp", tests=tests or ALL_TESTS)


async def test_passing_candidate_wins_and_user_files_untouched(
    fake: FaultServer, sandbox: Sandbox, tmp_path: Path
) -> None:
    fake.add_model("ok-fix-right", text=RIGHT)
    fake.add_model("ok-fix-wrong", text=WRONG)
    root = make_project(tmp_path)
    before = tree_hash(root)
    events: list[FixProgress] = []
    pipeline, generate = generator(fake, ["ok-fix-right", "ok-fix-wrong"])
    async with pipeline:
        outcome = await fix_with_tests(
            generate,
            target(root),
            runner=PytestRunner(sandbox),
            on_progress=events.append,
        )
    assert tree_hash(root) == before
    assert outcome.status == "passed", outcome.message
    assert outcome.message.startswith("1/2 candidates pass the tests")
    assert "max(lo, min(x, hi))" in outcome.pick
    assert outcome.pick_models == [f"ok-fix-right@{fake.url}"]
    # The edit is the whole file with only the function replaced.
    assert outcome.new_text.startswith("import math\n")
    assert "PI = math.pi" in outcome.new_text
    assert "return hi" not in outcome.new_text
    # The baseline told the truth about the current code: only test_inside passes.
    assert (outcome.baseline.passed, outcome.baseline.total) == (1, 3)
    assert "assert 10 == 0" in outcome.baseline.failures
    assert outcome.consensus is not None
    assert all(c.passes_examples for c in outcome.consensus.clusters)
    assert outcome.consensus.notes[0] == "1/2 candidates pass the tests"
    assert outcome.consensus.unchecked is None  # the user's tests checked it: never labelled "not checked"
    wrong = next(c for c in outcome.rounds[0].candidates if not c.ok)
    assert (wrong.passed, wrong.total) == (1, 3)
    phases = [e.phase for e in events]
    assert phases[0] == "baseline"
    assert "model" in phases
    assert "testing" in phases
    assert phases[-1] == "done"


async def test_failures_go_back_to_the_models(fake: FaultServer, sandbox: Sandbox, tmp_path: Path) -> None:
    learner = fake.add_model("ok-fix-learner", text=HALF)
    root = make_project(tmp_path)
    fake.clear_log()

    def on_progress(event: FixProgress) -> None:
        # The model "learns" between rounds: from round 2 on it answers the right code.
        if event.round == 2 and event.phase == "asking":
            learner.text = RIGHT

    pipeline, generate = generator(fake, ["ok-fix-learner"])
    async with pipeline:
        outcome = await fix_with_tests(
            generate,
            target(root),
            runner=PytestRunner(sandbox),
            on_progress=on_progress,
        )
    assert outcome.status == "passed", outcome.message
    assert [r.round for r in outcome.rounds] == [1, 2]
    assert outcome.rounds[0].passing == 0
    chats = [r.body for r in fake.requests if r.path.endswith("/chat/completions")]
    assert len(chats) == 2
    first, second = (chat["messages"][-1]["content"] for chat in chats)
    # Round 1 carries the tests and the current code's failures; round 2 the previous attempt's failures.
    assert "def test_high" in first
    assert "assert 10 == 0" in first
    assert "max(lo, x)" in second
    assert "assert 50 == 10" in second


async def test_no_candidate_passes_is_reported_honestly(fake: FaultServer, sandbox: Sandbox, tmp_path: Path) -> None:
    fake.add_model("ok-fix-bad1", text=WRONG)
    fake.add_model("ok-fix-bad2", text=HALF)
    fake.add_model("ok-fix-prose", text="I am not sure what you want.")
    root = make_project(tmp_path)
    pipeline, generate = generator(fake, ["ok-fix-bad1", "ok-fix-bad2", "ok-fix-prose"])
    async with pipeline:
        outcome = await fix_with_tests(
            generate,
            target(root),
            rounds=2,
            runner=PytestRunner(sandbox),
        )
    assert outcome.status == "failed"
    assert outcome.message.startswith("no candidate passed the tests")
    assert outcome.new_text == ""
    assert outcome.pick == ""
    assert len(outcome.rounds) == 2
    assert outcome.best is not None
    # HALF passes test_low and test_inside: the best attempt, with its real failure.
    assert "max(lo, x)" in outcome.best.code
    assert (outcome.best.passed, outcome.best.total) == (2, 3)
    assert "test_high" in outcome.best.failures
    assert all(not c.ok for r in outcome.rounds for c in r.candidates)


async def test_already_passing_asks_no_model(fake: FaultServer, sandbox: Sandbox, tmp_path: Path) -> None:
    root = make_project(tmp_path, code=clamp.RIGHT)
    fake.clear_log()
    pipeline, generate = generator(fake, ["ok-fix-right"])
    async with pipeline:
        outcome = await fix_with_tests(generate, target(root), runner=PytestRunner(sandbox))
    assert outcome.status == "already_passing"
    assert (outcome.baseline.passed, outcome.baseline.total) == (3, 3)
    assert not [r for r in fake.requests if r.path.endswith("/chat/completions")]


async def test_wrong_test_id_is_not_a_pass(fake: FaultServer, sandbox: Sandbox, tmp_path: Path) -> None:
    fake.add_model("ok-fix-right", text=RIGHT)
    root = make_project(tmp_path)
    pipeline, generate = generator(fake, ["ok-fix-right"])
    async with pipeline:
        outcome = await fix_with_tests(
            generate,
            target(root, ["tests/test_util.py::test_missing"]),
            rounds=1,
            runner=PytestRunner(sandbox),
        )
    assert outcome.status == "failed"
    assert "found no tests" in (outcome.best.failures if outcome.best else outcome.baseline.failures)
