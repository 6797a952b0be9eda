"""A history file with garbage in the middle (a real SQLite file, bytes overwritten): ``codeconductor stats`` says
so in one line and offers ``--move-aside``, which keeps the damaged file under another name; the language server
goes on without history, says why, and its runs are answered."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from codeconductor.cli import main
from codeconductor.ensemble.errors import HistoryCorruptError
from codeconductor.ensemble.history import History, NullHistory, open_history
from codeconductor.ensemble.settings import Settings
from codeconductor.ensemble.types import (
    AnswerStatus,
    Cluster,
    CodeContext,
    ConsensusResult,
    ModelAnswer,
    ModelInfo,
    ProviderKind,
    Request,
    Result,
    TaskKind,
)
from tests.support.fault_server import FaultServer
from tests.support.faulty_ensemble import GOOD, ensemble_settings
from tests.support.rawlsp import RawServer

MODEL = ModelInfo(name="fast:1b", provider=ProviderKind.OLLAMA, endpoint="http://127.0.0.1:11434")


def _history(path: Path, runs: int = 400) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with History(path, settings=Settings(store_code=True)) as history:
        for i in range(runs):
            answer = ModelAnswer(model=MODEL, status=AnswerStatus.ANSWERED, text=f"x = {i}\n" * 20, latency_s=1.0)
            history.record(
                Result(
                    id=uuid.uuid4().hex,
                    request=Request(task=TaskKind.FIX, context=CodeContext(selection=f"y = {i}\n" * 20)),
                    answers=[answer],
                    consensus=ConsensusResult(
                        kind="code",
                        pick="x",
                        pick_models=[answer.model_id],
                        agree=1,
                        answered=1,
                        asked=1,
                        clusters=[Cluster(members=[answer.model_id], representative="x", support=1)],
                    ),
                    started_at=start + timedelta(minutes=i),
                )
            )


@pytest.fixture
def damaged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # no user settings of the machine
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "history.sqlite3"
    _history(path)
    data = bytearray(path.read_bytes())
    assert len(data) > 200_000
    middle = len(data) // 2
    data[middle : middle + 16384] = random.Random(7).randbytes(16384)
    path.write_bytes(bytes(data))
    return path


def test_stats_says_it_in_one_line_and_offers_to_move_it(damaged: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--db", str(damaged)]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    lines = [line for line in captured.err.splitlines() if line.strip() and not line.startswith("WARNING")]
    assert len(lines) == 1, captured.err
    assert "damaged" in lines[0]
    assert "codeconductor stats --move-aside" in lines[0]
    assert str(damaged) in lines[0]
    assert captured.out == ""


def test_move_aside_keeps_the_file_and_a_new_history_starts(damaged: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = damaged.read_bytes()
    assert main(["stats", "--db", str(damaged), "--move-aside"]) == 0
    assert not damaged.exists()
    (moved,) = damaged.parent.glob("history.sqlite3.corrupt-*")
    assert moved.read_bytes() == before  # nothing lost: the damaged file is kept for recovery
    assert "Moved" in capsys.readouterr().out
    assert main(["stats", "--db", str(damaged)]) == 0
    assert "No history recorded yet" in capsys.readouterr().out
    with History(damaged) as fresh:  # the next run starts a new file
        assert fresh.run_count() == 0


def test_runs_go_on_without_history(damaged: Path) -> None:
    with pytest.raises(HistoryCorruptError):
        History(damaged)
    history = open_history(Settings(history_path=str(damaged)))
    assert isinstance(history, NullHistory)
    assert history.reason is not None
    assert "--move-aside" in history.reason


def test_the_server_goes_on_without_history_and_says_why(
    damaged: Path, tmp_path: Path, hard_models: FaultServer
) -> None:
    log = tmp_path / "stderr.log"
    with RawServer(stderr_path=log) as server:
        server.initialize(ensemble_settings(hard_models.url, list(GOOD), history=True, historyPath=str(damaged)))
        uri = "file:///tmp/codeconductor-hardening/corrupt.py"
        server.open(uri, "def add(a, b):\n    return a - b\n")
        rng = {"start": {"line": 0, "character": 0}, "end": {"line": 2, "character": 0}}
        reply = server.request(
            "workspace/executeCommand",
            {"command": "codeconductor.run", "arguments": [{"uri": uri, "range": rng, "task": "fix", "apply": False}]},
            timeout=60,
        )
        assert reply["result"]["status"] == "proposed", reply
        notice = server.wait_message(
            lambda m: m.get("method") == "window/showMessage" and "damaged" in m["params"]["message"]
        )
        assert "--move-aside" in notice["params"]["message"]
        assert server.healthy()
    assert "Traceback" not in log.read_text(errors="replace")
