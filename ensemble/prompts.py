"""Prompt generator: the task-specific prompts each model receives for a request.

A prompt gives the model what an expert reviewer would want next to the selection (the file's imports, the
enclosing class or function signature, the lines around it) and asks for an output the consensus can parse:
exactly one fenced code block holding the complete replacement for the selection, or, for reviews, a strict JSON
list of findings ``[{"line": <1-based line within the selection>, "severity": "error|warning|info|hint",
"message": str, "fix": str|null}]``. Base models (``ModelInfo.chat`` False) get a code-completion prompt instead:
the file context written as a source file, ending where the model should continue.

In-process (embedded) chat models also get their answer started for them: a trailing assistant message holding an
opened code fence, which their provider continues. Together with :func:`answer_end` this is what lets a small
model stop as soon as its answer is complete (the closing fence, the end of the function body) instead of
writing until ``max_tokens``.
"""

from __future__ import annotations

import enum
import re

from .types import ChatMessage, CodeContext, ModelInfo, Request, TaskKind

__all__ = ["REVIEW_SCHEMA", "AnswerShape", "answer_end", "answer_shape", "build_messages", "build_prompt_text"]

REVIEW_SCHEMA = (
    '[{"line": <1-based line number within the code under review>, '
    '"severity": "error" | "warning" | "info" | "hint", "message": "<what is wrong and why>", '
    '"fix": "<replacement code for that line>" | null}]'
)

_SYSTEM_CODE = (
    "You are an expert software engineer working inside the user's editor. "
    "Answer with exactly one fenced code block containing the complete replacement for the code you are given, "
    "and nothing else: no explanations before or after it."
)
_SYSTEM_REVIEW = (
    "You are an expert code reviewer. Answer with a strict JSON list of findings and nothing else: "
    f"{REVIEW_SCHEMA}. Answer [] when the code has no problem. Report real bugs first; no style nitpicks."
)
_SYSTEM_ASK = "You are an expert software engineer. Answer the user's question about their code briefly and precisely."

_TASK_TEXT = {
    TaskKind.FIX: (
        "Fix the bugs in the code below. Keep its names, signature and intended behaviour; change only what is wrong."
    ),
    TaskKind.IMPROVE: (
        "Improve the code below: clearer, simpler, more robust, idiomatic. Keep its names, signature and behaviour."
    ),
    TaskKind.IMPLEMENT: (
        "Implement the function below. Its signature, docstring and comments say what it must do; keep them, "
        "replace the placeholder body with a working implementation."
    ),
    TaskKind.DOCSTRING: (
        "Add a concise docstring (what it does, arguments, return value, errors) to the code below. "
        "Do not change the code itself."
    ),
    TaskKind.REVIEW: "Review the code below for bugs, errors in edge cases and risky constructs.",
    TaskKind.ASK: "Answer the question about the code below.",
    TaskKind.TESTS: "Write pytest tests for the code below, covering normal cases and edge cases.",
}

# For base models: a comment introducing the code the completion should produce.
_COMPLETION_LEAD = {
    TaskKind.FIX: "The same code with its bugs fixed",
    TaskKind.IMPROVE: "The same code, improved",
    TaskKind.IMPLEMENT: "The complete implementation",
    TaskKind.DOCSTRING: "The same code with a docstring",
    TaskKind.REVIEW: "Review findings as JSON",
    TaskKind.ASK: "Answer",
    TaskKind.TESTS: "pytest tests for the code above",
}

_CHARS_PER_TOKEN = 3  # a conservative average for code, used only to keep prompts inside small context windows


def _fence(code: str, language: str) -> str:
    # A longer fence when the code itself contains one, so the block stays well-formed.
    fence = "````" if "```" in code else "```"
    return f"{fence}{language}\n{code}\n{fence}"


def _numbered(code: str) -> str:
    return "\n".join(f"{i:>4} | {line}" for i, line in enumerate(code.splitlines(), start=1))


