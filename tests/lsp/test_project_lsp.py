"""Through the language server (issue 23): a code action's run on a function of a real project (made under the
client's workspace by :mod:`tests.support.projects`, with its own venv and a dependency installed there) runs the
answers in that project with the interpreter the editor names (``projectPython``, which the VS Code extension
fills from the Python extension), on the buffer's text, unsaved changes included. Models: the loopback fake
with chosen answers (:mod:`tests.support.fault_server`)."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_lsp import LanguageClient

from tests.integration.test_project_verify import TOTAL_MUTANT, TOTAL_RIGHT
from tests.support.fault_server import FaultServer
from tests.support.lsp_client import WORKSPACE, command, editor_of, fenced, settings_for, span
from tests.support.projects import PRICING, make_shop

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def shop_project() -> Iterator[Path]:
    folder = WORKSPACE / f"shopproj-{uuid.uuid4().hex[:8]}"
    try:
        yield make_shop(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(folder.parent / f"{folder.name}-tinymoney", ignore_errors=True)


@pytest.fixture
def lsp_settings(fault_server: FaultServer, shop_project: Path) -> dict[str, Any]:
    fault_server.add_model("proj-good", text=fenced(TOTAL_RIGHT))
    fault_server.add_model("proj-bad", text=fenced(TOTAL_MUTANT))
    python = shop_project.parent.parent / ".venv" / "bin" / "python"
    return settings_for(
        fault_server.url, ["proj-good", "proj-bad"], verify=True, projectPython=str(python), apply="never"
    )


async def test_improve_runs_the_answers_in_the_project(client: LanguageClient, shop_project: Path) -> None:
    editor = editor_of(client)
    uri = shop_project.as_uri()
    text = PRICING  # what make_shop wrote
    lines = text.splitlines()
    start = lines.index("def total(items):")
    end = lines.index("def normalise(names):") - 2
    editor.open(uri, text)
    reply = await command(
        client, "codeconductor.run", {"uri": uri, "range": span(start, end), "task": "improve", "version": 1}
    )
    consensus = reply["result"]["consensus"]
    assert "sum(" in consensus["pick"], consensus
    assert any("run in your project" in n for n in consensus["notes"]), consensus["notes"]
    rejected = [c["rejected"] for c in consensus["clusters"] if c["rejected"]]
    assert len(rejected) == 1, rejected
    assert "of your tests" in rejected[0], rejected
    on_disk = await asyncio.to_thread(shop_project.read_text, encoding="utf-8")
    assert on_disk == text  # nothing written to the user's files
