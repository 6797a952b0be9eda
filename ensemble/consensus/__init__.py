"""Consensus: from the models' raw answers to one pick, a calibrated confidence, and the disagreement.

For code: extract each answer's code, normalise it, observe what it does on the probe (the docstring's examples
and generated inputs) through the executor passed in, observe the user's own code on the same probe, and hold
every candidate to the trust gate (``gate.py``: the original is the oracle). Candidates are grouped by behaviour
(or by normalised code), the best-supported eligible group is picked with each model weighted by its
reliability, and a confidence that sees failures is attached (``confidence.py``). When no answer passes the
gate the decision says so: no edit, your code is unchanged. Review findings and free-text answers are handled by
``findings.py`` and ``text.py``. Nothing here runs code: observing is the executor's job.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..languages import Language, code_language
from ..reliability import DEFAULT_WEIGHT, clamp_weight
from ..types import AnswerStatus, Cluster, ConsensusResult, ModelAnswer, Request, TaskKind
from .behaviour import Behaviour, Executor, Probe
from .confidence import Features, confidence, discount_missing, unchecked_cap, unchecked_confidence
from .diff import unified_diff
from .extract import Extracted, extract_code
from .findings import decide_findings
from .gate import (
    NO_CHANGE,
    UNCHECKED_IN_PROJECT,
    behaviour_gate,
    fewer_fixed,
    fix_shown,
    oracle_usable,
    project_gate,
    project_oracle_usable,
    unsafe_reason,
)
from .select import Candidate, Group, Selection, family_of, select
from .text import decide_text

__all__ = [
    "Executor",
    "Subject",
    "agreement_key",
    "agreement_key_for",
    "candidates_for",
    "decide",
    "decide_explained",
    "features_for",
    "probe_for",
    "subject_for",
]

_log = logging.getLogger(__name__)
# Docstring edits are checked on the syntax tree (the code must not change), never by running anything.
_EXECUTABLE_TASKS = (TaskKind.IMPLEMENT, TaskKind.FIX, TaskKind.IMPROVE)
# Tasks whose selection is the user's working code, to be kept (improve, docstring) or repaired (fix).
_ORACLE_TASKS = (TaskKind.FIX, TaskKind.IMPROVE, TaskKind.DOCSTRING)
UNCHECKED = "could not be checked against your code (it did not run on its own here)"
ORACLE_INPUTS = 40  # generated inputs when the original is the oracle (8 for stubs, where nothing says what is right)


@dataclass(frozen=True)
class Subject:
    """What a request is about, worked out once: the language whose rules read it (``language_id`` as the editor
    named it), the user's ``selection`` as selected, the same as a ``program`` of its own (a method dedented to
    column 0 in Python, so ``Class.method`` is found, compared and documented like a function), the ``code``
    answers are read against and compared with (the program, with the file's imports in front when it runs on its
    own), the function asked about (``entry_point``), and the comment above the selection (``comment_above``:
    the documentation of languages that document a function there)."""

    language: Language
    language_id: str
    selection: str
    program: str
    code: str
    entry_point: str | None
    comment_above: str = ""

    @property
    def runs_alone(self) -> bool:
        """Whether the selection can run on its own (a method or nested function only runs in its project)."""
        return self.program == self.selection


def subject_for(request: Request) -> Subject:
    """The :class:`Subject` of ``request``."""
    ctx = request.context
    language = code_language(ctx.language, ctx.path)
    program = language.standalone(ctx.selection)
    # A method never gets the file's imports: its answers must not bring them into the class body, where they
    # would shadow its members.
    code = f"{ctx.imports}\n{program}" if program == ctx.selection and ctx.imports.strip() else program
    return Subject(
        language=language,
        language_id=ctx.language,
        selection=ctx.selection,
        program=program,
        code=code,
        entry_point=language.entry_point(code),
        comment_above=language.comment_above(ctx.before),
    )


def _extract(subject: Subject, text: str) -> Extracted:
    return extract_code(text, context=subject.code, entry_point=subject.entry_point, language=subject.language)


def agreement_key_for(request: Request) -> Callable[[str], str]:
    """:func:`agreement_key` for the answers to one request (its subject worked out once, not per answer)."""
    if not request.task.produces_code:
        return lambda text: " ".join(text.lower().split())
    # Worked out on the first answer (where a failure is that answer's, as it was), then reused.
    subject = functools.cache(lambda: subject_for(request))

    def key(text: str) -> str:
        extracted = _extract(subject(), text)
        return extracted.norm or subject().language.normalize(extracted.code)

    return key


def agreement_key(request: Request, text: str) -> str:
    """A key equal for answers that are the same code up to formatting, comments and local names (or, for
    non-code tasks, the same text up to whitespace and case): what a quorum counts."""
    return agreement_key_for(request)(text)


def probe_for(request: Request) -> Probe | None:
    """The inputs candidates will be run on, or None when this request's candidates are not executed."""
    return _probe(subject_for(request), request.task)


