""" "Make tests pass with ensemble": the models propose a function, the user's pytest tests decide, and the
failures go back to the models until a candidate passes or the rounds (or the time) run out.

Round 0 runs the chosen tests on the current code (when they already pass, no model is asked). Each round asks
every model through the pipeline for a fixed function, with the tests' source and the latest failures in the
prompt; each distinct candidate is applied to a scratch copy of the project and the tests run on it in the
sandbox (:mod:`codeconductor.ensemble.verify.pytest_runner`). The first round with passing candidates ends the loop, and the
consensus module chooses among the passing ones only, so the user gets "k/n candidates pass the tests". When none
passes, the user gets an honest "no candidate passed" with the best attempt (most tests passed) and its
failures; never a fake pass. The user's files are never written here: the caller applies ``new_text``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, Field

from . import consensus
from .context import build_context
from .errors import RequestError
from .types import AnswerStatus, ConsensusResult, ModelAnswer, ProgressEvent, Request, Result, TaskKind
from .verify.pytest_runner import (
    ProjectSnapshot,
    PytestReport,
    PytestRunner,
    locate_function,
    replace_span,
    trim_message,
)

__all__ = [
    "CandidateReport",
    "FixOutcome",
    "FixProgress",
    "FixTarget",
    "Generate",
    "RoundReport",
    "fix_with_tests",
    "source_of_tests",
]

logger = logging.getLogger(__name__)


class Generate(Protocol):
    """What asks the ensemble for a request: :meth:`Pipeline.run <codeconductor.ensemble.pipeline.Pipeline.run>` itself (or
    anything called the same way), reporting each model's progress to ``on_progress``."""

    async def __call__(
        self, request: Request, *, on_progress: Callable[[ProgressEvent], None] | None = None
    ) -> Result: ...


OnFixProgress = Callable[["FixProgress"], None]

_TEST_SOURCE_BUDGET = 2500  # characters of test code in the prompt: small models have small context windows
_FAILURE_BUDGET = 1500


class FixTarget(BaseModel):
    """What to fix: ``function`` (``name`` or ``Class.method``) in ``path`` (relative to ``root``), judged by
    ``tests`` (pytest node ids or paths, relative to ``root``)."""

    root: str
    path: str
    function: str
    tests: list[str] = Field(min_length=1)
    text: str | None = None  # the file's text to use instead of the disk's (an editor's unsaved buffer)


class CandidateReport(BaseModel):
    """One distinct candidate and what the tests said about it."""

    round: int
    models: list[str]  # model ids that proposed this code (after normalisation)
    code: str
    passed: int = 0
    total: int = 0
    ok: bool = False
    summary: str = ""
    failures: str = ""  # trimmed assertion messages and tracebacks


class RoundReport(BaseModel):
    round: int
    asked: int = 0
    answered: int = 0
    candidates: list[CandidateReport] = Field(default_factory=list)
    passing: int = 0
    wall_s: float = 0.0


class FixProgress(BaseModel):
    """One step of the loop, for progress displays (CLI lines, LSP ``$/progress``)."""

    round: int
    rounds: int
    phase: Literal["baseline", "asking", "model", "testing", "tested", "done"]
    model_id: str | None = None
    detail: str | None = None
    passed: int | None = None
    total: int | None = None

    @property
    def message(self) -> str:
        where = "current code" if self.round == 0 else f"round {self.round}/{self.rounds}"
        text = f"{where}: {self.phase}"
        if self.model_id:
            text += f" {self.model_id.split('@', 1)[0]}"
        if self.passed is not None and self.total is not None:
            text += f" {self.passed}/{self.total} tests passed"
        if self.detail:
            text += f" ({self.detail})"
        return text


class FixOutcome(BaseModel):
    """The loop's answer. ``status`` "passed": ``new_text`` is the file with the passing pick applied."""

    status: Literal["passed", "already_passing", "failed"]
    message: str
    path: str
    function: str
    start_line: int  # the function's lines [start_line, end_line) in the current file, 0-based
    end_line: int
    pick: str = ""
    pick_models: list[str] = Field(default_factory=list)
    new_text: str = ""
    passing: int = 0  # candidates passing in the deciding round
    tested: int = 0  # distinct candidates tested in that round
    baseline: CandidateReport
    best: CandidateReport | None = None  # when nothing passed: the attempt passing the most tests
    rounds: list[RoundReport] = Field(default_factory=list)
    consensus: ConsensusResult | None = None
    result: Result | None = None  # the deciding round's pipeline result, its consensus over passing candidates
    notes: list[str] = Field(default_factory=list)
    wall_s: float = 0.0


def _function_source(text: str, name: str) -> str | None:
    try:
        start, end = locate_function(text, name)
    except RequestError:
        return None
    return "\n".join(text.splitlines()[start:end])


