"""The sandbox contains hostile candidates and reports them as failed; the next job runs in a fresh sandbox."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeconductor.ensemble.verify.sandbox import CallSpec, Sandbox
from tests.support.sandbox import require_sandbox


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with Sandbox(memory_mb=256) as sandbox:
        yield sandbox


def test_values_errors_and_expected(box: Sandbox) -> None:
    code = "def f(x):\n    return 10 // x\n"
    out = box.run_calls(code, "f", [CallSpec("f(2)", "5"), CallSpec("f(3)", "4"), "f(0)"])
    assert [o.ok for o in out] == [True, True, False]
    assert out[0].value == "5"
    assert out[0].matches is True
    assert out[1].matches is False
    assert out[2].error == "ZeroDivisionError"


def test_float_tolerance_in_expected(box: Sandbox) -> None:
    out = box.run_calls("def f():\n    return 0.1 + 0.2\n", "f", [CallSpec("f()", "0.3")])
    assert out[0].matches is True


def test_infinite_loop_times_out_and_worker_survives(box: Sandbox) -> None:
    out = box.run_calls("def f():\n    while True:\n        pass\n", "f", ["f()", "f()"], 2.0, call_timeout_s=0.3)
    assert [o.error for o in out] == ["Timeout", "Timeout"]
    assert box.run_calls("def g():\n    return 1\n", "g", ["g()"])[0].value == "1"


def test_huge_allocation_fails(box: Sandbox) -> None:
    out = box.run_calls("def f():\n    return len(bytearray(8 * 1024**3))\n", "f", ["f()"])
    assert not out[0].ok


def test_fork_is_refused(box: Sandbox) -> None:
    code = "import os\ndef f():\n    pid = os.fork()\n    return pid\n"
    out = box.run_calls(code, "f", ["f()"])
    assert not out[0].ok


def test_writing_outside_the_scratch_dir_is_refused(box: Sandbox, tmp_path: Path) -> None:
    target = tmp_path / f"escape-{uuid.uuid4().hex}"
    code = f"def f():\n    open({str(target)!r}, 'w').write('x')\n    return 1\n"
    out = box.run_calls(code, "f", ["f()"])
    assert not out[0].ok
    assert not target.exists()
    # Inside its own scratch directory a candidate may write.
    inside = box.run_calls(
        "def g():\n    open('t.txt', 'w').write('ok')\n    return open('t.txt').read()\n", "g", ["g()"]
    )
    assert inside[0].value == "'ok'"


def test_socket_to_loopback_is_refused(box: Sandbox) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        code = f"import socket\ndef f():\n    s = socket.socket()\n    s.connect(('127.0.0.1', {port}))\n    return 1\n"
        out = box.run_calls(code, "f", ["f()"])
        assert not out[0].ok
        server.settimeout(0.2)
        with pytest.raises(TimeoutError):
            server.accept()


def test_script_mode_exit_status_and_output(box: Sandbox) -> None:
    out = box.run_script({"main.py": "import sys\nprint('hello')\nsys.exit(3)\n"}, ["main.py"])
    assert out.exit_code == 3
    assert out.stdout.strip() == "hello"
    assert not out.ok
    ok = box.run_script({"t.py": "print(sum(range(10)))\n"}, ["t.py"])
    assert ok.ok
    assert ok.stdout.strip() == "45"


def test_script_timeout_kills_everything(box: Sandbox) -> None:
    out = box.run_script({"spin.py": "while True:\n    pass\n"}, ["spin.py"], 1.0)
    assert out.timed_out
    assert not out.ok


def test_output_is_capped() -> None:
    with Sandbox(output_limit=1000) as small:
        out = small.run_script({"big.py": "print('x' * 100000)\n"}, ["big.py"])
    assert len(out.stdout) < 1100
    assert "truncated" in out.stdout


def test_load_errors_are_reported_per_call(box: Sandbox) -> None:
    out = box.run_calls("def f(:\n", "f", ["f()", "f()"])
    assert all(o.error == "load:SyntaxError" for o in out)


def test_no_sandbox_processes_left_after_close() -> None:
    require_sandbox()
    sandbox = Sandbox()
    sandbox.start()
    pids = [w.proc.pid for w in sandbox._spares]  # the sandboxes started ahead
    assert pids
    sandbox.close()
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


async def test_async_use() -> None:
    async with Sandbox() as sandbox:
        out = await sandbox.arun_calls("def f(x):\n    return [x] * 2\n", "f", ["f(1)"])
    assert out[0].value == "[1, 1]"
