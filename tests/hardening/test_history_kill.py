"""The history database survives ``kill -9`` of the language server: killed while a run waits on a hung model,
and killed in the middle of a burst of runs finishing (so possibly mid-write). Afterwards SQLite's
``integrity_check`` is ``ok`` and every run whose answer reached the editor before the kill is in the database.

The server is a real ``python -m codeconductor.server`` subprocess; the models are the fault-injection FAKE server.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

from tests.support.fault_server import FaultServer
from tests.support.faulty_ensemble import GOOD, ensemble_settings
from tests.support.rawlsp import RawServer

TEXT = "def add(a, b):\n    return a - b\n"


def _settings(url: str, models: list[str], db: Path, **extra: Any) -> dict[str, Any]:
    return ensemble_settings(url, models, history=True, historyPath=str(db), storeCode=True, **extra)


def _run_params(uri: str) -> dict[str, Any]:
    rng = {"start": {"line": 0, "character": 0}, "end": {"line": 2, "character": 0}}
    return {"command": "codeconductor.run", "arguments": [{"uri": uri, "range": rng, "task": "fix", "apply": False}]}


def _check(db: Path) -> set[str]:
    """integrity_check must be ok; the ids of the runs stored."""
    with sqlite3.connect(db) as conn:  # opening replays the WAL, as the next server start would
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        return {row[0] for row in conn.execute("SELECT id FROM runs")}


def test_kill_during_a_hung_run_keeps_earlier_runs(tmp_path: Path, hard_models: FaultServer) -> None:
    db = tmp_path / "history.sqlite3"
    with RawServer(stderr_path=tmp_path / "stderr.log") as server:
        server.initialize(_settings(hard_models.url, list(GOOD), db))
        done: set[str] = set()
        for i in range(3):
            uri = f"file:///tmp/codeconductor-hardening/kill-{i}.py"
            server.open(uri, TEXT)
            reply = server.request("workspace/executeCommand", _run_params(uri), timeout=60)
            assert reply["result"]["status"] == "proposed", reply
            done.add(reply["result"]["result"]["id"])
        server.notify(
            "workspace/didChangeConfiguration",
            {
                "settings": {
                    "codeconductor": _settings(hard_models.url, ["hang", "ok-hard-a"], db, timeoutS=120, deadlineS=300)
                }
            },
        )
        server.wait_message(lambda m: "didChangeConfiguration" in json.dumps(m.get("params")))
        hard_models.clear_log()
        uri = "file:///tmp/codeconductor-hardening/kill-hung.py"
        server.open(uri, TEXT)
        pending = server.start_request("workspace/executeCommand", _run_params(uri))
        deadline = time.monotonic() + 30
        while not any(r.body and r.body.get("model") == "hang" for r in hard_models.requests):
            assert time.monotonic() < deadline, "the hung model was never asked"
            time.sleep(0.05)
        server.kill9()
        assert server.response_if_any(pending) is None
    assert done <= _check(db)


def test_kill_amid_a_burst_of_runs(tmp_path: Path, hard_models: FaultServer) -> None:
    db = tmp_path / "history.sqlite3"
    rng = random.Random(7)
    with RawServer(stderr_path=tmp_path / "stderr.log") as server:
        server.initialize(_settings(hard_models.url, list(GOOD), db))
        ids = []
        for i in range(12):
            uri = f"file:///tmp/codeconductor-hardening/burst-{i}.py"
            server.open(uri, TEXT)
            ids.append(server.start_request("workspace/executeCommand", _run_params(uri)))
        # Kill once a few runs have been answered and others are still finishing (recording included).
        first = server.wait_response(ids[0], timeout=60)
        time.sleep(rng.uniform(0.0, 0.3))
        server.kill9()
        answered = [first] + [r for r in (server.response_if_any(i) for i in ids[1:]) if r is not None]
    stored = _check(db)
    answered_ids = {r["result"]["result"]["id"] for r in answered if "result" in r}
    assert answered_ids
    assert answered_ids <= stored
