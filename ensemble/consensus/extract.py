"""From a model's raw answer to the code the user would get: each language extracts its own
(``ensemble/languages``: the right fenced block, prose removed, a body-only answer merged with the user's
signature, ...); this module remembers the results, so an answer is read once per request.

Pure functions: no I/O, no execution.
"""

from __future__ import annotations

import functools

from ..languages import Extracted, Language, fenced_blocks, language_for

__all__ = ["Extracted", "clear_cache", "extract_code", "fenced_blocks"]


def extract_code(
    raw: str, *, context: str = "", entry_point: str | None = None, language: str | Language = "python"
) -> Extracted:
    """The code in ``raw`` (:meth:`Language.extract <codeconductor.ensemble.languages.Language.extract>` of
    ``language``, a language or its id). ``context`` is the user's code the answer is for (signature, docstring,
    helpers); ``entry_point`` the function asked for (default: the last function in ``context``).

    Results are memoised per (answer, context): the pipeline keys each answer as it arrives (quorum counting,
    while slower models are still generating), so the consensus afterwards reuses that work instead of parsing
    every answer again. ``Extracted`` is immutable, so sharing it is safe."""
    found = language_for(language) if isinstance(language, str) else language
    return _extract_cached(raw, context, entry_point, found)


def clear_cache() -> None:
    """Forget memoised extractions (benchmarks measuring a cold consensus)."""
    _extract_cached.cache_clear()


@functools.lru_cache(maxsize=1024)
def _extract_cached(raw: str, context: str, entry_point: str | None, language: Language) -> Extracted:
    return language.extract(raw, context=context, entry_point=entry_point)
