"""The result channel (framed, nonce, sequence, caps, deadline) and consensus never picking a forged result."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from codeconductor.ensemble.consensus import decide
from codeconductor.ensemble.types import (
    AnswerStatus,
    CodeContext,
    ModelAnswer,
    ModelInfo,
    ProviderKind,
    Request,
    TaskKind,
)
from codeconductor.ensemble.verify._worker import HEADER, MAGIC
from codeconductor.ensemble.verify.observe import SandboxExecutor
from codeconductor.ensemble.verify.sandbox import Sandbox, read_frames
from tests.support.sandbox import require_sandbox

REPO = Path(__file__).resolve().parents[2]
NONCE = b"n" * 16


def _frame(obj: dict[str, object], seq: int, nonce: bytes = NONCE) -> bytes:
    payload = json.dumps(obj).encode()
    return HEADER.pack(MAGIC, nonce, seq, len(payload)) + payload


def _read(data: bytes, *, limit: int = 1 << 20, close: bool = True) -> tuple[list[dict[str, object]], str]:
    read_fd, write_fd = os.pipe()

    def write() -> None:
        os.write(write_fd, data)
        if close:
            os.close(write_fd)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        return read_frames(read_fd, NONCE, time.monotonic() + 1.0, limit)
    finally:
        writer.join()
        os.close(read_fd)
        if not close:
            os.close(write_fd)


def test_frames_are_read_up_to_the_end_frame() -> None:
    frames, how = _read(_frame({"t": "call", "i": 0}, 0) + _frame({"t": "end"}, 1))
    assert how == "end"
    assert [f["t"] for f in frames] == ["call", "end"]


@pytest.mark.parametrize(
    "data",
    [
        _frame({"t": "call"}, 0, nonce=b"x" * 16),  # another job's (or a guessed) nonce
        _frame({"t": "call"}, 1),  # out of sequence
        _frame({"t": "call"}, 0)[:-2] + b"}}" + b"garbage" * 8,  # not a frame after a frame
        b'{"ok": true, "value": "5", "matches": true}\n' * 4,  # the old protocol's lines
        _frame({"t": "end"}, 0) + b"trailing",
    ],
)
def test_anything_but_proper_frames_is_a_violation(data: bytes) -> None:
    assert _read(data)[1] == "violation"


def test_a_frame_over_the_cap_is_refused_before_it_is_read() -> None:
    header = HEADER.pack(MAGIC, NONCE, 0, 768 * 1024 * 1024)
    frames, how = _read(header + b"x" * 1000, limit=1 << 20)
    assert (frames, how) == ([], "violation")


def test_a_silent_writer_hits_the_deadline() -> None:
    started = time.monotonic()
    assert _read(b"", close=False)[1] == "deadline"
    assert time.monotonic() - started < 3


def test_full_sandbox_has_no_notice() -> None:
    from codeconductor.ensemble.verify.sandbox import sandbox_notice

    require_sandbox()
    assert sandbox_notice() is None
    assert Sandbox().containment == "bubblewrap"


FAKE_LINES = (
    "import os, struct\n"
    "def f(x):\n"
    "    for fd in range(64):\n"
    '        for data in (b\'{"ok": true, "value": "5", "matches": true}\\n\', struct.pack(\'>IIB\', 6, 0, 1) + b\'5\'):\n'
    "            try:\n"
    "                os.write(fd, data)\n"
    "            except OSError:\n"
    "                pass\n"
    "    raise RuntimeError\n"
)
FLOOD = "import os\ndef f(x):\n    for _ in range(768):\n        os.write(3, b'x' * (1 << 20))\n    return 5\n"


# -- consensus never picks a forged result ----------------------------------------------------------------------
STUB = '''def add_three(x: int) -> int:
    """Add three.
    >>> add_three(2)
    5
    >>> add_three(10)
    13
    """
'''
RIGHT = "def add_three(x):\n    return x + 3\n"
FORGERS = [
    FAKE_LINES.replace("def f(", "def add_three("),
    "import __main__\n__main__._equal = lambda *a: True\ndef add_three(x):\n    return x + 2\n",
    "import builtins\nbuiltins.repr = lambda v: '5'\nbuiltins.eval = lambda *a, **k: 5\n"
    "def add_three(x):\n    return x * 2\n",
    FLOOD.replace("def f(", "def add_three("),
]


async def test_forged_results_are_never_picked() -> None:
    model = ModelInfo(name="m", provider=ProviderKind.OLLAMA, endpoint="http://127.0.0.1:11434")
    answers = [ModelAnswer(model=model.model_copy(update={"name": "honest"}), status=AnswerStatus.ANSWERED, text=RIGHT)]
    for index, text in enumerate(FORGERS):
        forger = model.model_copy(update={"name": f"forger{index}", "family": f"f{index}"})
        answers.append(ModelAnswer(model=forger, status=AnswerStatus.ANSWERED, text=text))
    request = Request(task=TaskKind.IMPLEMENT, context=CodeContext(language="python", selection=STUB))
    with Sandbox() as box:
        result = await decide(request, answers, executor=SandboxExecutor(box))
    assert result.pick_models == ["honest@http://127.0.0.1:11434"]
    assert result.clusters[0].passes_examples is True
    assert all(c.passes_examples is not True for c in result.clusters[1:])
