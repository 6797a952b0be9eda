"""Consensus: from the models' raw answers to one pick, a calibrated confidence, and the disagreement.

For code: extract each answer's code, normalise it, run it in the sandbox on the docstring's examples and on
generated inputs (Python, when allowed), group candidates by behaviour (or by normalised code), select the
best-supported group weighting each model by its reliability, and attach a confidence and a diff per dissenting
group. Review findings and free-text answers are handled by ``findings.py`` and ``text.py``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

from ..types import AnswerStatus, Cluster, ConsensusResult, ModelAnswer, Request, TaskKind
from ..verify.examples import entry_point_of
from ..verify.sandbox import Sandbox, shared_sandbox
from .behaviour import Probe, build_probe, observe
from .confidence import Features, confidence, discount_missing
from .diff import unified_diff
from .extract import Extracted, extract_code
from .findings import decide_findings
from .normalize import normalized_key
from .select import Candidate, Selection, family_of, select
from .text import decide_text

__all__ = ["agreement_key", "candidates_for", "decide", "features_for", "probe_for"]

_log = logging.getLogger(__name__)
DEFAULT_WEIGHT = 0.5  # a model with no history: neither trusted nor distrusted
_EXECUTABLE_TASKS = (TaskKind.IMPLEMENT, TaskKind.FIX, TaskKind.IMPROVE)


def _context_code(request: Request) -> str:
    ctx = request.context
    return f"{ctx.imports}\n{ctx.selection}" if ctx.imports.strip() else ctx.selection


def _is_python(request: Request) -> bool:
    return request.context.language.lower() in ("python", "py", "python3")


def _extract(request: Request, text: str) -> Extracted:
    context = _context_code(request)
    entry = entry_point_of(context) if _is_python(request) else None
    return extract_code(text, context=context, entry_point=entry, language=request.context.language)


def agreement_key(request: Request, text: str) -> str:
    """A key equal for answers that are the same code up to formatting, comments and local names (or, for
    non-code tasks, the same text up to whitespace and case): what a quorum counts."""
    if not request.task.produces_code:
        return " ".join(text.lower().split())
    extracted = _extract(request, text)
    return extracted.norm or normalized_key(extracted.code, request.context.language)


def probe_for(request: Request) -> Probe | None:
    """The inputs candidates will be run on, or None when this request's candidates are not executed."""
    if request.task not in _EXECUTABLE_TASKS or not _is_python(request):
        return None
    context = _context_code(request)
    entry = entry_point_of(context)
    if entry is None:
        return None
    probe = build_probe(context, entry)
    return None if probe.empty else probe


def candidates_for(
    request: Request, answers: Sequence[ModelAnswer], weights: Mapping[str, float] | None
) -> list[Candidate]:
    """One candidate per answered sample, with its extracted code, normalised form, family and weight."""
    answered = [a for a in answers if a.status is AnswerStatus.ANSWERED and a.text.strip()]
    multi = {a.model_id for a in answered if a.sample} | {
        a.model_id for a in answered if sum(b.model_id == a.model_id for b in answered) > 1
    }
    out = []
    for answer in answered:
        extracted = _extract(request, answer.text)
        if extracted.empty:
            continue
        weight = (weights or {}).get(answer.model_id, DEFAULT_WEIGHT)
        out.append(
            Candidate(
                label=f"{answer.model_id}#{answer.sample}" if answer.model_id in multi else answer.model_id,
                model_id=answer.model_id,
                family=family_of(answer.model.name, answer.model.family),
                weight=min(1.0, max(1e-3, weight)),
                code=extracted.code,
                parseable=extracted.parseable,
                norm=extracted.norm or normalized_key(extracted.code, request.context.language),
            )
        )
    return out


def features_for(selection: Selection, candidates: Sequence[Candidate], asked: int, answered: int) -> Features:
    pick = selection.groups[0]
    total_support = sum(g.vote for g in selection.groups) or 1.0
    live = [g for g in selection.groups if not g.degenerate]
    return Features(
        share=min(1.0, pick.support / total_support),
        pass_frac=pick.pass_frac or 0.0,
        has_examples=1.0 if selection.informative_examples else 0.0,
        log_examples=math.log1p(selection.informative_examples),
        executed=1.0 if selection.method.startswith("behaviour") else 0.0,
        groups=len(live) / max(1, len(candidates)),
        answered_ratio=answered / max(1, asked),
        top_weight=max(m.weight for m in pick.members),
    )


