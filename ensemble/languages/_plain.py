"""A language this layer knows only by name (Ruby, Lua, shell, anything else an editor sends): no parser, so no
syntax check and no execution; extraction takes the block fenced with its tag (or an untagged one), and
agreement compares tokens without comments."""

from __future__ import annotations

from ._base import Extracted, Function, Language, fenced_blocks

__all__ = ["Plain"]


class Plain(Language):
    checks_syntax = False
    extensions = ()

    def __init__(self, language_id: str, extensions: tuple[str, ...] = ()) -> None:
        self.name = language_id  # type: ignore[misc]
        self.ids = (language_id,)  # type: ignore[misc]
        self.extensions = extensions  # type: ignore[misc,assignment]

    def parses(self, code: str) -> bool:
        return bool(code.strip())  # unknown: not checked

    def extract(self, raw: str, *, context: str = "", entry_point: str | None = None) -> Extracted:
        blocks = fenced_blocks(raw)
        if not blocks:
            return Extracted(raw.strip() + "\n" if raw.strip() else "", self.name, parseable=True)
        matching = [body for tag, body in blocks if tag == self.name] or [body for tag, body in blocks if not tag]
        body = max(matching or [b for _, b in blocks], key=len)
        return Extracted(body.strip("\n") + "\n", self.name, parseable=True, notes=("fenced",))

    def normalize(self, code: str) -> str:
        return " ".join(self.tokens(code))

    def functions(self, code: str) -> list[Function]:
        return []
