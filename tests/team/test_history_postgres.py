"""The shared history on a real PostgreSQL server (a throw-away cluster on a Unix socket, see tests/support/postgres).

The SQLite history's own behavioural tests (tests/unit/test_history.py) are run again here on PostgreSQL: they are
imported below and pytest collects them in this module, where ``db`` is a :class:`PostgresHistory` on a fresh
database. Then what only a server shared by a team has to survive: ten writer processes at once, a writer killed
with SIGKILL mid-burst, and two processes that see each other's evidence.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from codeconductor.ensemble.errors import HistoryError
from codeconductor.ensemble.history import History, NullHistory, open_history
from codeconductor.ensemble.history._postgres import PostgresHistory, redact_url
from codeconductor.ensemble.settings import Settings
from codeconductor.ensemble.types import AnswerStatus
from tests.support.postgres import PostgresServer
from tests.unit.test_history import (  # noqa: F401 - collected here, on PostgreSQL
    BAD,
    GOOD,
    OTHER,
    SECRET,
    make_result,
    test_always_right_model_gains_weight_and_timeouts_lose_it,
    test_export_json_and_csv_then_reset,
    test_feedback_moves_weight_and_targets_joined_models,
    test_few_runs_stay_near_the_prior,
    test_history_satisfies_the_pipelines_protocol,
    test_recording_the_same_run_twice_replaces_it,
    test_reliability_is_shared_by_name_across_endpoints,
    test_should_skip_a_failing_model_then_retry_later,
    test_should_skip_a_model_slower_than_the_deadline,
    test_stats_percentiles_and_rates,
    test_unknown_feedback_action_is_refused,
    test_weights_are_per_task_with_partial_pooling,
)

pytestmark = [pytest.mark.team, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def db(pg_url: str) -> Iterator[History]:
    history = PostgresHistory(pg_url)
    yield history
    history.close()


def _tables(rows: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for table, column in rows:
        out.setdefault(table, []).append(column)
    return out


def test_same_tables_and_columns_as_the_sqlite_history(db: History, tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite3"):
        pass
    lite = sqlite3.connect(tmp_path / "h.sqlite3")
    sqlite_cols = {
        t: [c[1] for c in lite.execute(f"PRAGMA table_info({t})")]
        for (t,) in lite.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    pg_rows = db.backend.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
        "AND table_name <> 'codeconductor_schema' ORDER BY table_name, ordinal_position"
    )
    assert _tables(pg_rows) == sqlite_cols


def test_code_is_not_stored_unless_store_code(pg_url: str, postgres_server: PostgresServer) -> None:
    result = make_result([(GOOD, AnswerStatus.ANSWERED, "a"), (BAD, AnswerStatus.ANSWERED, "b")])
    with PostgresHistory(pg_url) as h:
        h.record(result)
    dump = _dump(pg_url)
    assert SECRET not in dump
    assert "good:7b" in dump  # the dump does see the rows
    url = postgres_server.create_database()
    with PostgresHistory(url, settings=Settings(store_code=True)) as h:
        h.record(result)
    assert SECRET in _dump(url)


def _dump(url: str) -> str:
    with psycopg.connect(url) as conn:
        return "\n".join(
            repr(conn.execute(f"SELECT * FROM {table}").fetchall()) for table in ("runs", "answers", "feedback")
        )


def test_evidence_stays_in_step_with_answers(db: History) -> None:
    for i in range(5):
        db.record(make_result([(GOOD, AnswerStatus.ANSWERED, "a"), (BAD, AnswerStatus.TIMEOUT, "")], run_id=f"r{i}"))
    db.record(make_result([(GOOD, AnswerStatus.ANSWERED, "a"), (OTHER, AnswerStatus.FAILED, "")], run_id="r0"))
    counts: dict[str, float] = dict(
        db.backend.execute("SELECT model_name || '/' || kind, n FROM evidence WHERE n <> 0")
    )
    # r0 was recorded twice: its first answers' evidence moved out, the second's in.
    assert counts == {"bad:7b/timeout": 4.0, "other:3b/error": 1.0}


def test_newer_schema_is_left_alone(pg_url: str) -> None:
    with PostgresHistory(pg_url):
        pass
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE codeconductor_schema SET version = 99")
    with pytest.raises(HistoryError, match="v99"):
        PostgresHistory(pg_url)


def test_settings_open_the_shared_history_and_never_show_the_password(pg_url: str) -> None:
    opened = open_history(Settings(history_url=pg_url))
    assert isinstance(opened, PostgresHistory)
    opened.close()
    # A server that is not there: history off, no crash; the password is not in the message.
    bad = "postgresql://cc:hunter2@127.0.0.1:1/nothing"
    assert redact_url(bad) == "postgresql://cc:***@127.0.0.1:1/nothing"
    with pytest.raises(HistoryError) as info:
        PostgresHistory(bad, connect_timeout_s=1)
    assert "hunter2" not in str(info.value)
    assert isinstance(open_history(Settings(history_url=bad)), NullHistory)
    # Another machine's server only with allow_remote (the history would be sent there).
    assert isinstance(open_history(Settings(history_url="postgresql://db.example.com/h")), NullHistory)


# Writes runs tagged with its name; prints each run id once record() returned (i.e. committed).
WRITER = textwrap.dedent(
    """
    import logging, random, sys, uuid
    from codeconductor.ensemble.history._postgres import PostgresHistory
    from codeconductor.ensemble.types import (AnswerStatus, Cluster, CodeContext, ConsensusResult, ModelAnswer, ModelInfo,
                                ProviderKind, Request, Result, TaskKind)

    url, tag, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    failures = []
    class Count(logging.Handler):
        def emit(self, record):
            if record.levelno >= logging.WARNING:
                failures.append(record.getMessage())
    logging.getLogger("codeconductor.ensemble.history").addHandler(Count())
    models = [ModelInfo(name=f"m{i}", provider=ProviderKind.OLLAMA, endpoint="http://127.0.0.1:11434")
              for i in range(4)]
    h = PostgresHistory(url)
    i = 0
    while count < 0 or i < count:
        rid = f"{tag}-{i}-{uuid.uuid4().hex[:6]}"
        random.shuffle(models)  # other orders than the other writers: evidence rows locked in another order
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


