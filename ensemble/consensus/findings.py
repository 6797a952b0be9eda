"""Review consensus: merges the findings several models reported for the selection into one list, each finding
with the models that saw it and a calibrated confidence.

Models answer a review prompt with a JSON list ``[{"line", "severity", "message", "fix"}]`` (lines 1-based within
the selection). Answers are read forgivingly (:mod:`.jsonrepair`; fences, prose, wrong types, a ``{"findings": ...}``
wrapper); an answer that cannot be read counts as "not answered" and the reason goes into the notes.

Findings from different models are matched when their lines are within :data:`LINE_WINDOW` lines and their
messages are similar (rapidfuzz ``token_set_ratio``); the nearer the lines, the less textual similarity is needed,
since two models flagging the same line usually mean the same problem. A group holds at most one finding per
answer (average linkage, see :func:`_group`). Each merged finding gets the median line, the weighted-majority severity (ties go to the more severe),
the most central message and the most common fix, and::

    confidence = (w_support / w_answered) * n / (n + 1)

where ``w_support`` is the reliability weight of the models in the group, ``w_answered`` that of all models whose
review could be read and ``n`` their number (see :mod:`._weighting`). The overall confidence is the mean
agreement of the answering models with the consensus set (the findings a weighted majority reported): each
model's Jaccard overlap with that set, weighted and shrunk the same way, so models that all report nothing agree
fully, and models that each report something different agree not at all. Answers are data only: text such as
"ignore previous instructions" is kept as a message, never acted on.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import median_low
from typing import Any, Literal

from rapidfuzz import fuzz, utils

from ..types import AnswerStatus, Cluster, CodeContext, ConsensusResult, Finding, ModelAnswer, Request
from ._weighting import Voter, shrunk_confidence, visible_text, voters_for
from .jsonrepair import extract_json

__all__ = ["LINE_WINDOW", "ParsedReview", "ReviewItem", "decide_findings", "parse_review"]

Severity = Literal["error", "warning", "info", "hint"]

#: Findings further apart than this many lines are never merged.
LINE_WINDOW = 2
# Score = message similarity (0..1) + a bonus for line proximity; groups merge when the mean score over their
# cross pairs reaches _MATCH_SCORE. Measured with rapidfuzz token_set_ratio on hand-written review messages:
# paraphrases of one problem score 0.45-0.8, different problems 0.3-0.45 (occasionally 0.55 when they share
# the code they quote). So: same line needs 0.4, one line apart 0.5, two apart 0.55.
_LINE_BONUS = {0: 0.2, 1: 0.1, 2: 0.05}
_MATCH_SCORE = 0.6
_MAX_MESSAGE = 2_000
_MAX_FIX = 20_000
_MAX_ITEMS = 50

_SEVERITY_RANK: dict[Severity, int] = {"error": 3, "warning": 2, "info": 1, "hint": 0}
_SEVERITY_ALIASES: dict[str, Severity] = {
    **dict.fromkeys(("error", "err", "critical", "fatal", "high", "severe", "major", "bug", "blocker"), "error"),
    **dict.fromkeys(("warning", "warn", "medium", "moderate", "caution"), "warning"),
    **dict.fromkeys(("info", "information", "informational", "low", "minor", "note", "notice"), "info"),
    **dict.fromkeys(("hint", "suggestion", "style", "nit", "nitpick", "refactor", "trivial"), "hint"),
}
_LIST_KEYS = ("findings", "issues", "problems", "results", "review", "diagnostics", "bugs", "errors", "items")
_LINE_KEYS = ("line", "line_number", "lineno", "line_no", "start_line", "lines", "location")
_END_KEYS = ("end_line", "end", "line_end")
_MESSAGE_KEYS = ("message", "description", "issue", "msg", "problem", "text", "comment", "explanation", "title")
_FIX_KEYS = ("fix", "suggested_fix", "suggestion", "replacement", "code", "fixed_code")
_RANGE = re.compile(r"(\d+)(?:\s*(?:-|–|—|to|\.\.|:)\s*(\d+))?")
_LINE_IN_TEXT = re.compile(r"\blines?\s*(\d+)", re.IGNORECASE)
_FENCED = re.compile(r"^```[^\n]*\n(.*?)\n?```\s*$", re.DOTALL)
# A prose answer that plainly says there is nothing to report, without any JSON.
_NOTHING_FOUND = re.compile(
    r"\b(no (issues|problems|bugs|findings|errors)( (were )?found)?|looks (good|correct|fine)|nothing to report)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """One finding as one model wrote it. ``line``: 1-based within the selection as written, None if absent."""

    line: int | None
    end_line: int | None
    severity: Severity
    message: str
    fix: str | None


@dataclass(frozen=True, slots=True)
class ParsedReview:
    """A model's review: ``items`` is None when the answer could not be read at all; ``notes`` say what was
    repaired or dropped."""

    items: list[ReviewItem] | None
    notes: list[str]


def _coerce_line(value: Any) -> tuple[int | None, int | None]:
    if isinstance(value, bool):  # bool is an int subclass; true/false is no line number
        return None, None
    if isinstance(value, int):
        return value, None
    if isinstance(value, float):
        return (int(value), None) if math.isfinite(value) else (None, None)
    if isinstance(value, str):
        match = _RANGE.search(value)
        if match is None:
            return None, None
        return int(match.group(1)), (int(match.group(2)) if match.group(2) else None)
    if isinstance(value, list | tuple) and value:
        start, _ = _coerce_line(value[0])
        end, _ = _coerce_line(value[-1]) if len(value) > 1 else (None, None)
        return start, end
    return None, None


def _first(item: Mapping[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        if key in item and item[key] is not None:
            return item[key]
    return None


def _severity(value: Any) -> Severity:
    if isinstance(value, str):
        return _SEVERITY_ALIASES.get(value.strip().lower(), "warning")
    return "warning"


def _fix(value: Any) -> str | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = "\n".join(value)
    if not isinstance(value, str):
        return None
    text = value.strip("\n")
    fenced = _FENCED.match(text.strip())
    if fenced:
        text = fenced.group(1)
    return text[:_MAX_FIX] if text.strip() else None


def _item(raw: Any, notes: list[str]) -> ReviewItem | None:
    if isinstance(raw, str):
        # A bare string is a message; small models often write "Line 3: ..." instead of an object.
        message = raw.strip()
        if not message:
            notes.append("dropped an empty finding")
            return None
        match = _LINE_IN_TEXT.search(message)
        return ReviewItem(int(match.group(1)) if match else None, None, "warning", message[:_MAX_MESSAGE], None)
    if not isinstance(raw, dict):
        notes.append(f"dropped a finding that is not an object ({type(raw).__name__})")
        return None
    item: dict[str, Any] = {str(k).strip().lower(): v for k, v in raw.items()}
    message = _first(item, _MESSAGE_KEYS)
    if isinstance(message, int | float) and not isinstance(message, bool):
        message = str(message)
    if not isinstance(message, str) or not message.strip():
        notes.append("dropped a finding without a message")
        return None
    line, end = _coerce_line(_first(item, _LINE_KEYS))
    explicit_end, _ = _coerce_line(_first(item, _END_KEYS))
    return ReviewItem(
        line=line,
        end_line=explicit_end if explicit_end is not None else end,
        severity=_severity(_first(item, ("severity", "level", "type", "kind", "priority"))),
        message=message.strip()[:_MAX_MESSAGE],
        fix=_fix(_first(item, _FIX_KEYS)),
    )


def _raw_items(value: list[Any] | dict[str, Any]) -> list[Any] | None:
    if isinstance(value, list):
        return value
    lowered = {str(k).strip().lower(): v for k, v in value.items()}
    for key in _LIST_KEYS:
        if isinstance(lowered.get(key), list):
            return list(lowered[key])
    if any(key in lowered for key in (*_MESSAGE_KEYS, *_LINE_KEYS)):
        return [value]  # a single finding written without the surrounding list
    return None


def parse_review(text: str) -> ParsedReview:
    """Read one model's review answer; never raises. See the module docstring for what is accepted."""
    text = visible_text(text)
    extraction = extract_json(text)
    notes: list[str] = [extraction.detail] if extraction.repaired else []
    if extraction.value is None:
        if text and _NOTHING_FOUND.search(text) and len(text) < 400:
            return ParsedReview([], ["prose answer read as 'no findings'"])
        return ParsedReview(None, [extraction.detail])
    raw_items = _raw_items(extraction.value)
    if raw_items is None:
        return ParsedReview(None, ["JSON object without a list of findings"])
    if len(raw_items) > _MAX_ITEMS:
        notes.append(f"kept the first {_MAX_ITEMS} of {len(raw_items)} findings")
        raw_items = raw_items[:_MAX_ITEMS]
    items = [item for item in (_item(raw, notes) for raw in raw_items) if item is not None]
    return ParsedReview(items, notes)


