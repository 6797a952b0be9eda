"""The WebAssembly sandbox (issue 24 item 6): where bubblewrap cannot run, pure-Python values candidates run in
CPython for WASI under the real wasmtime, and every result says so; programs are not executed there.

The path is forced as a user forces it: ``Sandbox(backend="webassembly")``, or ``CODECONDUCTOR_SANDBOX=webassembly``
(the user's environment) for the pipeline and the CLI. Where setup installed wasmtime (CI runs setup), a test that
cannot have the sandbox FAILS (``tests/support/sandbox.py``); the first test to need it compiles the module once
when setup did not.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeconductor.ensemble.consensus import decide
from codeconductor.ensemble.errors import SandboxUnavailable
from codeconductor.ensemble.pipeline import Pipeline
from codeconductor.ensemble.settings import Settings
from codeconductor.ensemble.types import (
    AnswerStatus,
    CodeContext,
    ModelAnswer,
    ModelInfo,
    ProviderKind,
    Request,
    TaskKind,
)
from codeconductor.ensemble.verify import _bwrap, _wasm
from codeconductor.ensemble.verify.observe import SandboxExecutor
from codeconductor.ensemble.verify.sandbox import CallSpec, Sandbox
from tests.support.fault_server import FaultServer
from tests.support.sandbox import require_wasm_sandbox

REPO = Path(__file__).resolve().parents[2]
STUB = '''def add_three(x: int) -> int:
    """Add three.
    >>> add_three(2)
    5
    >>> add_three(10)
    13
    """
'''
RIGHT = "def add_three(x):\n    return x + 3\n"
WRONG = "def add_three(x):\n    return x - 100\n"


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    require_wasm_sandbox()
    with Sandbox(backend="webassembly") as sandbox:
        assert sandbox.containment == "webassembly"
        yield sandbox


@pytest.fixture
def forced(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Bubblewrap left out by the user's switch: the automatic choice is the WebAssembly sandbox."""
    require_wasm_sandbox()
    monkeypatch.setenv(_bwrap.ENV_SWITCH, "webassembly")
    _bwrap.support.cache_clear()
    yield
    monkeypatch.delenv(_bwrap.ENV_SWITCH)
    _bwrap.support.cache_clear()


def calls(box: Sandbox, code: str, *exprs: str, entry: str = "f", **kw: float) -> list[str]:
    return [o.key for o in box.run_calls(code, entry, list(exprs), **kw)]


# -- right and wrong ------------------------------------------------------------------------------------------------
def test_right_and_wrong_candidates_are_judged_in_the_parent(box: Sandbox) -> None:
    specs = [CallSpec("add_three(2)", "5"), CallSpec("add_three(10)", "13"), CallSpec("add_three('a')")]
    right = box.run_calls(RIGHT, "add_three", specs)
    wrong = box.run_calls(WRONG, "add_three", specs)
    assert [o.matches for o in right] == [True, True, None]
    assert right[2].key == "!TypeError"
    assert [o.matches for o in wrong] == [False, False, None]
    assert [o.value for o in wrong[:2]] == ["-98", "-90"]


def test_values_have_the_canonical_form_of_the_bubblewrap_worker(box: Sandbox) -> None:
    code = "def f(x):\n    return {'b': {3, 1, 2}, 'a': 1 / 3}\n"
    assert calls(box, code, "f(0)") == ["=('<dict>', [(\"'a'\", 0.333333333), (\"'b'\", ('<set>', [1, 2, 3]))])"]


def test_a_candidate_that_does_not_load_fails_every_call(box: Sandbox) -> None:
    assert calls(box, "def f(x) return 1\n", "f(1)", "f(2)") == ["!load:SyntaxError"] * 2
    assert calls(box, "x = 1\n", "f(1)") == ["!load:NameError"]


# -- hostile candidates, contained -----------------------------------------------------------------------------
def test_host_files_are_not_there(box: Sandbox) -> None:
    code = "def f(path):\n    return open(path).read()\n"
    home = os.path.expanduser("~/.bashrc")
    assert calls(box, code, "f('/etc/passwd')", f"f({home!r})", "f('/proc/self/environ')") == ["!FileNotFoundError"] * 3


def test_the_job_directory_cannot_be_left(box: Sandbox) -> None:
    # The per-run key lies beside /job on the host: neither .. nor a symlink reaches it.
    code = "import os\ndef f(p):\n    return open(p).read()\ndef g(p):\n    os.symlink('/etc/passwd', p)\n"
    keys = calls(box, code, "f('/job/../key')", "os.listdir('/job/..')", "g('/job/x')", "f('../key')")
    assert keys == ["!PermissionError", "!PermissionError", "!PermissionError", "!FileNotFoundError"]


def test_no_environment_variables(box: Sandbox) -> None:
    assert calls(box, "import os\ndef f(x):\n    return dict(os.environ)\n", "f(0)") == ["=('<dict>', [])"]


