"""The history store on a real SQLite file: recording, learned weights, feedback, skipping, export and reset."""

from __future__ import annotations

import csv
import itertools
import json
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codeconductor.ensemble.errors import HistoryError
from codeconductor.ensemble.history import FeedbackAction, History, NullHistory, open_history
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
GOOD = ModelInfo(name="good:7b", provider=ProviderKind.OLLAMA, endpoint=EP)
BAD = ModelInfo(name="bad:7b", provider=ProviderKind.OLLAMA, endpoint=EP)
SLOW = ModelInfo(name="slow:70b", provider=ProviderKind.OLLAMA, endpoint=EP)
OTHER = ModelInfo(name="other:3b", provider=ProviderKind.OLLAMA, endpoint=EP)
SECRET = "def secret_function_of_the_user(): return 42"


def make_result(
    answers: list[tuple[ModelInfo, AnswerStatus, str]],
    *,
    task: TaskKind = TaskKind.IMPLEMENT,
    passes: bool | None = None,
    latency: float = 1.0,
    when: datetime | None = None,
    run_id: str | None = None,
) -> Result:
    """A run whose pick is the most common answer text; the pick's cluster passes examples when ``passes``."""
    model_answers = [
        ModelAnswer(
            model=m,
            status=s,
            text=text,
            latency_s=latency if s is AnswerStatus.ANSWERED else 30.0,
            reason=None if s is AnswerStatus.ANSWERED else str(s),
            tokens_out=10,
        )
        for m, s, text in answers
    ]
    texts: dict[str, list[str]] = {}
    for a in model_answers:
        if a.status is AnswerStatus.ANSWERED:
            texts.setdefault(a.text, []).append(a.model_id)
    ranked = sorted(texts.items(), key=lambda kv: -len(kv[1]))
    clusters = [
        Cluster(members=members, representative=text, support=len(members), passes_examples=passes if i == 0 else None)
        for i, (text, members) in enumerate(ranked)
    ]
    consensus = ConsensusResult(
        kind="code" if ranked else "none",
        pick=ranked[0][0] if ranked else "",
        pick_models=ranked[0][1] if ranked else [],
        agree=len(ranked[0][1]) if ranked else 0,
        answered=sum(len(m) for _, m in ranked),
        asked=len(model_answers),
        clusters=clusters,
    )
    return Result(
        id=run_id or uuid.uuid4().hex,
        request=Request(task=task, context=CodeContext(selection=SECRET)),
        answers=model_answers,
        consensus=consensus,
        started_at=when or datetime.now(UTC),
    )


@pytest.fixture
def db(tmp_path: Path) -> Iterator[History]:
    history = History(tmp_path / "h.sqlite3")
    yield history
    history.close()


def test_fresh_database_is_wal_and_current_schema(tmp_path: Path) -> None:
    with History(tmp_path / "sub" / "h.sqlite3") as h:
        assert h.run_count() == 0
    conn = sqlite3.connect(tmp_path / "sub" / "h.sqlite3")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2


def test_record_stores_per_model_outcomes_without_code(db: History) -> None:
    result = make_result(
        [
            (GOOD, AnswerStatus.ANSWERED, "a"),
            (OTHER, AnswerStatus.ANSWERED, "a"),
            (BAD, AnswerStatus.ANSWERED, "b"),
            (SLOW, AnswerStatus.TIMEOUT, ""),
        ],
        passes=True,
    )
    db.record(result)
    rows = {r["model_name"]: r for r in db.answer_rows()}
    assert rows["good:7b"]["joined"] == 1
    assert rows["good:7b"]["examples_passed"] == 1
    assert rows["bad:7b"]["joined"] == 0
    assert rows["bad:7b"]["examples_passed"] is None
    assert rows["slow:70b"]["status"] == "timeout"
    assert rows["slow:70b"]["joined"] is None
    raw = db.path.read_bytes() + Path(str(db.path) + "-wal").read_bytes()
    assert b"secret_function_of_the_user" not in raw
    stats = {s.name: s for s in db.model_stats()}
    assert stats["slow:70b"].success_rate == 0.0
    assert stats["good:7b"].agreement_rate == 1.0
    assert stats["bad:7b"].agreement_rate == 0.0


