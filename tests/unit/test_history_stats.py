"""``codeconductor stats`` on a real history file: table, JSON, HTML dashboard, export and reset."""

from __future__ import annotations

import argparse
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from codeconductor.cli.stats import add_stats_subcommand, run_stats
from codeconductor.ensemble.history import History
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

EP = "http://127.0.0.1:11434"
# A name with markup in it: the dashboard must escape what model servers report.
ODD = ModelInfo(name="<b>odd</b>:1b", provider=ProviderKind.OLLAMA, endpoint=EP)
FAST = ModelInfo(name="fast:1b", provider=ProviderKind.OLLAMA, endpoint=EP)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="codeconductor")
    sub = parser.add_subparsers()
    add_stats_subcommand(sub)
    args = parser.parse_args(["stats", *argv])
    args.settings = Settings()
    return args


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "h.sqlite3"
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with History(path) as h:
        for i in range(12):
            answers = [
                ModelAnswer(model=FAST, status=AnswerStatus.ANSWERED, text="x", latency_s=1.0 + i / 10),
                ModelAnswer(
                    model=ODD,
                    status=AnswerStatus.ANSWERED if i % 3 else AnswerStatus.TIMEOUT,
                    text="x",
                    latency_s=5.0,
                ),
            ]
            answered = [a.model_id for a in answers if a.status is AnswerStatus.ANSWERED]
            h.record(
                Result(
                    id=uuid.uuid4().hex,
                    request=Request(task=TaskKind.FIX, context=CodeContext()),
                    answers=answers,
                    consensus=ConsensusResult(
                        kind="code",
                        pick="x",
                        pick_models=answered,
                        agree=len(answered),
                        answered=len(answered),
                        asked=2,
                        clusters=[Cluster(members=answered, representative="x", support=2, passes_examples=True)],
                    ),
                    started_at=start + timedelta(hours=i),
                )
            )
    return path


def test_json_output(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_stats(parse("--db", str(db), "--json")) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["runs"] == 12
    models = {m["name"]: m for m in doc["models"]}
    assert models["fast:1b"]["success_rate"] == 1.0
    assert models["<b>odd</b>:1b"]["timeouts"] == 4
    assert models["fast:1b"]["weight"] > models["<b>odd</b>:1b"]["weight"]
    assert doc["models"][0]["name"] == "fast:1b"  # best weight first


def test_table_output(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_stats(parse("--db", str(db))) == 0
    out = capsys.readouterr().out
    assert "fast:1b" in out
    assert "p95" in out


def test_html_dashboard_is_self_contained(db: Path, tmp_path: Path) -> None:
    report = tmp_path / "r.html"
    assert run_stats(parse("--db", str(db), "--html", str(report))) == 0
    page = report.read_text()
    assert page.count("<svg") == 3
    assert "&lt;b&gt;odd&lt;/b&gt;" in page
    assert "<b>odd" not in page
    assert not re.search(r"<script|<link|src=|href=|@import|url\(", page)
    assert "fast:1b" in page


def test_export_and_reset(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_stats(parse("--db", str(db), "--export", str(tmp_path / "e.csv"))) == 0
    assert len((tmp_path / "e.csv").read_text().splitlines()) == 25
    # Not a terminal and no --yes: refuse.
    assert run_stats(parse("--db", str(db), "--reset")) == 2
    with History(db) as h:
        assert h.run_count() == 12
    assert run_stats(parse("--db", str(db), "--reset", "--yes")) == 0
    with History(db) as h:
        assert h.run_count() == 0
    capsys.readouterr()
    assert run_stats(parse("--db", str(db), "--json")) == 0
    assert json.loads(capsys.readouterr().out)["models"] == []


def test_missing_database_is_not_created(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "none.sqlite3"
    assert run_stats(parse("--db", str(path), "--json")) == 0
    assert json.loads(capsys.readouterr().out)["runs"] == 0
    assert not path.exists()


def test_unusable_database_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "bad.sqlite3"
    path.write_bytes(b"not sqlite" * 200)
    assert run_stats(parse("--db", str(path))) == 1
