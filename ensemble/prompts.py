"""Prompt generator: task-specific prompts built from the selection and its context.

PLACEHOLDER (to be extended by the language-server work): the signature of :func:`build_messages` is the
contract the pipeline relies on.
"""

from __future__ import annotations

from .types import ChatMessage, ModelInfo, Request, TaskKind

__all__ = ["build_messages"]

_SYSTEM = "You are an expert software engineer. Answer with exactly one fenced code block and nothing else."

_TASK_TEXT = {
    TaskKind.FIX: "Fix the bugs in this code.",
    TaskKind.IMPROVE: "Improve this code.",
    TaskKind.IMPLEMENT: "Implement this function.",
    TaskKind.DOCSTRING: "Add a docstring to this code.",
    TaskKind.REVIEW: "Review this code. Answer with a JSON list of findings.",
    TaskKind.ASK: "Answer the question about this code.",
    TaskKind.TESTS: "Write pytest tests for this code.",
}


def build_messages(request: Request, model: ModelInfo) -> list[ChatMessage]:
    """The messages to send ``model`` for ``request``."""
    ctx = request.context
    user = f"{_TASK_TEXT[request.task]} {request.instruction}".strip()
    user += f"\n\n```{ctx.language}\n{ctx.selection}\n```"
    return [ChatMessage(role="system", content=_SYSTEM), ChatMessage(role="user", content=user)]