def source_of_tests(files: dict[str, str], tests: Sequence[str], budget: int = _TEST_SOURCE_BUDGET) -> str:
    """The source of the chosen tests (each test function when named, else the file's start), within budget."""
    parts: list[str] = []
    for test in tests:
        path, _, rest = test.partition("::")
        text = files.get(Path(path).as_posix())
        if text is None:
            continue
        name = rest.split("[", 1)[0].replace("::", ".")  # parametrised ids: the function itself
        source = _function_source(text, name) if name else None
        parts.append(f"# {test}\n{source if source is not None else text}")
    return trim_message("\n\n".join(parts), budget) if parts else ""


def _instruction(target: FixTarget, tests_code: str, failures: str, attempt: str | None) -> str:
    lines = [f"Change the function so that these pytest tests pass: {', '.join(target.tests)}."]
    if tests_code:
        lines.append(f"The tests:\n```python\n{tests_code}\n```")
    if attempt:
        lines.append(f"A previous attempt that still fails:\n```python\n{trim_message(attempt, 1200)}\n```")
    if failures:
        lines.append(f"The tests currently fail like this:\n{trim_message(failures, _FAILURE_BUDGET)}")
    lines.append("Keep the function's name and signature; answer with the complete fixed function.")
    return "\n\n".join(lines)


def _report(round_no: int, models: list[str], code: str, report: PytestReport) -> CandidateReport:
    return CandidateReport(
        round=round_no,
        models=models,
        code=code,
        passed=report.passed,
        total=report.total,
        ok=report.ok,
        summary=report.summary(),
        failures="" if report.ok else report.failure_text(),
    )


def _better(a: CandidateReport, b: CandidateReport | None) -> bool:
    """Whether ``a`` is a better failed attempt than ``b``: more tests passed, then fewer failing."""
    if b is None:
        return True
    return (a.passed, -(a.total - a.passed)) > (b.passed, -(b.total - b.passed))