def _probe(subject: Subject, task: TaskKind) -> Probe | None:
    if task not in _EXECUTABLE_TASKS:
        return None
    if not subject.runs_alone:
        return None  # a method or nested function cannot run on its own: only in its project (ProjectRunner)
    language = subject.language
    entry = subject.entry_point if language.can_execute else None
    if entry is None:
        return None
    # The comment directly above the selection (JS/TS, Go, Rust, Java, C/C++) gives the function's examples
    # whether or not the selection took it in; only read for examples: what runs and is compared is the code.
    documented = f"{subject.comment_above}\n{subject.code}" if subject.comment_above else subject.code
    examples = language.examples(documented, entry)
    # The user's code gives every generated input its expected value: cast a wider net.
    oracle = task in _ORACLE_TASKS
    extra = language.generate_calls(subject.code, entry, examples, limit=ORACLE_INPUTS if oracle else 8, wide=oracle)
    probe = Probe(entry, tuple(examples), tuple(extra), language=language.name)
    return None if probe.empty else probe


def candidates_for(
    request: Request, answers: Sequence[ModelAnswer], weights: Mapping[str, float] | None
) -> list[Candidate]:
    """One candidate per answered sample, with its extracted code, normalised form, family and weight."""
    return _candidates(subject_for(request), answers, weights)


def _candidates(
    subject: Subject, answers: Sequence[ModelAnswer], weights: Mapping[str, float] | None
) -> list[Candidate]:
    answered = [a for a in answers if a.status is AnswerStatus.ANSWERED and a.text.strip()]
    multi = {a.model_id for a in answered if a.sample} | {
        a.model_id for a in answered if sum(b.model_id == a.model_id for b in answered) > 1
    }
    out = []
    for answer in answered:
        extracted = _extract(subject, answer.text)
        if extracted.empty:
            continue
        out.append(
            Candidate(
                label=f"{answer.model_id}#{answer.sample}" if answer.model_id in multi else answer.model_id,
                model_id=answer.model_id,
                family=family_of(answer.model.name, answer.model.family),
                weight=clamp_weight((weights or {}).get(answer.model_id, DEFAULT_WEIGHT)),
                code=extracted.code,
                parseable=extracted.parseable,
                norm=extracted.norm or subject.language.normalize(extracted.code),
            )
        )
    return out


def _static_reason(subject: Subject, task: TaskKind, cand: Candidate) -> str | None:
    """Why ``cand`` cannot be an edit whatever it does: not code of the file's language, or prose."""
    if not cand.parseable:
        return f"is not valid {subject.language_id or 'python'} code"
    return subject.language.not_code_reason(cand.code, None if task is TaskKind.TESTS else subject.entry_point)


def _docstring_reason(subject: Subject, cand: Candidate) -> str | None:
    """Docstring task: why ``cand`` is out. Only new documentation over the user's unchanged code may be offered;
    the edit then keeps every other character of the user's code."""
    return subject.language.documentation_reason(cand.code, subject.code, subject.entry_point)


async def decide(
    request: Request,
    answers: Sequence[ModelAnswer],
    *,
    weights: Mapping[str, float] | None = None,
    executor: Executor | None = None,
) -> ConsensusResult:
    """Choose among ``answers`` for ``request``. ``weights`` maps model ids to reliability in (0, 1]. Candidates
    and the user's code are observed through ``executor``, owned by the caller (the ``Pipeline``'s sandbox);
    without one nothing runs and candidates are compared by their code."""
    result, _ = await decide_explained(request, answers, weights=weights, executor=executor)
    return result