async def decide(
    request: Request,
    answers: Sequence[ModelAnswer],
    *,
    weights: Mapping[str, float] | None = None,
    verify: bool = True,
    sandbox: Sandbox | None = None,
) -> ConsensusResult:
    """Choose among ``answers`` for ``request``. ``weights`` maps model ids to reliability in (0, 1];
    ``verify`` allows sandboxed execution of candidates on the docstring's examples and generated inputs
    (``sandbox``: the warm sandbox to use, default a shared one)."""
    result = (
        await _decide_code(request, answers, weights, verify, sandbox)
        if request.task.produces_code
        else (_decide_non_code(request, answers, weights))
    )
    asked_models = {a.model_id for a in answers}
    answered_models = {a.model_id for a in answers if a.status is AnswerStatus.ANSWERED and a.text.strip()}
    if len(answered_models) < len(asked_models) and result.confidence > 0:
        result.confidence = round(discount_missing(result.confidence, len(answered_models), len(asked_models)), 4)
        result.notes.append(
            f"{len(asked_models) - len(answered_models)} of {len(asked_models)} models gave no answer: confidence lowered"
        )
    return result


async def _decide_code(
    request: Request,
    answers: Sequence[ModelAnswer],
    weights: Mapping[str, float] | None,
    verify: bool,
    sandbox: Sandbox | None,
) -> ConsensusResult:
    asked = len({(a.model_id, a.sample) for a in answers})
    answered_models = {a.model_id for a in answers if a.status is AnswerStatus.ANSWERED and a.text.strip()}
    candidates = candidates_for(request, answers, weights)
    notes: list[str] = []
    if not candidates:
        return ConsensusResult(kind="none", asked=asked, answered=len(answered_models), notes=["no usable answer"])
    probe = probe_for(request) if verify else None
    if probe is not None:
        box = sandbox or shared_sandbox()
        for cand in candidates:
            if cand.parseable:
                cand.behaviour = await observe(box, cand.code, probe)
        if not box.network_blocked:
            notes.append("sandbox could not block network access")
    selection = select(candidates)
    return _result(request, selection, candidates=candidates, asked=asked, answered=len(answered_models), notes=notes)


def _result(
    request: Request,
    selection: Selection,
    *,
    candidates: Sequence[Candidate],
    asked: int,
    answered: int,
    notes: list[str],
) -> ConsensusResult:
    pick_group = selection.groups[0]
    pick = pick_group.representative
    clusters = []
    for group in selection.groups:
        rep = group.representative
        clusters.append(
            Cluster(
                members=[m.label for m in group.members],
                representative=rep.code,
                support=round(group.support, 4),
                passes_examples=None if group.pass_frac is None else group.pass_frac >= 1.0,
                diff="" if group is pick_group else unified_diff(pick.code, rep.code, other_label=rep.label),
            )
        )
    unparseable = sum(not c.parseable for c in candidates)
    if unparseable:
        notes.append(f"{unparseable} answer(s) are not valid code")
    if selection.informative_examples:
        notes.append(f"checked against {selection.informative_examples} docstring example(s)")
    conf = confidence(features_for(selection, candidates, asked, answered))
    if pick_group.degenerate:
        conf = min(conf, 0.05)
        notes.append("no candidate ran successfully")
    return ConsensusResult(
        kind="code",
        pick=pick.code,
        pick_models=pick_group.models,
        confidence=round(conf, 4),
        agree=len(pick_group.models),
        answered=answered,
        asked=asked,
        clusters=clusters,
        method=selection.method,
        notes=notes,
    )


def _decide_non_code(
    request: Request, answers: Sequence[ModelAnswer], weights: Mapping[str, float] | None
) -> ConsensusResult:
    """Review findings (findings.py) and free-text answers (text.py)."""
    if request.task is TaskKind.REVIEW:
        return decide_findings(request, answers, weights)
    return decide_text(request, answers, weights)