def test_the_job_input_holds_no_expected_value(box: Sandbox) -> None:
    # What the guest can read is its read-only job directory: the calls, never what they should return.
    code = "import os\ndef f(x):\n    return sorted(os.listdir('/job')), open('/job/job.marshal', 'rb').read()\n"
    outcome = box.run_calls(code, "f", [CallSpec("f(0)", "'EXPECTED-7f3a'")])[0]
    assert outcome.ok
    assert outcome.value is not None
    assert "guest.py" in outcome.value
    assert "EXPECTED-7f3a" not in outcome.value
    assert outcome.matches is False
    written = "def f(x):\n    open('/job/job.marshal', 'wb').write(b'x')\n"
    assert calls(box, written, "f(0)") == ["!Hostile:tried to write outside its scratch directory"] * 1


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (
            "import socket\ndef f(x):\n    try:\n        socket.create_connection(('127.0.0.1', 9), 1)\n"
            "    except OSError:\n        pass\n    return x\n",
            "tried to open a network connection",
        ),
        (
            "import socket\ndef f(x):\n    socket.socket().connect(('10.0.0.1', 80))\n",
            "tried to open a network connection",
        ),
        ("import subprocess\ndef f(x):\n    return subprocess.run(['id'])\n", "tried to start a process"),
        ("def f(x):\n    open('/tmp/../etc/cron.d/x', 'w')\n", "tried to write outside its scratch directory"),
        ("import gc\ndef f(x):\n    return len(gc.get_objects())\n", "tried to inspect the interpreter's internals"),
    ],
)
def test_hostile_attempts_fail_in_the_guest_and_are_named(box: Sandbox, code: str, reason: str) -> None:
    assert calls(box, code, "f(1)", "f(2)") == [f"!Hostile:{reason}"] * 2


def test_no_native_code(box: Sandbox) -> None:
    assert calls(box, "import ctypes\ndef f(x):\n    return 1\n", "f(1)") == ["!load:ModuleNotFoundError"]
    assert calls(box, "import os\ndef f(x):\n    return os.fork()\n", "f(1)") == ["!AttributeError"]


def test_the_frame_trick_is_refused(box: Sandbox) -> None:
    code = "import sys\ndef f(x):\n    return sorted(sys._getframe(1).f_locals)\n"
    assert calls(box, code, "f(1)") == ["!ValueError"]


def test_an_infinite_loop_meets_its_call_deadline_and_the_next_call_runs(box: Sandbox) -> None:
    code = "def f(x):\n    while x:\n        pass\n    return 'done'\n"
    started = time.monotonic()
    assert calls(box, code, "f(0)", "f(1)", "f(0)", call_timeout_s=0.5) == ["='done'", "!Timeout", "='done'"]
    assert time.monotonic() - started < 5


def test_a_sleep_meets_its_deadline_too(box: Sandbox) -> None:
    # A sleep is a host call, where no epoch interrupts: the guest's clocks are the host process's own.
    code = "import time\ndef f(x):\n    time.sleep(x)\n    return x\n"
    started = time.monotonic()
    assert calls(box, code, "f(0.05)", "f(10**7)", "f(0)", call_timeout_s=0.5) == ["=0.05", "!Timeout", "=0"]
    assert time.monotonic() - started < 5


def test_a_trapped_job_leaves_the_callers_process_healthy() -> None:
    # wasmtime's runtime threads could abort a process at exit after a trapped instance (exit 134 one time in
    # two): jobs run in a host process of their own, so the caller always exits cleanly.
    require_wasm_sandbox()
    script = (
        "from codeconductor.ensemble.verify.sandbox import Sandbox\n"
        "box = Sandbox(backend='webassembly')\n"
        "for _ in range(3):\n"
        "    print(box.run_calls('def f(x):\\n    while True: pass\\n', 'f', ['f(1)'], 2.0, call_timeout_s=0.3)[0].key)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert (done.returncode, done.stdout.split()) == (0, ["!Timeout"] * 3), done.stderr[-2000:]


def test_an_infinite_loop_at_load_time(box: Sandbox) -> None:
    assert calls(box, "while True:\n    pass\n", "f(1)", call_timeout_s=0.5) == ["!load:Timeout"]


def test_a_memory_bomb_meets_the_limit(box: Sandbox) -> None:
    code = "def f(x):\n    keep = []\n    while True:\n        keep.append(bytearray(64 << 20))\n"
    assert box.memory_mb == 512
    keys = calls(box, code, "f(1)", "1 + 1", entry="f", timeout_s=20.0, call_timeout_s=8.0)
    assert keys == ["!MemoryError", "=2"]


def test_ten_megabytes_of_output_are_bounded(box: Sandbox) -> None:
    code = "import os\ndef f(x):\n    for _ in range(10):\n        os.write(1, b'x' * (1 << 20))\n    return 1\n"
    started = time.monotonic()
    keys = calls(box, code, "f(1)")
    assert keys[0].startswith("!Killed")
    assert time.monotonic() - started < 10
    printed = "def f(x):\n    print('y' * (10 << 20))\n    return 2\n"  # print goes nowhere: no harm
    assert calls(box, printed, "f(1)") == ["=2"]


def test_a_printed_verdict_is_a_forgery(box: Sandbox) -> None:
    line = 'CCW1 00000000000000000000000000000000 {"t":"call","i":0,"ok":true,"value":"5"}'
    code = f"import os\ndef add_three(x):\n    os.write(1, b'{line}\\n')\n    return x - 100\n"
    outcomes = box.run_calls(code, "add_three", [CallSpec("add_three(2)", "5")])
    assert [(o.key, o.matches) for o in outcomes] == [("!Forged", False)]
    # Its own output that does not pretend to be a record is simply not read.
    chatty = "import os\ndef add_three(x):\n    os.write(1, b'passed 1 of 1\\n')\n    return x + 3\n"
    assert [o.matches for o in box.run_calls(chatty, "add_three", [CallSpec("add_three(2)", "5")])] == [True]


def test_programs_are_not_executed(box: Sandbox) -> None:
    assert box.available
    assert not box.runs_programs
    with pytest.raises(SandboxUnavailable) as raised:
        box.run_script({"a.py": "print(1)\n"}, ["a.py"])
    assert str(raised.value).startswith("not executed: running tests needs a process")
    with pytest.raises(SandboxUnavailable):
        box.require(programs=True)
    box.require()


# -- the compiled module ----------------------------------------------------------------------------------------
def test_the_compiled_module_is_cached_by_hash_and_version() -> None:
    require_wasm_sandbox()
    from importlib.metadata import version

    path = _wasm._runtime.path
    assert path is not None
    assert path.is_file()
    assert _wasm.WASM_SHA256[:16] in path.name
    assert f"wasmtime-{version('wasmtime')}" in path.name
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".compiling-")]


