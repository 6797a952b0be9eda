"""The one registry of languages: every language id and extension is written once, in its language's module."""

from __future__ import annotations

import functools

from ._base import Language
from ._plain import Plain
from .c import C, Cpp
from .go import Go
from .java import Java
from .javascript import JavaScript, TypeScript, TypeScriptReact
from .python import Python
from .rust import Rust

__all__ = ["LANGUAGES", "code_language", "is_python", "language_by_extension", "language_for", "supported_language_ids"]

LANGUAGES: tuple[Language, ...] = (
    Python(),
    JavaScript(),
    TypeScript(),
    TypeScriptReact(),
    Go(),
    Rust(),
    Java(),
    C(),
    Cpp(),
)
# Known to editors and to language_from_path, not parsed here.
_PLAIN = (Plain("ruby", (".rb",)), Plain("lua", (".lua",)), Plain("shellscript", (".sh", ".bash")))

_BY_ID = {lang_id: lang for lang in (*LANGUAGES, *_PLAIN) for lang_id in lang.ids}
_BY_EXTENSION = {ext: lang for lang in (*LANGUAGES, *_PLAIN) for ext in lang.extensions}


def language_by_extension(path: str) -> Language | None:
    """The language a file name's extension says, or None."""
    lowered = path.lower()
    dot = lowered.rfind(".")
    if dot == -1 or "/" in lowered[dot:]:
        return None
    return _BY_EXTENSION.get(lowered[dot:])


@functools.lru_cache(maxsize=256)
def language_for(language_id: str | None = None, path: str | None = None) -> Language:
    """The language of a document: by its LSP ``languageId`` (or a fence tag), else by ``path``'s extension,
    else Python when neither is given. An id nobody knows gets a :class:`Plain` language (no syntax check)."""
    if language_id:
        found = _BY_ID.get(language_id.strip().lower())
        if found is not None:
            return found
    if path:
        found = language_by_extension(path)
        if found is not None:
            return found
    if language_id and language_id.strip():
        return Plain(language_id.strip().lower())
    return LANGUAGES[0]


def code_language(language_id: str | None, path: str | None = None) -> Language:
    """The language whose rules read a request's code: its id's (the path's where nobody knows the id), and
    Python where no id is given, whatever the path says (what every front end sends by default)."""
    if not (language_id and language_id.strip()):
        return LANGUAGES[0]
    return language_for(language_id, path)


def is_python(language_id: str | None) -> bool:
    return language_for(language_id).name == "python"


def supported_language_ids() -> tuple[str, ...]:
    """The LSP languageIds editors should activate for: the canonical one of each parsed language, plus the
    React variants editors use for JSX."""
    return (
        "python",
        "javascript",
        "javascriptreact",
        "typescript",
        "typescriptreact",
        "go",
        "rust",
        "java",
        "c",
        "cpp",
    )
