"""Fail closed (issue 24): where no sandbox can run, nothing runs - no weaker fallback, whatever it is called - and
every front says so with the reason and the fix; a hostile answer is named, put out, and counted against its model.

``CODECONDUCTOR_SANDBOX=off`` (the user's environment; a repository cannot set it) stands for "bubblewrap cannot
run here": the real probe reads it, so every path below is the one a machine without bubblewrap takes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeconductor.ensemble.consensus import decide
from codeconductor.ensemble.errors import SandboxUnavailable
from codeconductor.ensemble.fixloop import FixTarget, fix_with_tests
from codeconductor.ensemble.history import History
from codeconductor.ensemble.pipeline import Pipeline
from codeconductor.ensemble.settings import Settings
from codeconductor.ensemble.types import (
    AnswerStatus,
    CodeContext,
    ModelAnswer,
    ModelInfo,
    ProviderKind,
    Request,
    Result,
    TaskKind,
)
from codeconductor.ensemble.verify import _bwrap
from codeconductor.ensemble.verify.observe import SandboxExecutor
from codeconductor.ensemble.verify.pytest_runner import PytestRunner
from codeconductor.ensemble.verify.sandbox import Sandbox, sandbox_notice
from tests.support.fault_server import FaultServer
from tests.support.sandbox import require_sandbox

REPO = Path(__file__).resolve().parents[2]
STUB = '''def add_three(x: int) -> int:
    """Add three.
    >>> add_three(2)
    5
    """
'''
RIGHT = "def add_three(x):\n    return x + 3\n"


def _switch(monkeypatch: pytest.MonkeyPatch, value: str) -> Iterator[None]:
    monkeypatch.setenv(_bwrap.ENV_SWITCH, value)
    _bwrap.support.cache_clear()
    yield
    monkeypatch.delenv(_bwrap.ENV_SWITCH)
    _bwrap.support.cache_clear()


@pytest.fixture
def sandbox_off(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from _switch(monkeypatch, "off")


@pytest.mark.parametrize("value", ["off", "fallback", "weak"])
def test_nothing_runs_and_the_job_says_why_and_the_fix(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    for _ in _switch(monkeypatch, value):
        box = Sandbox()
        assert box.available is False
        assert box.unavailable_reason == f"candidate execution is off (CODECONDUCTOR_SANDBOX={value})"
        assert box.containment == "none"
        assert not any(box.protections.values())
        with box:
            assert box._spares == []  # nothing was started ahead
            with pytest.raises(SandboxUnavailable) as raised:
                box.run_calls(RIGHT, "add_three", ["add_three(2)"])
            with pytest.raises(SandboxUnavailable):
                box.run_script({"a.py": "print(1)\n"}, ["a.py"])
        message = str(raised.value)
        assert message.startswith("not executed: the sandbox cannot run here (candidate execution is off")
        assert "install bubblewrap" in message
        assert "docs/reliability.md" in message
        assert raised.value.reason == box.unavailable_reason
        assert sandbox_notice() == message


def test_models_prints_off_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "codeconductor.toml").write_text('probe_local = false\nembedded = "off"\n')
    env = {**os.environ, "PYTHONPATH": str(REPO), "CODECONDUCTOR_SANDBOX": "fallback", "COLUMNS": "300"}
    done = subprocess.run(
        [sys.executable, "-m", "codeconductor.cli", "models"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "sandbox: OFF - not executed: the sandbox cannot run here" in done.stdout, done.stdout + done.stderr
    assert "CODECONDUCTOR_SANDBOX=fallback" in done.stdout


async def test_the_pipeline_hands_no_executor_and_adds_the_note(sandbox_off: None) -> None:
    settings = Settings.model_validate({"probe_local": False, "embedded": "off", "verify": True, "history": False})
    request = Request(task=TaskKind.IMPLEMENT, context=CodeContext(language="python", selection=STUB))
    with FaultServer(apis=("openai",)) as fake:
        fake.add_model("ok-right", text=f"```python\n{RIGHT}```")
        models = [ModelInfo(name="ok-right", provider=ProviderKind.OPENAI, endpoint=fake.url)]
        async with Pipeline(settings) as pipeline:
            result = await pipeline.run(request, models=models)
    assert result.consensus.executed is False  # the consensus got no executor: nothing ran
    notes = [n for n in result.notes if n.startswith("not executed:")]
    assert notes == [sandbox_notice()]


async def test_the_fix_loop_refuses_before_asking_anyone(sandbox_off: None, tmp_path: Path) -> None:
    asked: list[Request] = []

    async def generate(request: Request, **_: object) -> Result:
        asked.append(request)
        raise AssertionError("the fix loop asked a model although nothing can be tested")

    (tmp_path / "m.py").write_text("def f(x):\n    return x\n")
    (tmp_path / "test_m.py").write_text("from m import f\n\ndef test_f():\n    assert f(1) == 2\n")
    target = FixTarget(root=str(tmp_path), path="m.py", function="f", tests=["test_m.py::test_f"])
    with pytest.raises(SandboxUnavailable) as raised:
        await fix_with_tests(generate, target, runner=PytestRunner(Sandbox()))
    assert str(raised.value) == sandbox_notice()
    assert asked == []


# -- hostile answers are named, put out, and counted ----------------------------------------------------------------
HOSTILE = {
    "connects": "import socket\ndef add_three(x):\n    try:\n        socket.create_connection(('127.0.0.1', 9), 1)\n"
    "    except OSError:\n        pass\n    return x + 3\n",
    "plants": "def add_three(x):\n    try:\n        open('/usr/lib/python3/sitecustomize.py', 'w')\n"
    "    except OSError:\n        pass\n    return x + 3\n",
}


async def test_a_hostile_answer_is_out_with_its_reason_and_counted(tmp_path: Path) -> None:
    require_sandbox()
    model = ModelInfo(name="m", provider=ProviderKind.OLLAMA, endpoint="http://127.0.0.1:11434")
    answers = [ModelAnswer(model=model.model_copy(update={"name": "honest"}), status=AnswerStatus.ANSWERED, text=RIGHT)]
    for name, text in HOSTILE.items():
        # Two copies each: a hostile answer must not win by agreeing with itself.
        for copy in range(2):
            hostile = model.model_copy(update={"name": f"{name}{copy}", "family": f"{name}{copy}"})
            answers.append(ModelAnswer(model=hostile, status=AnswerStatus.ANSWERED, text=text))
    request = Request(task=TaskKind.IMPLEMENT, context=CodeContext(language="python", selection=STUB))
    with Sandbox() as box:
        decision = await decide(request, answers, executor=SandboxExecutor(box))
    assert decision.pick_models == ["honest@http://127.0.0.1:11434"]
    rejected = {c.members[0].split("@")[0].rstrip("01"): c.rejected for c in decision.clusters[1:]}
    assert rejected == {
        "connects": "unsafe: tried to open a network connection (the sandbox stopped it; no code edit needs that)",
        "plants": "unsafe: tried to write outside its scratch directory (the sandbox stopped it; no code edit "
        "needs that)",
    }
    # The history counts it against the model (as failed examples), whatever its values were.
    history = History(tmp_path / "history.db")
    try:
        history.record(Result(id="r1", request=request, answers=answers, consensus=decision, wall_s=1.0))
        rows = {r["model_name"]: r["examples_passed"] for r in history.answer_rows()}
    finally:
        history.close()
    assert rows["honest"] == 1
    assert {rows[f"{n}{c}"] for n in HOSTILE for c in range(2)} == {0}


PING = '''import socket


def ping(port: int) -> bool:
    """Whether something listens on the port."""
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
        return True
    except OSError:
        return False
'''


async def test_doing_what_the_users_own_code_does_is_not_called_unsafe() -> None:
    # The user's function connects: candidates that connect too cannot be checked, but they are not hostile for it;
    # one that also writes outside its scratch still is.
    require_sandbox()
    model = ModelInfo(name="m", provider=ProviderKind.OLLAMA, endpoint="http://127.0.0.1:11434")
    rewrite = PING.replace("return True", "return bool(port)")
    planter = rewrite.replace('    """Whether', '    open("/usr/lib/cc-x.py", "w")\n    """Whether')
    answers = [
        ModelAnswer(
            model=model.model_copy(update={"name": "a", "family": "a"}), status=AnswerStatus.ANSWERED, text=rewrite
        ),
        ModelAnswer(
            model=model.model_copy(update={"name": "b", "family": "b"}), status=AnswerStatus.ANSWERED, text=planter
        ),
    ]
    request = Request(task=TaskKind.IMPROVE, context=CodeContext(language="python", selection=PING))
    with Sandbox() as box:
        decision = await decide(request, answers, executor=SandboxExecutor(box))
    reasons = {c.members[0].split("@")[0]: c.rejected for c in decision.clusters}
    assert reasons["a"] is not None
    assert not reasons["a"].startswith("unsafe:"), reasons
    assert reasons["b"] is not None
    assert reasons["b"].startswith("unsafe: tried to write outside its scratch directory"), reasons