async def decide_explained(
    request: Request,
    answers: Sequence[ModelAnswer],
    *,
    weights: Mapping[str, float] | None = None,
    executor: Executor | None = None,
) -> tuple[ConsensusResult, Features | None]:
    """:func:`decide`, and the features its confidence was computed from (None when no edit was offered, or
    for non-code tasks): what the calibration benchmark fits on."""
    features: Features | None = None
    if request.task.produces_code:
        result, features = await _decide_code(request, subject_for(request), answers, weights, executor)
    else:
        result = _decide_non_code(request, answers, weights)
    asked_models = {a.model_id for a in answers}
    answered_models = {a.model_id for a in answers if a.status is AnswerStatus.ANSWERED and a.text.strip()}
    if len(answered_models) < len(asked_models) and result.confidence > 0:
        result.confidence = round(discount_missing(result.confidence, len(answered_models), len(asked_models)), 4)
        result.notes.append(
            f"{len(asked_models) - len(answered_models)} of {len(asked_models)} models gave no answer: confidence lowered"
        )
    return result, features


class _Observed:
    """Everything observed for one decision (pure data handed to the ranking and the confidence)."""

    def __init__(self, probe: Probe | None, original: Behaviour | None, original_hostile: str | None = None) -> None:
        self.probe = probe
        self.original = original
        # What the user's own code was seen trying (a function that fetches a URL connects too): a candidate doing
        # the same is not named unsafe for it.
        self.original_hostile = original_hostile

    @property
    def executed(self) -> bool:
        return self.probe is not None

    @property
    def in_project(self) -> bool:
        return self.probe is not None and self.probe.project is not None

    @property
    def n_examples(self) -> int:
        return len(self.probe.examples) if self.probe is not None else 0

    @property
    def n_checks(self) -> int:
        """Examples, and the project's tests that ran on the user's code: what the confidence counts passes of."""
        tests = len(self.original.tests) if self.original is not None and self.in_project else 0
        return self.n_examples + tests


async def _decide_code(
    request: Request,
    subject: Subject,
    answers: Sequence[ModelAnswer],
    weights: Mapping[str, float] | None,
    executor: Executor | None,
) -> tuple[ConsensusResult, Features | None]:
    asked = len({(a.model_id, a.sample) for a in answers})
    answered_models = {a.model_id for a in answers if a.status is AnswerStatus.ANSWERED and a.text.strip()}
    task = request.task
    candidates = _candidates(subject, answers, weights)
    notes: list[str] = []
    if not candidates:
        return ConsensusResult(
            kind="none", asked=asked, answered=len(answered_models), notes=["no usable answer"]
        ), None
    probe = _probe(subject, task) if executor is not None else None
    original: Behaviour | None = None
    problem: str | None = None
    original_hostile: str | None = None
    if executor is not None and request.context.project is not None and task in _EXECUTABLE_TASKS:
        # The user's code where it lives: its module, its interpreter, its tests and the calls they make.
        in_project = await executor.project_probe(request, probe)
        if in_project is not None and in_project.project is not None:
            notes.extend(in_project.project.notes)
            problem = in_project.project.problem
            probe = None if problem is not None else in_project
    if probe is not None and probe.project is not None and executor is not None:
        original, problem = await _observe_in_project(subject, candidates, probe, executor, notes)
        original_hostile = original.hostile if original is not None else None
        if problem is not None:
            probe = None
    elif probe is not None and executor is not None:
        if task in _ORACLE_TASKS:
            original = await executor.observe(subject.code, probe)
            original_hostile = original.hostile
            if not oracle_usable(original):
                notes.append("your code could not be run on its own (it may need the rest of the file): not verified")
                original = None
            else:
                notes.append(f"answers compared with what your code does on {len(probe.extra)} generated inputs")
        for cand in candidates:
            if cand.parseable:
                cand.behaviour = await executor.observe(cand.code, probe)
        notes.extend(executor.notes)
    if problem is not None:
        notes.append(f"your code could not be run: {problem}")
        for cand in candidates:
            cand.behaviour = None
    observed = _Observed(probe, original, original_hostile)
    selection = select(candidates)
    reasons = _gate(subject, task, selection, observed)
    if (
        task is TaskKind.IMPROVE
        and executor is not None
        and (subject.language.can_execute or (request.context.project is not None and subject.language.runs_in_project))
        and original is None
    ):
        # A rewrite that must keep what the code does, and nothing to hold it to: refusing is the honest answer.
        unchecked = f"could not be checked: {problem}" if problem is not None else UNCHECKED
        for group in selection.groups:
            reasons.setdefault(id(group), unchecked)
    result, features = _result(
        subject, task, selection, reasons, observed, asked=asked, answered=len(answered_models), notes=notes
    )
    if problem is not None and result.no_edit is not None:
        # The answers were not at fault: the user's own code could not run here. Say why, and how to fix it.
        result.no_edit = f"your code could not be run here, so no answer could be checked: {problem}; it is unchanged"
    return result, features