def test_store_code_keeps_code(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite3", settings=Settings(store_code=True)) as h:
        h.record(make_result([(GOOD, AnswerStatus.ANSWERED, "x = 1"), (BAD, AnswerStatus.ANSWERED, "x = 1")]))
        conn = sqlite3.connect(h.path)
        request_json, pick = conn.execute("SELECT request_json, pick FROM runs").fetchone()
        assert SECRET in request_json
        assert pick == "x = 1"


def test_recording_the_same_run_twice_replaces_it(db: History) -> None:
    result = make_result([(GOOD, AnswerStatus.ANSWERED, "a"), (BAD, AnswerStatus.ANSWERED, "b")], run_id="r1")
    db.record(result)
    db.record(result)
    assert db.run_count() == 1
    assert len(db.answer_rows()) == 2


def test_always_right_model_gains_weight_and_timeouts_lose_it(db: History) -> None:
    before = db.weights(TaskKind.IMPLEMENT, [GOOD, BAD, SLOW])
    assert before == {GOOD.id: 0.5, BAD.id: 0.5, SLOW.id: 0.5}
    trajectory = []
    for _ in range(20):
        db.record(
            make_result(
                [
                    (GOOD, AnswerStatus.ANSWERED, "right"),
                    (OTHER, AnswerStatus.ANSWERED, "right"),
                    (BAD, AnswerStatus.ANSWERED, "wrong"),
                    (SLOW, AnswerStatus.TIMEOUT, ""),
                ],
                passes=True,
            )
        )
        trajectory.append(db.weights(TaskKind.IMPLEMENT, [GOOD])[GOOD.id])
    after = db.weights(TaskKind.IMPLEMENT, [GOOD, BAD, SLOW])
    assert after[GOOD.id] > 0.9
    assert after[BAD.id] < 0.3
    assert after[SLOW.id] < 0.3
    assert all(b >= a for a, b in itertools.pairwise(trajectory))
    assert all(0 < w <= 1 for w in after.values())


def test_few_runs_stay_near_the_prior(db: History) -> None:
    db.record(make_result([(GOOD, AnswerStatus.ANSWERED, "a"), (OTHER, AnswerStatus.ANSWERED, "a")], passes=True))
    db.record(make_result([(BAD, AnswerStatus.TIMEOUT, ""), (OTHER, AnswerStatus.ANSWERED, "a")]))
    w = db.weights(TaskKind.IMPLEMENT, [GOOD, BAD])
    assert 0.5 < w[GOOD.id] < 0.75
    assert 0.35 < w[BAD.id] < 0.5


def test_prior_comes_from_settings_globs_most_specific_first(tmp_path: Path) -> None:
    settings = Settings(model_weights={"*:7b": 0.3, "good:*": 0.9, "good:7b": 0.8})
    with History(tmp_path / "h.sqlite3", settings=settings) as h:
        w = h.weights(TaskKind.FIX, [GOOD, BAD, OTHER])
    assert w == {GOOD.id: 0.8, BAD.id: 0.3, OTHER.id: 0.5}


def test_prior_glob_is_case_insensitive_and_an_exact_name_beats_a_longer_glob(tmp_path: Path) -> None:
    settings = Settings(model_weights={"GOOD:7b*": 0.9, "Good:7B": 0.2})
    with History(tmp_path / "h.sqlite3", settings=settings) as h:
        w = h.weights(TaskKind.FIX, [GOOD, BAD])
    assert w == {GOOD.id: 0.2, BAD.id: 0.5}


def test_null_history_knows_nothing_and_skips_nobody() -> None:
    null = NullHistory()
    assert null.weights(TaskKind.FIX, [GOOD, BAD]) == {}
    assert null.skip_reason(BAD, deadline_s=0.001) is None
    assert null.reason is None


def test_reliability_is_shared_by_name_across_endpoints(db: History) -> None:
    elsewhere = ModelInfo(name=GOOD.name, provider=ProviderKind.OPENAI, endpoint="http://127.0.0.1:8080")
    for _ in range(5):
        db.record(make_result([(GOOD, AnswerStatus.ANSWERED, "a"), (OTHER, AnswerStatus.ANSWERED, "a")], passes=True))
    w = db.weights(TaskKind.IMPLEMENT, [GOOD, elsewhere])
    assert w[GOOD.id] == w[elsewhere.id] > 0.6
    assert set(w) == {GOOD.id, elsewhere.id}


def test_weights_are_per_task_with_partial_pooling(db: History) -> None:
    for _ in range(15):
        db.record(
            make_result(
                [(GOOD, AnswerStatus.ANSWERED, "a"), (OTHER, AnswerStatus.ANSWERED, "a")],
                task=TaskKind.FIX,
                passes=True,
            )
        )
    fix = db.weights(TaskKind.FIX, [GOOD])[GOOD.id]
    review = db.weights(TaskKind.REVIEW, [GOOD])[GOOD.id]
    assert fix > review > 0.5  # learned on fix, only partly carried over to review


def test_feedback_moves_weight_and_targets_joined_models(db: History) -> None:
    ids = []
    for _ in range(4):
        r = make_result([(GOOD, AnswerStatus.ANSWERED, "a"), (BAD, AnswerStatus.ANSWERED, "a")])
        db.record(r)
        ids.append(r.id)
    base = db.weights(TaskKind.IMPLEMENT, [GOOD, BAD])
    assert base[GOOD.id] == base[BAD.id]
    for rid in ids:
        db.record_feedback(rid, [GOOD.id], "applied")
        db.record_feedback(rid, [f"{BAD.id}#0"], FeedbackAction.REJECTED)
    w = db.weights(TaskKind.IMPLEMENT, [GOOD, BAD])
    assert w[GOOD.id] > base[GOOD.id]
    assert w[BAD.id] < base[BAD.id]
    # A later action replaces an earlier one for the same model.
    for rid in ids:
        db.record_feedback(rid, [BAD.id], "accepted")
    assert db.weights(TaskKind.IMPLEMENT, [BAD])[BAD.id] == pytest.approx(w[GOOD.id])
    # Empty model list: the models that joined the pick.
    db.record_feedback(ids[0], [], "tests_passed")
    stats = {s.name: s for s in db.model_stats()}
    assert stats["good:7b"].tests_pass_rate == 1.0
    assert stats["bad:7b"].tests_pass_rate == 1.0
    assert stats["good:7b"].applied_rate == 1.0


def test_unknown_feedback_action_is_refused(db: History) -> None:
    with pytest.raises(HistoryError):
        db.record_feedback("r", [GOOD.id], "loved it")
    with pytest.raises(HistoryError):
        NullHistory().record_feedback("r", [GOOD.id], "loved it")


def test_should_skip_a_failing_model_then_retry_later(db: History) -> None:
    now = datetime.now(UTC)
    for i in range(3):
        db.record(
            make_result(
                [(BAD, AnswerStatus.TIMEOUT, ""), (GOOD, AnswerStatus.ANSWERED, "a")],
                when=now - timedelta(seconds=30 - i),
            )
        )
    assert db.should_skip(BAD, deadline_s=60)
    assert not db.should_skip(GOOD, deadline_s=60)
    reason = db.skip_reason(BAD, 60, now=now.timestamp() + 3600)
    assert reason is None  # it gets another chance after retry_after_s


def test_should_skip_a_model_slower_than_the_deadline(db: History) -> None:
    for lat in (40.0, 45.0, 1.0, 50.0, 42.0):  # one fast outlier: the median ignores it
        db.record(make_result([(SLOW, AnswerStatus.ANSWERED, "a"), (GOOD, AnswerStatus.ANSWERED, "a")], latency=lat))
    assert db.expected_latency(SLOW) == 42.0
    assert db.should_skip(SLOW, deadline_s=20)
    assert not db.should_skip(SLOW, deadline_s=90)
    assert db.expected_latency(BAD) is None
    assert not db.should_skip(BAD, deadline_s=0.1)


def test_stats_percentiles_and_rates(db: History) -> None:
    for lat in range(1, 101):
        db.record(
            make_result([(GOOD, AnswerStatus.ANSWERED, "a"), (OTHER, AnswerStatus.ANSWERED, "a")], latency=float(lat))
        )
    db.record(make_result([(GOOD, AnswerStatus.FAILED, ""), (OTHER, AnswerStatus.ANSWERED, "a")]))
    stats = {s.name: s for s in db.model_stats()}
    good = stats["good:7b"]
    assert good.attempts == 101
    assert good.errors == 1
    assert good.latency_p50_s == pytest.approx(50.5)
    assert good.latency_p95_s == pytest.approx(95.05)
    assert good.success_rate == pytest.approx(100 / 101)
    assert {s.name for s in db.model_stats(task=TaskKind.FIX)} == set()


def test_export_json_and_csv_then_reset(db: History, tmp_path: Path) -> None:
    r = make_result([(GOOD, AnswerStatus.ANSWERED, "a"), (BAD, AnswerStatus.TIMEOUT, "")])
    db.record(r)
    db.record_feedback(r.id, [GOOD.id], "applied")
    assert db.export(tmp_path / "h.json") == 1
    doc = json.loads((tmp_path / "h.json").read_text())
    assert doc["schema_version"] == 2
    run = doc["runs"][0]
    assert run["id"] == r.id
    assert {a["model_name"] for a in run["answers"]} == {"good:7b", "bad:7b"}
    assert run["feedback"][0]["action"] == "applied"
    assert db.export(tmp_path / "h.csv") == 2
    rows = list(csv.DictReader((tmp_path / "h.csv").open()))
    assert {row["status"] for row in rows} == {"answered", "timeout"}
    assert next(row for row in rows if row["model_name"] == "good:7b")["user_action"] == "applied"
    with pytest.raises(HistoryError):
        db.export(tmp_path / "h.xml")
    db.reset()
    assert db.run_count() == 0
    assert db.answer_rows() == []
    assert db.weights(TaskKind.IMPLEMENT, [GOOD])[GOOD.id] == 0.5


def test_record_never_raises_when_the_database_is_gone(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    h = History(tmp_path / "h.sqlite3")
    h.close()
    h.record(make_result([(GOOD, AnswerStatus.ANSWERED, "a")]))
    assert "could not record" in caplog.text


def test_open_history_follows_settings(tmp_path: Path) -> None:
    off = open_history(Settings(history=False, history_path=str(tmp_path / "x.sqlite3")))
    assert isinstance(off, NullHistory)
    assert not (tmp_path / "x.sqlite3").exists()
    on = open_history(Settings(history_path=str(tmp_path / "x.sqlite3")))
    assert isinstance(on, History)
    on.close()
    (tmp_path / "garbage.sqlite3").write_bytes(b"this is not a database" * 100)
    broken = open_history(Settings(history_path=str(tmp_path / "garbage.sqlite3")))
    assert isinstance(broken, NullHistory)


def _recount(path: Path) -> dict[tuple[str, str, str], float]:
    """The evidence counted from scratch from the base tables (what the triggers must keep in step with)."""
    conn = sqlite3.connect(path)
    counts: dict[tuple[str, str, str], float] = {}

    def add(key: tuple[str, str, str]) -> None:
        counts[key] = counts.get(key, 0) + 1

    rows = conn.execute(
        "SELECT a.model_name, r.task, a.status, a.joined, a.examples_passed FROM answers a JOIN runs r ON r.id = a.run_id"
    )
    for name, task, status, joined, examples in rows:
        if status == "answered" and joined is not None:
            add((name, task, "joined" if joined else "outvoted"))
        if examples is not None:
            add((name, task, "examples_passed" if examples else "examples_failed"))
        if status in ("timeout", "failed"):
            add((name, task, "timeout" if status == "timeout" else "error"))
    for name, task, action in conn.execute(
        "SELECT f.model_name, r.task, f.action FROM feedback f JOIN runs r ON r.id = f.run_id"
    ):
        add((name, task, action))
    stored = {(n, t, k): v for n, t, k, v in conn.execute("SELECT * FROM evidence") if v}
    conn.close()
    assert stored == counts
    return counts


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["record", "rerecord", "feedback"]),
            st.lists(
                st.sampled_from([AnswerStatus.ANSWERED, AnswerStatus.TIMEOUT, AnswerStatus.FAILED]),
                min_size=3,
                max_size=3,
            ),
            st.sampled_from(["a", "b"]),
            st.sampled_from(list(FeedbackAction)),
            st.sampled_from([None, True, False]),
        ),
        max_size=12,
    )
)
def test_evidence_table_stays_in_step_with_the_history(
    tmp_path_factory: pytest.TempPathFactory,
    ops: list[tuple[str, list[AnswerStatus], str, FeedbackAction, bool | None]],
) -> None:
    path = tmp_path_factory.mktemp("ev") / "h.sqlite3"
    ids: list[str] = []
    with History(path) as h:
        for op, statuses, text, action, passes in ops:
            answers = [
                (m, s, text if m is not GOOD else "a") for m, s in zip((GOOD, BAD, OTHER), statuses, strict=True)
            ]
            if op == "feedback" and ids:
                h.record_feedback(ids[-1], [GOOD.id] if text == "a" else [], action)
            elif op == "rerecord" and ids:
                h.record(make_result(answers, passes=passes, run_id=ids[-1], task=TaskKind.FIX))
            else:
                result = make_result(answers, passes=passes)
                h.record(result)
                ids.append(result.id)
        _recount(path)
        h.reset()
    assert _recount(path) == {}