def _selection_lines(ctx: CodeContext) -> int:
    return max(1, ctx.end_line - ctx.start_line, len(ctx.selection.splitlines()))


def _place(item: ReviewItem, ctx: CodeContext, n_lines: int, notes: list[str]) -> tuple[int, int | None]:
    """0-based document lines for ``item``, kept within the selection."""
    last = ctx.start_line + n_lines - 1
    if item.line is None:
        notes.append("a finding without a line number was put on the selection's first line")
        return ctx.start_line, (last if last > ctx.start_line else None)
    offset = ctx.start_line - 1  # selection line 1 is document line start_line
    rel = item.line
    if rel > n_lines and ctx.start_line < rel <= ctx.start_line + n_lines:
        # The model numbered lines as in the file (1-based) rather than within the selection.
        offset = -1
        notes.append(f"line {rel} read as a file line number")
    elif not 1 <= rel <= n_lines:
        notes.append(f"line {rel} is outside the selection (1-{n_lines}), clamped")
    line = min(last, max(ctx.start_line, rel + offset))
    end = None
    if item.end_line is not None:
        end = min(last, max(line, item.end_line + offset))
        end = end if end > line else None
    return line, end


@dataclass(slots=True)
class _Entry:
    voter: int
    line: int
    end_line: int | None
    severity: Severity
    message: str
    fix: str | None
    processed: str
    key: tuple[str, int, str, str, str]