def _spawn(url: str, tag: str, count: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, url, tag, str(count)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )


def test_ten_writers_and_a_killed_one_lose_nothing(pg_url: str) -> None:
    # The database is new: the first writers race to create the schema.
    victim = _spawn(pg_url, "victim", -1)  # writes until killed
    writers = [_spawn(pg_url, f"w{i}", 30) for i in range(9)]
    assert victim.stdout is not None
    committed = []
    for line in victim.stdout:
        committed.append(line.strip())
        if len(committed) >= 20:
            break
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    rest, _ = victim.communicate(timeout=30)
    committed += [line for line in rest.split() if line.startswith("victim-")]
    outputs = [w.communicate(timeout=150) for w in writers]
    for w, (out, err) in zip(writers, outputs, strict=True):
        assert w.returncode == 0, out[-500:] + err[-2000:]
    written = {line for out, _ in outputs for line in out.split()}
    assert len(written) == 270
    with PostgresHistory(pg_url) as h:
        stored = {row[0] for row in h.backend.execute("SELECT id FROM runs")}
        assert written <= stored
        assert set(committed) <= stored
        assert stored - written - set(committed) <= {i for i in stored if i.startswith("victim-")}
        # Nothing half-written: every stored run has its four answers, and the evidence counts match them.
        ((orphans,),) = h.backend.execute(
            "SELECT COUNT(*) FROM runs r WHERE (SELECT COUNT(*) FROM answers a WHERE a.run_id = r.id) <> 4"
        )
        assert orphans == 0
        joined: dict[str, float] = dict(h.backend.execute("SELECT model_name, n FROM evidence WHERE kind = 'joined'"))
        assert joined == {f"m{i}": float(len(stored)) for i in range(4)}


# One CodeConductor process: records runs of the models named in argv[2] in which argv[3] is outvoted, then
# prints the learned weights of all three models as it reads them from the shared history.
PEER = textwrap.dedent(
    """
    import json, sys, uuid
    from codeconductor.ensemble.history import open_history
    from codeconductor.ensemble.settings import Settings
    from codeconductor.ensemble.types import (AnswerStatus, Cluster, CodeContext, ConsensusResult, ModelAnswer, ModelInfo,
                                ProviderKind, Request, Result, TaskKind)
    url, names, loser, runs = sys.argv[1], sys.argv[2].split(","), sys.argv[3], int(sys.argv[4])
    history = open_history(Settings(history_url=url))
    ep = "http://127.0.0.1:11434"
    every = {n: ModelInfo(name=n, provider=ProviderKind.OLLAMA, endpoint=ep) for n in ("alpha", "beta", "gamma")}
    models = [every[n] for n in names]
    for _ in range(runs):
        answers = [ModelAnswer(model=m, status=AnswerStatus.ANSWERED, text="y" if m.name == loser else "x")
                   for m in models]
        ids = [m.id for m in models if m.name != loser]
        history.record(Result(
            id=uuid.uuid4().hex, request=Request(task=TaskKind.FIX, context=CodeContext()), answers=answers,
            consensus=ConsensusResult(
                kind="code", pick="x", pick_models=ids, agree=len(ids), answered=len(models), asked=len(models),
                clusters=[Cluster(members=ids, representative="x", support=2.0),
                          Cluster(members=[every[loser].id], representative="y", support=1.0)])))
    weights = history.weights(TaskKind.FIX, list(every.values()))
    print(json.dumps({type(history).__name__: {m.name: weights[m.id] for m in every.values()}}))
    """
)


def _peer(url: str, names: str, loser: str, runs: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", PEER, url, names, loser, str(runs)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ).stdout
    ((kind, weights),) = json.loads(out).items()
    assert kind == "PostgresHistory"
    return dict(weights)


def test_two_processes_sharing_the_history_see_each_others_evidence(pg_url: str) -> None:
    # Developer A's runs: gamma is always outvoted.
    a = _peer(pg_url, "alpha,beta,gamma", "gamma", 6)
    assert a["gamma"] < 0.5 < a["alpha"]
    # Developer B, another process, never ran gamma, yet reads A's evidence of it; B's runs outvote beta.
    b = _peer(pg_url, "alpha,beta", "beta", 6)
    assert b["gamma"] == pytest.approx(a["gamma"])
    # A, reading again, sees B's evidence: beta lost weight, alpha (agreeing in both) gained.
    again = _peer(pg_url, "alpha,beta,gamma", "gamma", 0)
    assert again["beta"] < a["beta"]
    assert again["alpha"] > a["alpha"]
    assert again["gamma"] == pytest.approx(a["gamma"])
