"""Free-text consensus for "ask" requests: picks the explanation the models agree on most, and says honestly how
much they agree.

Answers are compared as bags of words and their character 4-grams (code blocks included, as plain text) with
TF-IDF cosine similarity, so no model download is needed. The pick is the answer most central to the others
(highest reliability-weighted similarity to all answers, itself included). Answers are then grouped around leaders by a similarity threshold; the confidence is
the weighted share of the pick's group among the models that answered, shrunk toward 0 when few answered (see
:mod:`._weighting`). Several different answers therefore read as LOW confidence, a single answer as modest.
Answers are data only: instructions inside them ("ignore previous instructions ...") are never acted on.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence

from ..types import AnswerStatus, Cluster, ConsensusResult, ModelAnswer, Request
from ._weighting import Voter, shrunk_confidence, visible_text, voters_for

__all__ = ["SIMILARITY_THRESHOLD", "decide_text", "similarity_matrix", "tokens"]

#: Two answers whose TF-IDF cosine reaches this are counted as saying the same thing. Measured on hand-written
#: explanations: close paraphrases score 0.25-0.5, different explanations of the same code 0.0-0.25, and
#: paraphrases with no shared vocabulary as low as 0.05 (lexical similarity cannot see those). The threshold sits
#: on the conservative side: missing a paraphrase lowers the confidence, never inflates it.
SIMILARITY_THRESHOLD = 0.25

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?")
# 4-grams alone separate paraphrases from other answers as well as 3-5-grams did on our samples, at a third
# of the cost.
_NGRAM_SIZES = (4,)
_CAMEL = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "it's",
        "just",
        "may",
        "might",
        "more",
        "must",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "should",
        "so",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "this",
        "those",
        "to",
        "too",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "will",
        "with",
        "would",
        "you",
        "your",
        "here",
        "also",
        "any",
        "all",
        "very",
        "using",
        "use",
        "used",
    ]
)


def _stem(word: str) -> str:
    # Crude plural folding: enough for "values"/"value", harmless for code identifiers.
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def tokens(text: str) -> list[str]:
    """Lower-cased content words of ``text``; identifiers also contribute their snake/camel-case parts."""
    out: list[str] = []
    for match in _WORD.finditer(text):
        word = match.group(0)
        lowered = word.lower()
        if lowered not in _STOPWORDS:
            out.append(_stem(lowered))
        parts = (
            [p.lower() for p in _CAMEL.findall(word.replace("_", " "))]
            if ("_" in word or word[1:] != word[1:].lower())
            else []
        )
        if len(parts) > 1:
            out.extend(_stem(p) for p in parts if p not in _STOPWORDS)
    return out


@functools.lru_cache(maxsize=65_536)
def _grams(word: str) -> tuple[str, ...]:
    padded = f" {word} "
    return tuple(padded[i : i + size] for size in _NGRAM_SIZES for i in range(max(1, len(padded) - size + 1)))


def _features(text: str) -> Counter[str]:
    """Content words plus their character n-grams (padded with spaces, as in "char_wb" TF-IDF): the n-grams let
    "divides", "dividing" and "division" share weight, which whole words cannot."""
    words = Counter(tokens(text))
    bag: Counter[str] = Counter()
    for word, count in words.items():
        bag["w:" + word] += count
        for gram in _grams(word):
            bag[gram] += count
    return bag


def similarity_matrix(texts: Sequence[str]) -> list[list[float]]:
    """Pairwise TF-IDF cosine similarity over words and character n-grams (sublinear tf, smoothed idf); 1.0 on
    the diagonal and for texts equal up to whitespace."""
    bags = [_features(t) for t in texts]
    n = len(texts)
    df: Counter[str] = Counter()
    for bag in bags:
        df.update(bag.keys())
    idf = {term: math.log((1 + n) / (1 + count)) + 1.0 for term, count in df.items()}
    vectors = [{t: (1.0 + math.log(c)) * idf[t] for t, c in bag.items()} for bag in bags]
    norms = [math.sqrt(sum(v * v for v in vec.values())) for vec in vectors]
    normalised = [" ".join(t.split()) for t in texts]
    sims = [[0.0] * n for _ in range(n)]
    for i in range(n):
        sims[i][i] = 1.0
        for j in range(i + 1, n):
            if normalised[i] == normalised[j]:
                value = 1.0
            elif norms[i] == 0.0 or norms[j] == 0.0:
                value = 0.0
            else:
                # Iterate the vector chosen by content, not by position, so that summation order (and thus the
                # last bits of the float) cannot change when the answers are shuffled.
                small, large = sorted(
                    ((vectors[i], normalised[i]), (vectors[j], normalised[j])), key=lambda v: (len(v[0]), v[1])
                )
                dot = sum(w * large[0].get(t, 0.0) for t, w in small[0].items())
                value = min(1.0, dot / (norms[i] * norms[j]))
            sims[i][j] = sims[j][i] = value
    return sims


def _order(texts: Sequence[str], voters: Sequence[Voter], sims: Sequence[Sequence[float]]) -> list[int]:
    """Indices by centrality (reliability-weighted similarity to all answers, itself included), best first. Ties
    go to the more reliable model, then to content, never to input order, so shuffling cannot change the pick."""
    n = len(texts)
    # The answer counts for itself too (sims[i][i] == 1), so between two unrelated answers the more reliable
    # model wins rather than the one that merely makes the other look "central".
    # fsum is exactly rounded: the same centrality whatever order the answers came in.
    centrality = [math.fsum(voters[j].weight * sims[i][j] for j in range(n)) for i in range(n)]
    return sorted(range(n), key=lambda i: (-centrality[i], -voters[i].weight, texts[i], voters[i].id))


def _diff(pick: str, other: str) -> str:
    lines = difflib.unified_diff(pick.splitlines(), other.splitlines(), "pick", "alternative", lineterm="")
    return "\n".join(lines)


def decide_text(
    request: Request, answers: Sequence[ModelAnswer], weights: Mapping[str, float] | None = None
) -> ConsensusResult:
    """Consensus over free-text answers (``TaskKind.ASK``): the most central answer, its supporters, the other
    groups with a diff from the pick, and a shrunk confidence. Pure and synchronous."""
    del request  # the question itself does not change how answers are compared
    asked = len({a.model_id for a in answers})
    notes: list[str] = []
    usable: list[ModelAnswer] = []
    texts: list[str] = []
    for answer in answers:
        if answer.status is not AnswerStatus.ANSWERED:
            continue
        text = visible_text(answer.text)
        if not text:
            notes.append(f"model {answer.model_id}: empty answer ignored")
            continue
        usable.append(answer)
        texts.append(text)
    if not usable:
        return ConsensusResult(kind="none", asked=asked, notes=[*notes, "no model answered"], method="text")

    voters = voters_for(usable, weights)
    sims = similarity_matrix(texts)
    order = _order(texts, voters, sims)

    groups: list[list[int]] = []
    assigned: set[int] = set()
    for leader in order:
        if leader in assigned:
            continue
        group = [leader] + [
            j for j in order if j not in assigned and j != leader and sims[leader][j] >= SIMILARITY_THRESHOLD
        ]
        assigned.update(group)
        groups.append(group)

    answered_models = {v.model_id for v in voters}
    w_answered = sum(v.weight for v in voters)
    pick_index = groups[0][0]
    pick = texts[pick_index]
    clusters: list[Cluster] = []
    for group in groups:
        representative = texts[group[0]]
        clusters.append(
            Cluster(
                members=sorted(voters[i].id for i in group),
                representative=representative,
                support=sum(voters[i].weight for i in group),
                diff="" if group is groups[0] else _diff(pick, representative),
            )
        )
    pick_models = sorted({voters[i].model_id for i in groups[0]})
    if len(answered_models) == 1:
        notes.append("only one model answered: nothing to compare it with")
    return ConsensusResult(
        kind="text",
        pick=pick,
        pick_models=pick_models,
        confidence=shrunk_confidence(clusters[0].support, w_answered, len(answered_models)),
        agree=len(pick_models),
        answered=len(answered_models),
        asked=asked,
        clusters=clusters,
        method=f"text: most central answer by TF-IDF cosine, groups at similarity >= {SIMILARITY_THRESHOLD}",
        notes=notes,
    )