class _Similarity:
    """Message similarity in [0, 1], cached by entry pair (the centrality step asks again)."""

    def __init__(self, entries: Sequence[_Entry]) -> None:
        self._entries = entries
        self._cache: dict[tuple[int, int], float] = {}

    def __call__(self, i: int, j: int) -> float:
        if i == j:
            return 1.0
        pair = (i, j) if self._entries[i].key <= self._entries[j].key else (j, i)
        if pair not in self._cache:
            a, b = self._entries[pair[0]], self._entries[pair[1]]
            self._cache[pair] = fuzz.token_set_ratio(a.processed, b.processed) / 100.0
        return self._cache[pair]


def _group(entries: Sequence[_Entry], sim: _Similarity) -> list[list[int]]:
    """Greedy best-first average-linkage merging: the highest-scoring cross-model pairs are tried first; two
    groups merge only if they hold no finding of the same answer, all their lines lie within LINE_WINDOW (no
    chaining down the file) and the mean score over all their cross pairs still reaches the threshold (so one
    same-line coincidence cannot drag an unrelated finding into a group)."""

    def score(i: int, j: int) -> float:
        distance = abs(entries[i].line - entries[j].line)
        return sim(i, j) + _LINE_BONUS[distance] if distance <= LINE_WINDOW else -math.inf

    pairs: list[tuple[float, tuple[Any, ...], int, int]] = []
    for i, a in enumerate(entries):
        for j in range(i + 1, len(entries)):
            if a.voter == entries[j].voter or abs(a.line - entries[j].line) > LINE_WINDOW:
                continue
            value = score(i, j)
            if value >= _MATCH_SCORE:
                pairs.append((value, tuple(sorted((a.key, entries[j].key))), i, j))
    pairs.sort(key=lambda p: (-p[0], p[1]))
    members: dict[int, list[int]] = {i: [i] for i in range(len(entries))}
    root = list(range(len(entries)))
    for _, _, i, j in pairs:
        ri, rj = root[i], root[j]
        if ri == rj:
            continue
        left, right = members[ri], members[rj]
        if {entries[k].voter for k in left} & {entries[k].voter for k in right}:
            continue
        lines = [entries[k].line for k in (*left, *right)]
        if max(lines) - min(lines) > LINE_WINDOW:
            continue
        if math.fsum(score(a, b) for a in left for b in right) / (len(left) * len(right)) < _MATCH_SCORE:
            continue
        keep, drop = (ri, rj) if entries[ri].key <= entries[rj].key else (rj, ri)
        members[keep].extend(members.pop(drop))
        for k in members[keep]:
            root[k] = keep
    return list(members.values())


def _central(indices: Sequence[int], entries: Sequence[_Entry], voters: Sequence[Voter], sim: _Similarity) -> int:
    def score(i: int) -> tuple[float, float, int, tuple[str, int, str, str, str]]:
        centrality = math.fsum(voters[entries[j].voter].weight * sim(i, j) for j in indices)
        return (-centrality, -voters[entries[i].voter].weight, len(entries[i].message), entries[i].key)

    return min(indices, key=score)


def _merge(
    indices: Sequence[int], entries: Sequence[_Entry], voters: Sequence[Voter], sim: _Similarity
) -> tuple[int, int | None, Severity, str, str | None]:
    lines = sorted(entries[i].line for i in indices)
    line = median_low(lines)
    ends = sorted(e for e in (entries[i].end_line for i in indices) if e is not None)
    end = max(line, median_low(ends)) if ends else None
    votes: dict[Severity, float] = defaultdict(float)
    fixes: dict[str, float] = defaultdict(float)
    for i in indices:
        votes[entries[i].severity] += voters[entries[i].voter].weight
        fix = entries[i].fix
        if fix is not None:
            fixes[fix.strip()] += voters[entries[i].voter].weight
    severity = max(votes, key=lambda s: (round(votes[s], 9), _SEVERITY_RANK[s]))
    message = entries[_central(indices, entries, voters, sim)].message
    # The fix most models gave verbatim; when all differ, the one by the most reliable model, then the shortest.
    best_fix = min(fixes, key=lambda f: (-round(fixes[f], 9), len(f), f)) if fixes else None
    return line, (end if end is not None and end > line else None), severity, message, best_fix


