"""The history database shared by real processes: two writers at once, and a writer killed with SIGKILL mid-burst.

The writers are real Python subprocesses running :class:`codeconductor.ensemble.history.History` on one real SQLite file, as
the language server and a CLI would.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from codeconductor.ensemble.history import History
from codeconductor.ensemble.types import ModelInfo, ProviderKind, TaskKind

ROOT = Path(__file__).resolve().parents[2]

# Writes runs tagged with its name; prints each run id once record() returned (i.e. committed).
WRITER = textwrap.dedent(
    """
    import logging, sys, uuid
    from codeconductor.ensemble.history import History
    from codeconductor.ensemble.types import (AnswerStatus, Cluster, CodeContext, ConsensusResult, ModelAnswer, ModelInfo,
                                ProviderKind, Request, Result, TaskKind)

    path, tag, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    failures = []
    class Count(logging.Handler):
        def emit(self, record):
            failures.append(record.getMessage())
    logging.getLogger("codeconductor.ensemble.history").addHandler(Count())
    models = [ModelInfo(name=f"m{i}", provider=ProviderKind.OLLAMA, endpoint="http://127.0.0.1:11434")
              for i in range(4)]
    h = History(path, busy_timeout_s=30)
    i = 0
    while count < 0 or i < count:
        rid = f"{tag}-{i}-{uuid.uuid4().hex[:6]}"
        answers = [ModelAnswer(model=m, status=AnswerStatus.ANSWERED, text="x", latency_s=0.5) for m in models]
        ids = [m.id for m in models]
        result = Result(
            id=rid, request=Request(task=TaskKind.FIX, context=CodeContext()), answers=answers,
            consensus=ConsensusResult(kind="code", pick="x", pick_models=ids, agree=4, answered=4, asked=4,
                                      clusters=[Cluster(members=ids, representative="x", support=4.0)]))
        h.record(result)
        if failures:
            print("FAIL", failures[0], flush=True)
            sys.exit(1)
        print(rid, flush=True)
        i += 1
    """
)


def _spawn(db: Path, tag: str, count: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), tag, str(count)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )


@pytest.mark.timeout(240)
def test_two_processes_write_at_once_without_losing_runs(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    # No database yet: both processes create (and set WAL on) the same new file at once.
    writers = [_spawn(db, tag, 150) for tag in ("server", "cli")]
    outputs = [w.communicate(timeout=200) for w in writers]
    for w, (out, err) in zip(writers, outputs, strict=True):
        assert w.returncode == 0, out[-500:] + err[-2000:]
    written = {line for out, _ in outputs for line in out.split()}
    assert len(written) == 300
    with History(db) as h:
        ids = {r[0] for r in h.backend.execute("SELECT id FROM runs")}
        assert ids == written
        assert len(h.answer_rows()) == 1200
        m0 = ModelInfo(name="m0", provider=ProviderKind.OLLAMA, endpoint="http://127.0.0.1:11434")
        assert h.weights(TaskKind.FIX, [m0])[m0.id] > 0.9


@pytest.mark.timeout(240)
def test_kill_9_mid_burst_loses_no_committed_run(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    writer = _spawn(db, "victim", -1)  # writes until killed
    assert writer.stdout is not None
    committed = []
    for line in writer.stdout:
        committed.append(line.strip())
        if len(committed) >= 120:
            break
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    # Anything printed before the kill is committed; the pipe may hold a few more lines.
    rest, _ = writer.communicate(timeout=30)
    committed += [line for line in rest.split() if line.startswith("victim-")]

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {r[0] for r in conn.execute("SELECT id FROM runs")}
    assert set(committed) <= stored
    # No half-written run: every stored run has all four answers.
    partial = conn.execute(
        "SELECT COUNT(*) FROM runs r WHERE (SELECT COUNT(*) FROM answers a WHERE a.run_id = r.id) != 4"
    ).fetchone()[0]
    assert partial == 0
    conn.close()
    # The database stays usable for the next writer.
    survivor = _spawn(db, "after", 5)
    _out, err = survivor.communicate(timeout=60)
    assert survivor.returncode == 0, err
    with History(db) as h:
        assert h.run_count() == len(stored) + 5
