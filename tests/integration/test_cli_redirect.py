"""The CLI's result survives redirection (``> f``, ``> f 2>&1``, pipes, no TTY), every time, with the embedded models.

llama-cpp-python used to point file descriptors 1 and 2 at /dev/null around each model load, process-wide, from
the loading worker thread; concurrent loads then left them there and ``codeconductor ask --json > out.json`` wrote
an empty file (exit code 0). The fast test below watches every ``os.dup2`` while two models load at once on worker
threads; the slow one runs the real command line, redirected, several times.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from codeconductor.ensemble.providers import EmbeddedProvider
from codeconductor.ensemble.types import ChatMessage, GenerationParams
from codeconductor.ensemble.weights import EmbeddedModelSpec, default_embedded_models

ROOT = Path(__file__).resolve().parents[2]


async def test_loading_models_on_worker_threads_leaves_stdout_and_stderr_alone(
    tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    touched: list[int] = []
    real_dup2 = os.dup2

    def watching_dup2(fd: int, fd2: int, inheritable: bool = True) -> int:
        if fd2 in (1, 2):
            touched.append(fd2)
        return real_dup2(fd, fd2, inheritable)

    monkeypatch.setattr(os, "dup2", watching_dup2)
    specs = [EmbeddedModelSpec(name=f"tiny-{i}", path=tiny_gguf, chat=False, family="llama") for i in range(2)]
    provider = EmbeddedProvider(specs, n_ctx=256)
    stdout_before = os.fstat(1).st_ino
    try:
        models = await provider.list_models()
        params = GenerationParams(max_tokens=2, temperature=0)
        messages = [ChatMessage(role="user", content="hello")]
        answers = await asyncio.gather(*(provider.generate(m, messages, params) for m in models))
    finally:
        await provider.aclose()
    assert all(a.load_s is not None for a in answers)  # both really loaded, concurrently, on worker threads
    assert touched == []  # nothing redirected fd 1 or 2, not even for a moment
    assert os.fstat(1).st_ino == stdout_before
    assert sys.stdout is not None
    assert not getattr(sys.stdout, "name", "").endswith(os.devnull)


def _shell(folder: Path, command: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CC": f"{sys.executable} -m codeconductor.cli"}
    return subprocess.run(
        ["bash", "-c", command], cwd=folder, env=env, stdin=subprocess.DEVNULL, text=True, timeout=240, check=False
    )


def _complete_json(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["consensus"]["asked"] >= 1
    assert any(a["status"] == "answered" for a in document["answers"])
    return dict(document)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ask_json_and_demo_output_survive_redirection_every_time(tmp_path: Path) -> None:
    if not default_embedded_models():
        pytest.skip("embedded weights not installed")
    tmp_path.joinpath("codeconductor.toml").write_text(
        'probe_local = false\nembedded = "on"\nmax_tokens = 8\ntemperature = 0.0\nverify = false\nhistory = false\n'
        "timeout_s = 200\ndeadline_s = 230\n"
    )
    tmp_path.joinpath("area.py").write_text("def area(r):\n    return 3.14 * r * r\n")
    for run in range(2):
        out = tmp_path / f"out{run}.json"
        done = _shell(tmp_path, f"$CC ask --json --file area.py > {out.name} 2> err{run}.txt")
        assert done.returncode == 0, (tmp_path / f"err{run}.txt").read_text()
        _complete_json(out)
    piped = _shell(tmp_path, "$CC ask --json --file area.py 2>/dev/null | cat > piped.json")
    assert piped.returncode == 0
    _complete_json(tmp_path / "piped.json")
    demo = _shell(tmp_path, "$CC demo --timeout 200 > demo.log 2>&1")
    log = (tmp_path / "demo.log").read_text(encoding="utf-8")
    assert demo.returncode == 0, log
    assert "consensus" in log
    assert ", run " in log.splitlines()[-1]  # the result's last line made it into the file
