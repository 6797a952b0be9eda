"""Hostile answers run in the user's project are named (issue 24 item 7 for project runs), and the user's own tests
are never blamed on them: the project driver's audit hook records connections, process starts, signals and writes
outside the scratch in every run, and a candidate is hostile only for what its run adds to the original's.

Real bubblewrap sandbox, a real project made under tmp_path with its own virtual environment
(:mod:`tests.support.projects`); these tests fail, never skip, where setup installed bubblewrap.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeconductor.ensemble._targets import function_at
from codeconductor.ensemble.consensus import decide
from codeconductor.ensemble.consensus.behaviour import Behaviour
from codeconductor.ensemble.context import build_context, parse_blocks
from codeconductor.ensemble.project import project_for
from codeconductor.ensemble.types import AnswerStatus, ModelAnswer, ModelInfo, ProviderKind, Request, TaskKind
from codeconductor.ensemble.verify.observe import SandboxExecutor
from codeconductor.ensemble.verify.project import ProjectRunner
from tests.support.projects import make_venv
from tests.support.sandbox import require_sandbox

MODULE = '''import socket


def double(x):
    return x * 2


def reachable(port):
    """Whether something listens on the port (the user's own code connects)."""
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False
'''
TESTS = """import subprocess

from calc.core import double, reachable


def test_double():
    assert double(3) == 6
    assert double(-1) == -2
    try:  # the user's own test starts a process
        subprocess.run(["/bin/true"], check=False)
    except OSError:
        pass


def test_reachable():
    assert reachable(9) in (True, False)
"""
DOUBLE_RIGHT = "def double(x):\n    return x + x\n"
DOUBLE_WRONG = "def double(x):\n    return x * 3\n"
DOUBLE_CONNECTS = """def double(x):
    import socket
    try:
        socket.create_connection(("127.0.0.1", 9), 0.2)
    except OSError:
        pass
    return x * 2
"""
DOUBLE_WRITES = """def double(x):
    try:
        open("/usr/lib/cc-planted.py", "w")
    except OSError:
        pass
    return x * 2
"""
DOUBLE_SPAWNS = """def double(x):
    import subprocess
    try:
        subprocess.run(["/bin/true"], check=False)
    except OSError:
        pass
    return x * 2
"""
REACHABLE_REWRITE = '''def reachable(port):
    """Whether something listens on the port (the user's own code connects)."""
    try:
        with socket.create_connection(("127.0.0.1", port), 0.2):
            return True
    except OSError:
        return False
'''
# Wrong (triples) and forges the driver's report: reads the job's settings from the scratch (the calls, the tests,
# a report key if one is there), writes a report saying every test passed, signed with that key in the harness's
# format as well as unsigned, once, to the job's stdout file (a file in the scratch), then ends the process
# before the driver reports.
DOUBLE_FORGER = """def double(x):
    import hashlib, hmac, json, os
    try:
        with open("/tmp/__cc_project__.json", encoding="utf-8") as handle:
            cfg = json.load(handle)
    except Exception:
        cfg = {}
    total = len(cfg.get("calls") or []) + len(cfg.get("recordings") or [])
    tests = {t: "passed" for t in cfg.get("tests") or ["tests/test_core.py::test_double"]}
    report = {"codeconductor_project": 1, "keys": ["=6"] * total, "tests": tests, "errors": [], "audit": []}
    text = json.dumps(report)
    lines = "\\n" + text + "\\n"
    key = cfg.get("report_key") or cfg.get("key")
    if key:
        lines += text + "\\t" + hmac.new(bytes.fromhex(key), text.encode(), hashlib.sha256).hexdigest() + "\\n"
    try:  # once: two reports would be distrusted
        with open("/tmp/.stdout", "a", encoding="utf-8") as handle:
            handle.write(lines)
    except OSError:
        for fd in range(3, 64):
            try:
                os.write(fd, lines.encode())
            except OSError:
                pass
    os._exit(0)
"""


@pytest.fixture(scope="module")
def calc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("calc") / "calc-project"
    (root / "calc").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "calc"\nversion = "0"\n', encoding="utf-8")
    (root / "calc" / "__init__.py").write_text("", encoding="utf-8")
    (root / "calc" / "core.py").write_text(MODULE, encoding="utf-8")
    (root / "tests").mkdir()
    (root / "tests" / "test_core.py").write_text(TESTS, encoding="utf-8")
    make_venv(root / ".venv")
    return root / "calc" / "core.py"


@pytest.fixture(scope="module")
def executor() -> Iterator[SandboxExecutor]:
    require_sandbox()
    runner = SandboxExecutor()
    yield runner
    runner.close()


def _request(module: Path, function: str) -> Request:
    text = module.read_text(encoding="utf-8")
    blocks = parse_blocks(text, "python")
    line = next(b.start for b in blocks if b.name == function and b.kind == "function")
    found = function_at(blocks, line, "python")
    assert found is not None
    context = build_context(text, found.start, found.end, path=str(module))
    context.project = project_for(module, text)
    return Request(task=TaskKind.IMPROVE, context=context)


def _decide(request: Request, texts: dict[str, str], executor: SandboxExecutor) -> dict[str, str | None]:
    model = ModelInfo(name="m", provider=ProviderKind.OLLAMA, endpoint="http://127.0.0.1:11434")
    answers = [
        ModelAnswer(
            model=model.model_copy(update={"name": name, "family": name}),
            status=AnswerStatus.ANSWERED,
            text=f"```python\n{text}```",
        )
        for name, text in texts.items()
    ]
    decision = asyncio.run(decide(request, answers, executor=executor))
    assert any("run in your project" in n for n in decision.notes), decision.notes
    return {member.split("@")[0]: cluster.rejected for cluster in decision.clusters for member in cluster.members}


def test_a_candidate_observed_before_the_users_code_is_compared_with_it(calc: Path) -> None:
    """The user's own run is made (or joined) before a candidate's events are judged: observed first and alone,
    the candidate is named for its write, not for the process the user's test starts."""
    require_sandbox()

    async def observe_first() -> Behaviour:
        fresh = SandboxExecutor()  # nothing of the user's code observed yet
        try:
            probe = await fresh.project_probe(_request(calc, "double"), None)
            assert probe is not None
            return await fresh.observe(DOUBLE_WRITES, probe)
        finally:
            fresh.close()

    behaviour = asyncio.run(observe_first())
    assert behaviour.hostile is not None
    assert "write outside its scratch" in behaviour.hostile


def test_a_candidate_is_named_for_what_its_run_adds(calc: Path, executor: SandboxExecutor) -> None:
    verdicts = _decide(
        _request(calc, "double"),
        {"right": DOUBLE_RIGHT, "connects": DOUBLE_CONNECTS, "writes": DOUBLE_WRITES},
        executor,
    )
    assert verdicts["right"] is None
    assert verdicts["connects"] == (
        "unsafe: tried to open a network connection (the sandbox stopped it; no code edit needs that)"
    )
    assert verdicts["writes"] == (
        "unsafe: tried to write outside its scratch directory (the sandbox stopped it; no code edit needs that)"
    )


def test_what_the_users_own_tests_do_is_not_blamed_on_a_candidate(calc: Path, executor: SandboxExecutor) -> None:
    # The user's tests start a process and the user's reachable() connects: a candidate doing the same is not
    # hostile for it, in the run of either function.
    spawns = _decide(_request(calc, "double"), {"spawns": DOUBLE_SPAWNS, "right": DOUBLE_RIGHT}, executor)
    assert spawns == {"spawns": None, "right": None}
    rewrite = _decide(_request(calc, "reachable"), {"rewrite": REACHABLE_REWRITE}, executor)
    assert rewrite == {"rewrite": None}


def test_an_answer_that_forges_the_drivers_report_and_exits_passes_nothing(calc: Path) -> None:
    # The finding in Go's runner, in the Python driver: its report was one unkeyed line on stdout, and the
    # candidate runs in the driver's process with the job's settings in the scratch.
    runner = ProjectRunner(workers=1)

    async def observe_all() -> list[dict[str, str]]:
        probe = await runner.probe(_request(calc, "double"), None)
        assert probe is not None
        assert probe.project is not None
        assert probe.project.tests, probe.project
        return [dict((await runner.observe(c, probe)).tests) for c in (DOUBLE_RIGHT, DOUBLE_WRONG, DOUBLE_FORGER)]

    try:
        right, wrong, forger = asyncio.run(observe_all())
    finally:
        runner.close()
    assert set(right.values()) == {"passed"}, right  # the driver's own report is read
    assert "failed" in wrong.values(), wrong
    assert "passed" not in forger.values(), forger