def _render(findings: Sequence[Finding], answered: int) -> str:
    if not findings:
        return "No findings."
    return "\n".join(
        f"L{f.line + 1} {f.severity}: {f.message} ({f.support}/{answered} models, confidence {f.confidence:.2f})"
        for f in findings
    )


def decide_findings(
    request: Request, answers: Sequence[ModelAnswer], weights: Mapping[str, float] | None = None
) -> ConsensusResult:
    """Consensus over review answers (``TaskKind.REVIEW``): merged findings sorted by confidence, one cluster per
    finding, per-model notes on what could not be read. Pure and synchronous."""
    ctx = request.context
    n_lines = _selection_lines(ctx)
    asked = len({a.model_id for a in answers})
    notes: list[str] = []
    usable: list[ModelAnswer] = []
    parsed: list[list[tuple[int, int | None, ReviewItem]]] = []
    for answer in answers:
        if answer.status is not AnswerStatus.ANSWERED:
            continue
        review = parse_review(answer.text)
        if review.items is None:
            notes.append(f"model {answer.model_id}: unparseable review ({'; '.join(review.notes)})")
            continue
        placement_notes: list[str] = []
        placed = [(*_place(item, ctx, n_lines, placement_notes), item) for item in review.items]
        for note in dict.fromkeys([*review.notes, *placement_notes]):
            notes.append(f"model {answer.model_id}: {note}")
        usable.append(answer)
        parsed.append(placed)
    if not usable:
        return ConsensusResult(kind="none", asked=asked, notes=[*notes, "no model gave a readable review"])

    voters = voters_for(usable, weights)
    entries = [
        _Entry(
            voter=v,
            line=line,
            end_line=end,
            severity=item.severity,
            message=item.message,
            fix=item.fix,
            processed=utils.default_process(item.message),
            key=(voters[v].id, line, item.message, item.severity, item.fix or ""),
        )
        for v, placed in enumerate(parsed)
        for line, end, item in placed
    ]
    sim = _Similarity(entries)
    groups = _group(entries, sim)

    answered_models = sorted({v.model_id for v in voters})
    n = len(answered_models)
    w_answered = math.fsum(v.weight for v in voters)
    built: list[tuple[Finding, Cluster, frozenset[int]]] = []
    for indices in groups:
        group_voters = frozenset(entries[i].voter for i in indices)
        w_support = math.fsum(voters[v].weight for v in group_voters)
        line, end, severity, message, fix = _merge(indices, entries, voters, sim)
        models = sorted({voters[v].model_id for v in group_voters})
        finding = Finding(
            line=line,
            end_line=end,
            severity=severity,
            message=message,
            fix=fix,
            models=models,
            support=len(models),
            confidence=shrunk_confidence(w_support, w_answered, n),
        )
        cluster = Cluster(members=sorted(voters[v].id for v in group_voters), representative=message, support=w_support)
        built.append((finding, cluster, group_voters))
    built.sort(key=lambda b: (-b[0].confidence, b[0].line, -_SEVERITY_RANK[b[0].severity], b[0].message))

    # Agreement with the consensus set (the findings a weighted majority reported), per answer.
    majority = {k for k, (_, cluster, _) in enumerate(built) if cluster.support / w_answered > 0.5}
    per_voter: list[set[int]] = [set() for _ in voters]
    for k, (_, _, group_voters) in enumerate(built):
        for v in group_voters:
            per_voter[v].add(k)
    jaccard = [len(s & majority) / len(s | majority) if s | majority else 1.0 for s in per_voter]
    agreement = math.fsum(voters[v].weight * jaccard[v] for v in range(len(voters))) / w_answered
    model_agreement: dict[str, list[float]] = defaultdict(list)
    for v, voter in enumerate(voters):
        model_agreement[voter.model_id].append(jaccard[v])
    agreeing = sorted(m for m, values in model_agreement.items() if sum(values) / len(values) >= 0.5)

    findings = [b[0] for b in built]
    return ConsensusResult(
        kind="findings",
        pick=_render(findings, n),
        pick_models=agreeing,
        confidence=min(1.0, max(0.0, agreement * n / (n + 1))),
        agree=len(agreeing),
        answered=n,
        asked=asked,
        clusters=[b[1] for b in built],
        findings=findings,
        method=f"findings: lines within {LINE_WINDOW} + message similarity (rapidfuzz token_set_ratio), weighted vote",
        notes=notes,
    )
