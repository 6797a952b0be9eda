"""Choose among candidates: group them (by behaviour when they were executed, by normalised code otherwise, never
by mere similarity), give each group a reliability-weighted vote in which models of one family count less than
independent ones, and rank groups by how well they satisfy the docstring's examples, then by support. Groups whose members crash
or return None everywhere cannot win by agreeing with each other.

Pure functions over already-observed candidates; no execution here.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from .behaviour import Behaviour
from .normalize import similarity, token_profile

__all__ = ["Candidate", "Group", "Selection", "family_of", "select"]

# A second answer from the same family (or the same model) counts this much: correlated errors are not
# independent evidence.
SAME_FAMILY_DISCOUNT = 0.5
# Reliability is clamped away from 0 and 1 so that one model's vote stays finite.
RELIABILITY_RANGE = (0.01, 0.99)
# Partial agreement with another group (same outputs on some inputs) counts this much of that group's vote.
PARTIAL_AGREEMENT = 0.5


def family_of(model_name: str, family: str | None = None) -> str:
    """The model family: ModelInfo.family when the server says, else the first word of the model's name."""
    if family:
        return family.lower()
    base = model_name.rsplit("/", 1)[-1].lower()
    match = re.match(r"[a-z]+", base)
    return match.group(0) if match else base


@dataclass
class Candidate:
    label: str  # model id, with "#sample" when a model gave several
    model_id: str
    family: str
    weight: float  # reliability in (0, 1]
    code: str
    parseable: bool
    norm: str  # normalised form
    behaviour: Behaviour | None = None


@dataclass
class Group:
    members: list[Candidate]
    vote: float = 0.0  # family-discounted, reliability-weighted votes of the members
    support: float = 0.0  # vote plus partial agreement from other groups
    pass_frac: float | None = None  # share of the docstring's examples satisfied; None: no examples
    degenerate: bool = False
    proven_unchanged: bool = False  # docstring task: the body is the user's, syntax tree for syntax tree
    models: list[str] = field(default_factory=list)

    @property
    def representative(self) -> Candidate:
        """The member from the most reliable model (parseable and shorter code breaking ties)."""
        return max(self.members, key=lambda c: (c.parseable, c.weight, -len(c.code)))


@dataclass
class Selection:
    groups: list[Group]  # best first
    method: str
    informative_examples: int  # examples at least one candidate satisfies (the others are likely mis-read)
    total_vote: float


def vote_weight(reliability: float) -> float:
    """How much one answer from a model of this reliability counts: its odds r / (1 - r), the likelihood ratio
    of "this model is right" in a naive-Bayes view of the vote. A model right 87% of the time counts ~16 times
    as much as one right 30% of the time, so many weak models agreeing on a common mistake do not outvote it."""
    low, high = RELIABILITY_RANGE
    r = min(high, max(low, reliability))
    return r / (1 - r)


def _vote(members: Sequence[Candidate]) -> float:
    by_family: dict[str, list[float]] = defaultdict(list)
    for member in members:
        by_family[member.family].append(vote_weight(member.weight))
    total = 0.0
    for weights in by_family.values():
        weights.sort(reverse=True)
        total += weights[0] + SAME_FAMILY_DISCOUNT * sum(weights[1:])
    return total


def select(candidates: Sequence[Candidate]) -> Selection:
    """Rank candidates' groups; behaviour is used when every parseable candidate has one."""
    usable = [c for c in candidates if c.code.strip()]
    if not usable:
        return Selection([], "none", 0, 0.0)
    executed = all(c.behaviour is not None for c in usable if c.parseable) and any(
        c.behaviour is not None for c in usable
    )
    if executed:
        return _select_by_behaviour(usable)
    return _select_by_code(usable)


def _select_by_behaviour(candidates: Sequence[Candidate]) -> Selection:
    groups_by_key: dict[tuple[str, ...], list[Candidate]] = defaultdict(list)
    for cand in candidates:
        behaviour = cand.behaviour
        # A project probe's test outcomes are part of what a candidate does.
        key = (
            behaviour.keys + tuple(o for _, o in behaviour.tests)
            if behaviour is not None
            else ("!unparseable", cand.label)
        )
        groups_by_key[key].append(cand)
    groups = [Group(members) for members in groups_by_key.values()]
    n_examples = max((len(c.behaviour.passed) for c in candidates if c.behaviour), default=0)
    informative = [
        i
        for i in range(n_examples)
        if any(c.behaviour and not c.behaviour.degenerate and c.behaviour.passed[i] for c in candidates)
    ]
    for group in groups:
        rep = group.representative.behaviour
        group.vote = _vote(group.members)
        group.degenerate = rep is None or rep.degenerate
        if rep is not None and rep.passed:
            # Over ALL the user's examples: one that every candidate fails still counts against each of them.
            group.pass_frac = sum(rep.passed) / len(rep.passed)
    for group in groups:
        rep = group.representative.behaviour
        group.support = group.vote
        if rep is None or group.degenerate:
            continue
        for other in groups:
            other_rep = other.representative.behaviour
            if other is not group and other_rep is not None and not other.degenerate:
                group.support += PARTIAL_AGREEMENT * other.vote * rep.agreement(other_rep)
    groups.sort(key=lambda g: (not g.degenerate, g.pass_frac or 0.0, g.support), reverse=True)
    _fill_models(groups)
    method = "behaviour+examples" if informative else "behaviour"
    return Selection(groups, method, len(informative), sum(g.vote for g in groups))


def _select_by_code(candidates: Sequence[Candidate]) -> Selection:
    """Without execution only the same program agrees with itself: candidates are grouped by their normalised
    form (the same code up to formatting, comments, docstrings and local names), in every language. Similar
    text is not agreement (a one-token mutant is 0.9 similar to the right answer), so each group's support is
    its own members' vote: what the user reads as "k models agree" is k models that wrote the same program.
    Text similarity to the other groups (reliability-weighted, the answer most central to the rest) only breaks
    ties between groups of equal vote; it never merges groups nor adds support."""
    ordered = sorted(candidates, key=lambda c: (c.parseable, c.weight), reverse=True)
    by_norm: dict[str, Group] = {}
    for cand in ordered:
        by_norm.setdefault(cand.norm, Group([])).members.append(cand)
    groups = list(by_norm.values())
    for group in groups:
        group.vote = group.support = _vote(group.members)
        # Unparseable answers still count as a voice, but a weak one.
        group.degenerate = not group.representative.parseable
    profiles = [token_profile(g.representative.code) for g in groups]
    # Similarity is symmetric: each pair is compared once.
    centrality = [0.0] * len(groups)
    for i in range(len(groups)):
        for j in range(i + 1, len(groups)):
            sim = similarity(profiles[i], profiles[j])
            centrality[i] += groups[j].vote * sim
            centrality[j] += groups[i].vote * sim
    rank = {id(g): c for g, c in zip(groups, centrality, strict=True)}
    groups.sort(key=lambda g: (not g.degenerate, round(g.vote, 9), rank[id(g)]), reverse=True)
    _fill_models(groups)
    return Selection(groups, "syntactic", 0, sum(g.vote for g in groups))


def _fill_models(groups: Sequence[Group]) -> None:
    for group in groups:
        group.models = sorted({m.model_id for m in group.members})