async def _observe_in_project(
    subject: Subject, candidates: Sequence[Candidate], probe: Probe, executor: Executor, notes: list[str]
) -> tuple[Behaviour | None, str | None]:
    """Run the user's code and every candidate in the project (candidates side by side); the original's
    behaviour, or why it could not run."""
    assert probe.project is not None
    parseable = [c for c in candidates if c.parseable]
    # The original and every candidate side by side: each is its own sandbox job.
    original, *behaviours = await asyncio.gather(
        executor.observe(subject.selection, probe), *(executor.observe(c.code, probe) for c in parseable)
    )
    if not project_oracle_usable(original):
        error = next((k.removeprefix("!load:") for k in original.keys if k.startswith("!load:")), None)
        return None, (f"it fails to load ({error})" if error else "it did nothing observable on its tests or inputs")
    for cand, behaviour in zip(parseable, behaviours, strict=True):
        cand.behaviour = behaviour
    project = probe.project
    passing = sum(o == "passed" for _, o in original.tests)
    parts = [f"{len(original.tests)} of your tests ({passing} passing on your code)"] if original.tests else []
    if project.recorded:
        parts.append(f"{project.recorded} calls recorded from them")
    if probe.extra:
        parts.append(f"{len(probe.extra)} generated inputs")
    notes.append("answers run in your project and compared with your code on " + (", ".join(parts) or "no input"))
    notes.extend(executor.notes)
    return original, None


def _gate(subject: Subject, task: TaskKind, selection: Selection, observed: _Observed) -> dict[int, str]:
    """Group index -> why that group may not become an edit. Reorders ``selection.groups``: eligible first."""
    original_norm = subject.language.normalize(subject.code)
    reasons: dict[int, str] = {}
    for group in selection.groups:
        rep = group.representative
        reason = _static_reason(subject, task, rep)
        if reason is None and task is TaskKind.DOCSTRING:
            reason = _docstring_reason(subject, rep)
            group.proven_unchanged = reason is None
        elif reason is None and task in (TaskKind.IMPROVE, TaskKind.FIX) and rep.norm == original_norm:
            reason = NO_CHANGE
        elif reason is None and rep.behaviour is not None and observed.in_project and observed.original is not None:
            assert observed.probe is not None
            reason = unsafe_reason(rep.behaviour, observed.original_hostile) or project_gate(
                task, rep.behaviour, observed.original, observed.probe
            )
        elif reason is None and rep.behaviour is not None:
            reason = behaviour_gate(task, rep.behaviour, observed.original, original_hostile=observed.original_hostile)
        if reason is not None:
            reasons[id(group)] = reason
    if task is TaskKind.FIX and observed.in_project and observed.original is not None:
        # A fix that leaves failing a test another answer makes pass would leave a bug the other removes.
        live = [g for g in selection.groups if id(g) not in reasons and g.representative.behaviour is not None]
        behaviours = [g.representative.behaviour for g in live if g.representative.behaviour is not None]
        for group, reason in zip(live, fewer_fixed(behaviours, observed.original), strict=True):
            if reason is not None:
                reasons[id(group)] = reason
        # Among the rest, a fix passing more of the project's tests ranks first, whatever the votes: two answers
        # agreeing on a partial fix must not outrank the one that makes every test pass.
        selection.groups.sort(key=lambda g: (id(g) in reasons, -_pass_count(g.representative.behaviour)))
    else:
        selection.groups.sort(key=lambda g: id(g) in reasons)  # stable: the ranking holds within each side
    return reasons


def _pass_count(behaviour: Behaviour | None) -> int:
    """Examples passed, and in a project the project's tests passed: both say what the code is for."""
    if behaviour is None:
        return 0
    return sum(behaviour.passed) + sum(outcome == "passed" for _, outcome in behaviour.tests)


