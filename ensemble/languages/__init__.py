"""The language layer: one module per language (a package for Python: ``python/``) behind one interface
(:class:`Language`), found by LSP ``languageId`` or file extension through one registry (:func:`language_for`).

Each language extracts its code from a model's answer (fenced or bare; prose is never code), checks syntax
(tree-sitter grammars from ``tree-sitter-language-pack``; Python keeps ``ast``), normalises code for syntactic
agreement, finds functions and the examples their comments give, and where a runtime exists runs code in the
sandbox on call expressions, returning the same outcomes for every language. Python, JavaScript and TypeScript
execute (node; esbuild strips types); Go, Rust and Java execute inside their project only (``go test``,
``cargo test``, javac and the project's test classes: ``ensemble/verify``); C and C++ are parsed but not executed.
A language also answers what the consensus and the context ask of its code (a selection as a program of its own,
why an answer is not code, whether only its documentation changed, a file's functions, stubs and imports), so
neither of them asks which language it is.
"""

from __future__ import annotations

from ._base import Block, Example, Extracted, Function, Language, fenced_blocks, generic_tokens
from ._registry import LANGUAGES, code_language, is_python, language_by_extension, language_for, supported_language_ids

__all__ = [
    "LANGUAGES",
    "Block",
    "Example",
    "Extracted",
    "Function",
    "Language",
    "code_language",
    "fenced_blocks",
    "generic_tokens",
    "is_python",
    "language_by_extension",
    "language_for",
    "supported_language_ids",
]