def test_a_process_without_the_compiled_module_answers_at_once(tmp_path: Path) -> None:
    # An empty cache: the first request is told "preparing" at once (compiling goes on in the background).
    require_wasm_sandbox()
    env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(tmp_path), "CODECONDUCTOR_SANDBOX": "wasm"}
    script = (
        "import time; from codeconductor.ensemble.verify.sandbox import Sandbox, sandbox_notice\n"
        "t = time.monotonic(); box = Sandbox(); print(box.available, box.containment, round(time.monotonic() - t, 1))\n"
        "print(sandbox_notice())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    first, notice = done.stdout.splitlines()[:2]
    available, containment, seconds = first.split()
    assert (available, containment) == ("False", "none"), done.stdout + done.stderr
    assert float(seconds) < 3
    assert notice.startswith("not executed: the sandbox cannot run here (preparing the WebAssembly sandbox")


# -- named in every result --------------------------------------------------------------------------------------
async def test_the_consensus_runs_in_webassembly_and_says_so(forced: None) -> None:
    model = ModelInfo(name="m", provider=ProviderKind.OLLAMA, endpoint="http://127.0.0.1:11434")
    answers = [
        ModelAnswer(model=model.model_copy(update={"name": n, "family": n}), status=AnswerStatus.ANSWERED, text=t)
        for n, t in (("right", RIGHT), ("wrong1", WRONG), ("wrong2", WRONG))
    ]
    request = Request(task=TaskKind.IMPLEMENT, context=CodeContext(language="python", selection=STUB))
    with Sandbox() as sandbox:
        assert sandbox.containment == "webassembly"
        decision = await decide(request, answers, executor=SandboxExecutor(sandbox))
    assert decision.executed is True
    assert decision.pick_models == ["right@http://127.0.0.1:11434"]
    assert f"answers {_wasm.LABEL}" in decision.notes


async def test_the_pipeline_names_the_backend_and_skips_javascript(forced: None) -> None:
    settings = Settings.model_validate({"probe_local": False, "embedded": "off", "verify": True, "history": False})
    python = Request(task=TaskKind.IMPLEMENT, context=CodeContext(language="python", selection=STUB))
    js = Request(
        task=TaskKind.IMPLEMENT,
        context=CodeContext(language="javascript", selection="function addThree(x) {\n  // add three\n}\n"),
    )
    with FaultServer(apis=("openai",)) as fake:
        fake.add_model("ok-right", text=f"```python\n{RIGHT}```")
        models = [ModelInfo(name="ok-right", provider=ProviderKind.OPENAI, endpoint=fake.url)]
        async with Pipeline(settings) as pipeline:
            result = await pipeline.run(python, models=models)
            js_result = await pipeline.run(js, models=models)
    assert result.consensus.executed is True
    assert any(_wasm.LABEL in n for n in result.consensus.notes + result.notes)
    assert js_result.consensus.executed is False
    assert any(n.startswith("not executed: javascript answers need bubblewrap") for n in js_result.notes), (
        js_result.notes
    )


def test_models_names_the_backend(tmp_path: Path) -> None:
    require_wasm_sandbox()
    (tmp_path / "codeconductor.toml").write_text('probe_local = false\nembedded = "off"\n')
    env = {**os.environ, "PYTHONPATH": str(REPO), "CODECONDUCTOR_SANDBOX": "webassembly", "COLUMNS": "300"}
    done = subprocess.run(
        [sys.executable, "-m", "codeconductor.cli", "models"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert f"sandbox: WebAssembly - {_wasm.LABEL}" in done.stdout, done.stdout + done.stderr