def features_for(
    selection: Selection,
    candidates: Sequence[Candidate],
    asked: int,
    answered: int,
    *,
    observed: _Observed | None = None,
    eligible: int | None = None,
) -> Features:
    pick = selection.groups[0]
    total_support = sum(g.vote for g in selection.groups) or 1.0
    live = [g for g in selection.groups if not g.degenerate]
    n_examples = observed.n_checks if observed is not None else 0
    rep = pick.representative.behaviour
    crashed = [c.behaviour.crashed if c.behaviour is not None else 1.0 for c in candidates]
    original = observed.original if observed is not None else None
    gain = 0.0
    if original is not None and n_examples:
        gain = (_pass_count(rep) - _pass_count(original)) / n_examples
    return Features(
        share=min(1.0, pick.support / total_support),
        pass_frac=(_pass_count(rep) / n_examples) if n_examples else 0.0,
        has_examples=1.0 if n_examples else 0.0,
        executed=1.0 if observed is not None and observed.executed else 0.0,
        groups=len(live) / max(1, len(candidates)),
        answered_ratio=answered / max(1, asked),
        top_weight=max(m.weight for m in pick.members),
        crash_rate=sum(crashed) / max(1, len(crashed)),
        eligible_ratio=(eligible if eligible is not None else len(candidates)) / max(1, len(candidates)),
        oracle=1.0 if original is not None else 0.0,
        gain=gain,
        **_example_strength(pick, live, n_examples),
        one_model=1.0 if len({c.model_id for c in candidates}) == 1 else 0.0,
    )


def _unchecked_reason(
    language: Language, task: TaskKind, observed: _Observed, *, proven: bool, pick: Behaviour | None = None
) -> str | None:
    """Why the pick was not checked against the user's code, or None when it was (or needs no run: a docstring
    edit is proven not to change the code). Implement has no code of the user's to hold the pick to: running it
    on the docstring's examples and generated inputs is its check. A fix is checked when it was seen to fix
    something (a failing test or example of yours passes), in a project or not: otherwise only "it does something
    else" was seen, which any wrong change also shows."""
    if proven:
        return None
    if not observed.executed:
        return language.runtime_note or "nothing was run (verification is off, or nothing to run it on)"
    if observed.original is None and task in _ORACLE_TASKS:
        return "your code could not be run on its own, so nothing was compared with what it does"
    if (
        task is TaskKind.FIX
        and pick is not None
        and observed.original is not None
        and not fix_shown(pick, observed.original)
    ):
        if observed.in_project:
            return (
                "no test or example of yours fails on your code, so nothing showed that it fixes the bug "
                "(it keeps your passing tests passing)"
            )
        return "no example of yours fails on your code, so nothing showed that it fixes the bug"
    return None


def _example_strength(pick: Group, live: Sequence[Group], n_examples: int) -> dict[str, float]:
    """How much the examples and the probe say about the pick (see :class:`Features`): how many examples, on how
    many probe inputs the other working groups differ from the pick, and how many of them pass every example too."""
    others = [b for b in (g.representative.behaviour for g in live if g is not pick) if b is not None]
    mine = pick.representative.behaviour
    separating = 0.0
    if mine is not None and mine.keys and others:
        differs = sum(any(i >= len(b.keys) or b.keys[i] != key for b in others) for i, key in enumerate(mine.keys))
        separating = differs / len(mine.keys)
    passing = [b for b in others if b.passed and all(b.passed)]  # one verdict per example
    return {
        "examples": min(n_examples, 8) / 8,
        "separating": separating,
        "rivals_pass": len(passing) / len(others) if others else 0.0,
    }