def test_history_satisfies_the_pipelines_protocol(db: History) -> None:
    from codeconductor.ensemble import pipeline
    from codeconductor.ensemble.history import HistoryLike

    assert pipeline.HistoryLike is HistoryLike  # one protocol, re-exported
    assert isinstance(db, HistoryLike)
    assert isinstance(NullHistory(), HistoryLike)
    assert not isinstance(object(), HistoryLike)


def test_a_model_the_history_does_not_know_starts_from_its_published_prior(db: History) -> None:
    from codeconductor.ensemble.reliability import weights_for

    # Ollama reports the size apart from the name ("llama3:latest", details.parameter_size "8.0B").
    llama3 = ModelInfo(name="llama3:latest", provider=ProviderKind.OLLAMA, endpoint=EP, parameter_size="8.0B")
    unknown = ModelInfo(name="my-finetune:latest", provider=ProviderKind.OLLAMA, endpoint=EP)
    learned = db.weights(TaskKind.FIX, [llama3, unknown])
    assert learned == weights_for([llama3, unknown], {})  # the history and the pipeline agree before any run
    assert learned[llama3.id] == pytest.approx(0.622)  # Llama 3 8B Instruct, published HumanEval pass@1
    assert learned[unknown.id] == pytest.approx(0.622)  # nothing known: the median of the run's benchmarked models
    assert db.weights(TaskKind.FIX, [unknown])[unknown.id] == pytest.approx(0.5)  # alone: neutral