async def fix_with_tests(
    generate: Generate,
    target: FixTarget,
    *,
    rounds: int = 3,
    time_limit_s: float = 600.0,
    runner: PytestRunner | None = None,
    on_progress: OnFixProgress | None = None,
    weights: dict[str, float] | None = None,
) -> FixOutcome:
    """Run the fix-until-green loop. ``generate`` asks the ensemble (``pipeline.run``). Raises
    :class:`RequestError` when the file or the function cannot be found, and
    :class:`~codeconductor.ensemble.errors.SandboxUnavailable` (nothing asked, nothing run) where no sandbox can run."""
    started = time.perf_counter()
    runner = runner or PytestRunner()
    # The user's tests (and the candidates) never run outside the sandbox: refuse up front, saying why and the fix.
    await asyncio.to_thread(lambda: runner.sandbox.require(programs=True))
    root = Path(target.root)
    rel = Path(target.path).as_posix()
    # Reading the tree can take a while on a big project: off the event loop (the language server's too).
    snapshot = await asyncio.to_thread(ProjectSnapshot.capture, root, must_include=[rel])
    if target.text is not None:
        snapshot.files[rel] = target.text
    original = snapshot.files.get(rel)
    if original is None:
        raise RequestError(f"cannot read {rel} under {root} (missing, binary or not UTF-8)")
    start, end = locate_function(original, target.function)
    notes: list[str] = []
    if snapshot.skipped:
        notes.append(f"{len(snapshot.skipped)} file(s) not copied for the tests (large, binary or over the cap)")

    def progress(**fields: object) -> None:
        if on_progress is not None:
            try:
                on_progress(FixProgress(rounds=rounds, **fields))
            except Exception:  # a broken display must not stop the loop
                logger.exception("fix progress callback failed")

    async def run_tests(files: dict[str, str]) -> PytestReport:
        report = await runner.arun(files, target.tests, root=root)
        for note in report.notes:
            if note not in notes:
                notes.append(note)
        return report

    def finish(outcome: FixOutcome) -> FixOutcome:
        outcome.wall_s = time.perf_counter() - started
        progress(round=len(outcome.rounds), phase="done", detail=outcome.message)
        return outcome

    current_code = "\n".join(original.splitlines()[start:end])
    progress(round=0, phase="baseline")
    base_report = await run_tests(snapshot.files)
    baseline = _report(0, [], current_code, base_report)
    progress(round=0, phase="tested", passed=baseline.passed, total=baseline.total)
    common = {"path": rel, "function": target.function, "start_line": start, "end_line": end, "baseline": baseline}
    if base_report.ok:
        message = f"the tests already pass on the current code ({baseline.summary}); nothing to fix"
        return finish(FixOutcome(status="already_passing", message=message, notes=notes, **common))

    tests_code = source_of_tests(snapshot.files, target.tests)
    context = build_context(original, start, end, path=rel)
    tested: dict[str, PytestReport] = {}  # normalised code -> report: identical candidates run once
    best: CandidateReport | None = None
    failures, attempt = baseline.failures, None
    reports: list[RoundReport] = []
    for round_no in range(1, rounds + 1):
        if time.perf_counter() - started > time_limit_s:
            notes.append(f"stopped after {round_no - 1} round(s): time limit of {time_limit_s:g} s reached")
            break
        round_started = time.perf_counter()
        request = Request(
            task=TaskKind.FIX, context=context, instruction=_instruction(target, tests_code, failures, attempt)
        )
        progress(round=round_no, phase="asking")

        def on_model(event: ProgressEvent, round_no: int = round_no) -> None:
            progress(round=round_no, phase="model", model_id=event.model_id, detail=event.status)

        result = await generate(request, on_progress=on_model)
        answers = [a for a in result.answers if a.status is AnswerStatus.ANSWERED and a.text.strip()]
        round_report = RoundReport(
            round=round_no, asked=len(result.answers), answered=len({a.model_id for a in answers})
        )
        reports.append(round_report)
        # Group answers by normalised code: the tests run once per distinct candidate.
        groups: dict[str, tuple[str, bool, list[ModelAnswer]]] = {}
        for answer in answers:
            for cand in consensus.candidates_for(request, [answer], weights):
                entry = groups.setdefault(cand.norm, (cand.code, cand.parseable, []))
                entry[2].append(answer)
        passing: list[ModelAnswer] = []
        for norm, (code, parseable, group_answers) in groups.items():
            models = sorted({a.model_id for a in group_answers})
            if time.perf_counter() - started > time_limit_s:
                notes.append("some candidates were not tested: time limit reached")
                break
            if not parseable:
                report = PytestReport((), 1, False, True, 0.0, errors=("the candidate is not valid Python",))
            elif norm in tested:
                report = tested[norm]
            else:
                progress(round=round_no, phase="testing", model_id=models[0])
                report = await run_tests(snapshot.with_file(rel, replace_span(original, start, end, code)))
                tested[norm] = report
            cand_report = _report(round_no, models, code, report)
            round_report.candidates.append(cand_report)
            progress(round=round_no, phase="tested", model_id=models[0], passed=report.passed, total=report.total)
            if report.ok:
                passing.extend(group_answers)
            elif _better(cand_report, best):
                best = cand_report
        round_report.passing = sum(c.ok for c in round_report.candidates)
        round_report.wall_s = time.perf_counter() - round_started
        if passing:
            return finish(
                await _passed(
                    request=request,
                    result=result,
                    passing=passing,
                    round_report=round_report,
                    reports=reports,
                    original=original,
                    span=(start, end),
                    notes=notes,
                    common=common,
                )
            )
        if best is not None:
            failures, attempt = best.failures, best.code
        elif not groups:
            failures = baseline.failures  # nobody answered usable code: ask again with the same feedback

    tried = sum(len(r.candidates) for r in reports)
    if best is not None:
        message = (
            f"no candidate passed the tests ({tried} tried in {len(reports)} round(s)); "
            f"best attempt: {best.summary} from {', '.join(m.split('@', 1)[0] for m in best.models)}"
        )
    else:
        message = f"no candidate passed the tests: no usable code from the models in {len(reports)} round(s)"
    return finish(FixOutcome(status="failed", message=message, best=best, rounds=reports, notes=notes, **common))


async def _passed(
    *,
    request: Request,
    result: Result,
    passing: list[ModelAnswer],
    round_report: RoundReport,
    reports: list[RoundReport],
    original: str,
    span: tuple[int, int],
    notes: list[str],
    common: dict[str, object],
) -> FixOutcome:
    """The consensus among the passing candidates only, reported as passing the user's tests."""
    # No executor: the user's tests already judged these candidates; the consensus groups them by their code.
    decision = await consensus.decide(request, passing)
    k, n = round_report.passing, len(round_report.candidates)
    line = f"{k}/{n} candidates pass the tests"
    for cluster in decision.clusters:
        cluster.passes_examples = True  # every cluster here passed the user's tests
    decision.asked = len({(a.model_id, a.sample) for a in result.answers})
    decision.answered = round_report.answered
    # The user's own tests checked every candidate here: the pick is not the "not checked" guess decide() sees.
    decision.unchecked = None
    decision.notes = [line, *(n for n in decision.notes if not n.startswith("not checked: "))]
    decision.method = f"tests+{decision.method}"
    final = result.model_copy(update={"consensus": decision})
    return FixOutcome(
        status="passed",
        message=f"{line} (round {round_report.round})",
        pick=decision.pick,
        pick_models=decision.pick_models,
        new_text=replace_span(original, *span, decision.pick),
        passing=k,
        tested=n,
        rounds=reports,
        consensus=decision,
        result=final,
        notes=notes,
        **common,
    )
