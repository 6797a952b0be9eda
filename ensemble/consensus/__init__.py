"""Consensus: from the models' raw answers to one pick, a confidence, and the disagreement.

PLACEHOLDER (to be replaced by the consensus work): exact-text plurality. The entry point's signature is the
contract the pipeline relies on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from ..types import AnswerStatus, Cluster, ConsensusResult, ModelAnswer, Request

__all__ = ["decide"]


async def decide(
    request: Request,
    answers: Sequence[ModelAnswer],
    *,
    weights: Mapping[str, float] | None = None,
    verify: bool = True,
) -> ConsensusResult:
    """Choose among ``answers`` for ``request``. ``weights`` maps model ids to reliability in (0, 1];
    ``verify`` allows sandboxed execution of candidates on the docstring's examples."""
    answered = [a for a in answers if a.status is AnswerStatus.ANSWERED and a.text.strip()]
    if not answered:
        return ConsensusResult(kind="none", asked=len(answers), notes=["no model answered"])
    counts = Counter(a.text.strip() for a in answered)
    pick, votes = counts.most_common(1)[0]
    clusters = [
        Cluster(members=[a.model_id for a in answered if a.text.strip() == text], representative=text, support=float(n))
        for text, n in counts.most_common()
    ]
    return ConsensusResult(
        kind="code" if request.task.produces_code else "text",
        pick=pick,
        pick_models=clusters[0].members,
        confidence=votes / len(answers),
        agree=votes,
        answered=len(answered),
        asked=len(answers),
        clusters=clusters,
        method="placeholder-plurality",
    )
