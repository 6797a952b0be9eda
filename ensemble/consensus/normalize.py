"""Make candidates comparable: two answers that differ only in docstrings, comments, formatting, type hints or
local variable names get the same normalised form (without execution, the only agreement there is; each
language's own rules, ``ensemble/languages``), and a fast similarity says how close two candidates are
(without execution it only breaks ties between groups of equal vote: similar code is not the same code).
"""

from __future__ import annotations

from collections import Counter

from ..languages import generic_tokens, language_for

__all__ = ["normalized_key", "similarity", "token_profile", "tokens"]


def tokens(code: str, language: str = "python") -> list[str]:
    """Tokens without comments and layout, by the language's rules (``ensemble/languages``: Python via
    ``tokenize``, others by their tree-sitter grammar, languages without one by a generic lexer)."""
    return language_for(language).tokens(code)


def normalized_key(code: str, language: str = "python") -> str:
    """Equal for candidates that are the same program up to formatting, comments, docstrings and local names
    (the language's :meth:`~codeconductor.ensemble.languages.Language.normalize`)."""
    return language_for(language).normalize(code)


def token_profile(code: str, language: str = "python") -> Counter[str]:
    """Token trigram counts: the representation :func:`similarity` compares (compute once per candidate).
    Uses the fast generic lexer for every language: similarity needs speed more than exact Python tokens."""
    toks = generic_tokens(code)
    return Counter(zip(toks, toks[1:], toks[2:], strict=False)) if len(toks) >= 3 else Counter(toks)  # type: ignore[arg-type]


def similarity(a: str | Counter[str], b: str | Counter[str], language: str = "python") -> float:
    """Weighted Jaccard similarity of token trigrams, in [0, 1]; linear time, so cheap for all pairs."""
    pa = a if isinstance(a, Counter) else token_profile(a, language)
    pb = b if isinstance(b, Counter) else token_profile(b, language)
    if not pa and not pb:
        return 1.0
    # |A & B| by walking the smaller profile, |A | B| = |A| + |B| - |A & B|: no intermediate Counters.
    small, large = (pa, pb) if len(pa) <= len(pb) else (pb, pa)
    get = large.get
    inter = 0
    for key, count in small.items():
        other = get(key)
        if other:
            inter += count if count < other else other
    union = pa.total() + pb.total() - inter
    return inter / union if union else 0.0