def _no_edit_reason(task: TaskKind, n: int, reasons: Sequence[str]) -> str:
    """The words the user reads when nothing is offered: what was looked for, and the commonest refusal."""
    if reasons and all(r == NO_CHANGE for r in reasons):
        return "the answers propose no change to your code; it is unchanged"
    if reasons and all(r.startswith(UNCHECKED_IN_PROJECT) or r == NO_CHANGE for r in reasons):
        # Not the answers' fault: nothing in the project could tell a right one from a wrong one.
        return f"no answer {next(r for r in reasons if r != NO_CHANGE)}; your code is unchanged"
    counted = Counter(r for r in reasons if r != NO_CHANGE).most_common(1)
    common, count = counted[0] if counted else ("", 0)
    behavioural = common.startswith(("fails ", "does something else", "behaves exactly", "crashes"))
    what = {
        TaskKind.IMPROVE: "keeps what your code does",
        TaskKind.FIX: "keeps your passing examples passing and changes what your code does",
        TaskKind.DOCSTRING: "only documents your code",
    }.get(task, "passes the checks")
    lead = (
        f"none of the {n} answers {what if behavioural else 'passes the checks'}"
        if n > 1
        else "the answer does not pass the checks"
    )
    found = {TaskKind.IMPROVE: "no improvement found: ", TaskKind.FIX: "no fix found: "}.get(task, "")
    detail = f"{count} of {n}: {common}" if n > 1 else common
    return f"{found}{lead} ({detail}); your code is unchanged"


def _result(
    subject: Subject,
    task: TaskKind,
    selection: Selection,
    reasons: dict[int, str],
    observed: _Observed,
    *,
    asked: int,
    answered: int,
    notes: list[str],
) -> tuple[ConsensusResult, Features | None]:
    groups = selection.groups
    eligible = [g for g in groups if id(g) not in reasons]
    pick_group: Group | None = eligible[0] if eligible else None
    # Diffs are against the pick, or against the user's own code when nothing is offered.
    base = pick_group.representative.code if pick_group is not None else subject.code
    base_label = "pick" if pick_group is not None else "your code"
    n_examples = observed.n_examples
    clusters = []
    for group in groups:
        rep = group.representative
        passes = None if rep.behaviour is None or not n_examples else all(rep.behaviour.passed)
        clusters.append(
            Cluster(
                members=[m.label for m in group.members],
                representative=rep.code,
                support=round(group.support, 4),
                passes_examples=passes,
                diff=""
                if group is pick_group
                else unified_diff(base, rep.code, pick_label=base_label, other_label=rep.label),
                rejected=reasons.get(id(group)),
            )
        )
    candidates = [m for g in groups for m in g.members]
    unparseable = sum(not c.parseable for c in candidates)
    if unparseable:
        notes.append(f"{unparseable} answer(s) are not valid code")
    if n_examples:
        notes.append(f"checked against {n_examples} docstring example(s)")
    method = selection.method + ("+original" if observed.original is not None else "")
    if pick_group is None:
        no_edit = _no_edit_reason(task, len(candidates), [reasons[id(g)] for g in groups])
        return ConsensusResult(
            kind="code",
            asked=asked,
            answered=answered,
            clusters=clusters,
            method=method,
            notes=notes,
            no_edit=no_edit,
            executed=observed.executed,
        ), None
    # _gate put the eligible groups first, so the pick is groups[0] (what features and front ends expect).
    n_eligible = sum(len(g.members) for g in eligible)
    feats = features_for(selection, candidates, asked, answered, observed=observed, eligible=n_eligible)
    conf = confidence(feats, task)
    unchecked = _unchecked_reason(
        subject.language, task, observed, proven=pick_group.proven_unchanged, pick=pick_group.representative.behaviour
    )
    if unchecked is not None:
        conf = unchecked_confidence(conf, task)
        notes.append(f"not checked: {unchecked}; confidence at most {unchecked_cap(task)}")
    pick = pick_group.representative.code
    if task is TaskKind.DOCSTRING and subject.entry_point is not None:
        # The user's own text with the chosen documentation put in: nothing else can change.
        documented = subject.language.documented(subject.selection, pick, subject.entry_point)
        if documented is not None:
            pick = documented
    return ConsensusResult(
        kind="code",
        pick=pick,
        pick_models=pick_group.models,
        confidence=round(conf, 4),
        agree=len(pick_group.models),
        answered=answered,
        asked=asked,
        clusters=clusters,
        method=method,
        notes=notes,
        executed=observed.executed,
        unchecked=unchecked,
    ), feats


def _decide_non_code(
    request: Request, answers: Sequence[ModelAnswer], weights: Mapping[str, float] | None
) -> ConsensusResult:
    """Review findings (findings.py) and free-text answers (text.py)."""
    if request.task is TaskKind.REVIEW:
        return decide_findings(request, answers, weights)
    return decide_text(request, answers, weights)
