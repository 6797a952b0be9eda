"""The whole path on real llama.cpp servers (two servers on a tiny random model: junk text, but real HTTP,
streaming and timing): a run reports progress per model, returns an honest result, and the edit, if any,
goes through the version-checked path; review and hover work on whatever the models said."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from tests.support.llama_server import LlamaServer, llama_servers
from tests.support.lsp_client import BUGGY, command, editor_of, progress_of, span

pytestmark = pytest.mark.timeout(240)

URI = "file:///tmp/codeconductor-lsp-tests/real.py"


@pytest.fixture(scope="module")
def llama_pair(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[LlamaServer]]:
    # The tiny vocabulary is one token per byte: room for the prompt with its context.
    with llama_servers(
        tiny_gguf, ("tiny-lsp-a", "tiny-lsp-b"), n_ctx=4096, log_dir=tmp_path_factory.mktemp("llama")
    ) as started:
        yield started


@pytest.fixture
def lsp_settings(llama_pair: list[LlamaServer]) -> dict[str, Any]:
    return {
        "endpoints": [{"url": s.url, "kind": "openai"} for s in llama_pair],
        "probeLocal": False,
        "embedded": "off",
        "verify": False,
        "history": False,
        "maxTokens": 12,
        "temperature": 0,
        "timeoutS": 60,
        "deadlineS": 120,
    }


async def test_run_on_real_servers(client: LanguageClient) -> None:
    editor = editor_of(client)
    editor.open(URI, BUGGY)
    reply = await command(client, "codeconductor.run", {"uri": URI, "range": span(3, 5), "task": "fix", "version": 1})
    assert reply["status"] in ("applied", "noConsensus", "noEdit")
    answers = reply["result"]["answers"]
    assert sorted(a["model"]["name"] for a in answers) == ["tiny-lsp-a", "tiny-lsp-b"]
    assert all(a["status"] == "answered" for a in answers)
    assert all(a["latency_s"] is not None for a in answers)
    # One progress report per model, ending at 2/2.
    token = next(t for t in client.progress_reports if str(t).startswith("codeconductor-"))
    reports = [v.message for v in progress_of(client, token) if isinstance(v, lsp.WorkDoneProgressReport)]
    assert reports[-1] == "2/2 models answered"
    if reply["status"] == "applied":
        (edit,) = editor.applied
        assert edit.label == reply["label"]
        hover = await client.text_document_hover_async(
            lsp.HoverParams(text_document=lsp.TextDocumentIdentifier(uri=URI), position=lsp.Position(3, 1))
        )
        assert hover is not None
        assert isinstance(hover.contents, lsp.MarkupContent)
        assert "tiny-lsp-a" in hover.contents.value
    else:
        assert editor.applied == []
        assert editor.texts[URI] == BUGGY


async def test_models_listed_from_real_servers(client: LanguageClient) -> None:
    listed = await command(client, "codeconductor.listModels")
    assert sorted(m["name"] for m in listed["models"]) == ["tiny-lsp-a", "tiny-lsp-b"]