def _trim(ctx: CodeContext, model: ModelInfo, max_tokens_out: int = 512) -> CodeContext:
    """Drop surrounding lines (farthest first) so the prompt fits the model's context window, when known."""
    if not model.context_length:
        return ctx
    budget = max(0, (model.context_length - max_tokens_out) * _CHARS_PER_TOKEN - len(ctx.selection) - 600)
    if len(ctx.before) + len(ctx.after) + len(ctx.imports) <= budget:
        return ctx
    before_room = budget * 2 // 3
    # Cut at line boundaries, keeping the lines nearest to the selection.
    before = (
        ctx.before[len(ctx.before) - before_room :].partition("\n")[2] if len(ctx.before) > before_room else ctx.before
    )
    after = ctx.after[: max(0, budget - len(before))].rpartition("\n")[0]
    imports = ctx.imports[: max(0, budget // 4)]
    return ctx.model_copy(update={"before": before, "after": after, "imports": imports})


def build_prompt_text(request: Request, model: ModelInfo) -> str:
    """The user message for chat models: task, context, the code, and the answer format."""
    ctx = _trim(request.context, model)
    lang = ctx.language
    parts = [_TASK_TEXT[request.task]]
    if request.instruction.strip():
        label = "Question" if request.task is TaskKind.ASK else "Additional instruction"
        parts.append(f"{label}: {request.instruction.strip()}")
    if ctx.path:
        parts.append(f"File: {ctx.path} ({lang})")
    if ctx.imports.strip():
        parts.append("Imports of the file:\n" + _fence(ctx.imports, lang))
    if ctx.enclosing:
        parts.append("The code sits inside:\n" + _fence(ctx.enclosing, lang))
    if ctx.before.strip():
        parts.append("Code above it (context only, do not repeat it):\n" + _fence(ctx.before, lang))
    if ctx.selection.strip():
        if request.task is TaskKind.REVIEW:
            parts.append("Code under review, with line numbers:\n" + _fence(_numbered(ctx.selection), lang))
        else:
            where = f" (lines {ctx.start_line + 1}-{ctx.end_line})" if ctx.end_line > ctx.start_line else ""
            parts.append(f"The code{where}:\n" + _fence(ctx.selection, lang))
    if ctx.after.strip():
        parts.append("Code below it (context only, do not repeat it):\n" + _fence(ctx.after, lang))
    if request.task is TaskKind.REVIEW:
        parts.append(
            "Answer with a strict JSON list and nothing else, one object per problem: "
            f"{REVIEW_SCHEMA}. Use [] when there is no problem."
        )
    elif request.task is TaskKind.ASK:
        parts.append("Answer in a few sentences; use a fenced code block only when code makes the answer clearer.")
    elif request.task is TaskKind.TESTS:
        parts.append("Answer with exactly one fenced code block containing the complete test module, nothing else.")
    else:
        parts.append(
            "Answer with exactly one fenced code block containing the complete replacement for the code "
            "(all of it, not a diff), and nothing else."
        )
    return "\n\n".join(parts)


def _completion_prompt(request: Request, model: ModelInfo) -> str:
    """A source file the base model continues: context, the code, then a comment and an opened fence."""
    ctx = _trim(request.context, model)
    comment = "//" if ctx.language not in ("python", "ruby", "shellscript") else "#"
    lines: list[str] = []
    if ctx.path:
        lines.append(f"{comment} file: {ctx.path}")
    if ctx.imports.strip():
        lines.append(ctx.imports)
    if ctx.before.strip():
        lines.append(ctx.before)
    if request.task is TaskKind.IMPLEMENT:
        # The file context, then the signature (with docstring): the model writes the body.
        lines.append(ctx.selection.rstrip())
        return "\n".join(lines) + "\n"
    lines.append(ctx.selection)
    if request.instruction.strip():
        lines.append(f"{comment} {request.instruction.strip()}")
    lines.append(f"{comment} {_COMPLETION_LEAD[request.task]}:")
    lines.append("```" + ("json" if request.task is TaskKind.REVIEW else ctx.language))
    return "\n".join(lines) + "\n"


def build_messages(request: Request, model: ModelInfo) -> list[ChatMessage]:
    """The messages to send ``model`` for ``request`` (one user message holding a completion prompt for base
    models, which their provider sends as the raw prompt). Its provider may adjust them
    (:func:`codeconductor.ensemble.providers.registry.messages_for`)."""
    if not model.chat:
        return [ChatMessage(role="user", content=_completion_prompt(request, model))]
    if request.task is TaskKind.REVIEW:
        system = _SYSTEM_REVIEW
    elif request.task is TaskKind.ASK:
        system = _SYSTEM_ASK
    else:
        system = _SYSTEM_CODE
    return [
        ChatMessage(role="system", content=system),
        ChatMessage(role="user", content=build_prompt_text(request, model)),
    ]


# -- where an answer ends -------------------------------------------------------------------------------------

_OPEN_FENCE_AT_END = re.compile(r"(?:^|\n)[ \t]*(`{3,}|~{3,})[\w+#.-]*[ \t]*\n\Z")
_BODY_AT_END = re.compile(r"(?:^|\n)(?:[ \t]+\S[^\n]*|[ \t]*(?:async[ \t]+)?def [^\n]*:[ \t]*)\n\Z")


class AnswerShape(enum.Enum):
    """What the model is writing, judged from the end of its prompt."""

    FENCED = "fenced"  # code inside a fence the prompt (or the started answer) opened: ends at the closing fence
    BODY = "body"  # the body of a function whose signature ends the prompt: ends at the first unindented line
    FREE = "free"  # anything else: the model decides (end-of-text token or ``max_tokens``)


def answer_shape(prompt: str) -> AnswerShape:
    """The shape of the answer that continues ``prompt`` (the full text the model sees, answer start included)."""
    if _OPEN_FENCE_AT_END.search(prompt):
        return AnswerShape.FENCED
    if _BODY_AT_END.search(prompt):
        return AnswerShape.BODY
    return AnswerShape.FREE


def answer_end(shape: AnswerShape, text: str) -> int | None:
    """Where the answer ``text`` (so far) is complete: the length of the part to keep, or None while it is not.

    FENCED: at the first line that starts with a code fence (the fence itself is not kept). BODY: at the first
    non-blank line that starts in column 0 after at least one indented line (the next top-level statement: the
    function is finished). Pure and cheap, so it can be asked after every streamed token; a line is judged as
    soon as its first character is known.
    """
    if shape is AnswerShape.FREE:
        return None
    start = 0
    seen_body = False
    while start <= len(text):
        end = text.find("\n", start)
        line = text[start:] if end < 0 else text[start:end]
        stripped = line.lstrip(" \t")
        if shape is AnswerShape.FENCED:
            if stripped.startswith(("```", "~~~")):
                return start
        elif line[:1] not in ("", " ", "\t"):
            if seen_body:
                return start
        elif stripped:
            seen_body = True
        if end < 0:
            return None
        start = end + 1
    return None
