"""Benchmark: how long a VS Code user waits, from opening a Python file to the status bar saying how many models
are up, side by side with the same milestone for the bare language server, measured in the same run.

* VS Code: code-server (VS Code 1.100.3) in headless chromium with the packaged extension; per run a fresh
  user-data dir. ``open->status``: double-click on the file in the Explorer until "⚖ 1 model" shows (extension
  activation, interpreter check, server spawn, initialize, discovery, status notification, rendering).
* Bare server: ``python -m codeconductor.server`` spawned by a pygls client, ``initialize`` with the same settings, until the
  first ``codeconductor/status`` notification with models counted.
* The extension's interpreter check alone (``python -c "import sys, server, ensemble"``), which it adds before
  the spawn.

The model is one real llama.cpp server on a tiny random GGUF (tests.support), on 127.0.0.1.

    python -m bench.vscode [--json] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient
from rich.console import Console
from rich.table import Table

from tests.editors.vscode.harness import (
    ROOT,
    build_vsix,
    code_server_env,
    drive,
    install_code_server,
    start_code_server,
    user_settings,
)
from tests.support.gguf_tiny import write_tiny_gguf
from tests.support.llama_server import start_llama_server

__all__ = ["main"]

IMPORT_CHECK = "import sys, server, ensemble; sys.stdout.write('%d.%d.%d' % sys.version_info[:3])"


async def _bare_server_once(endpoint: str) -> float:
    """Seconds from spawning the server to its first status notification that counts models."""
    client = LanguageClient("bench-vscode", "0")
    seen: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    started = time.perf_counter()

    def status(params: Any) -> None:
        models = getattr(params, "models", None)
        if models is None and isinstance(params, dict):
            models = params.get("models")
        if models and not seen.done():
            seen.set_result(time.perf_counter() - started)

    def ignore(params: Any) -> None:
        return None

    client.feature("codeconductor/status")(status)
    for method in (
        lsp.WINDOW_LOG_MESSAGE,
        lsp.WINDOW_SHOW_MESSAGE,
        lsp.PROGRESS,
        lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS,
    ):
        client.feature(method)(ignore)
    options = {"endpoints": [{"url": endpoint}], "probeLocal": False, "embedded": "off", "history": False}
    await client.start_io(sys.executable, "-m", "codeconductor.server")
    try:
        await client.initialize_async(
            lsp.InitializeParams(capabilities=lsp.ClientCapabilities(), initialization_options=options)
        )
        client.initialized(lsp.InitializedParams())
        return await asyncio.wait_for(seen, 60)
    finally:
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()


def _import_check_once() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", IMPORT_CHECK], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


def run(runs: int) -> dict[str, Any]:
    binary = install_code_server()
    vsix = build_vsix()
    with tempfile.TemporaryDirectory(prefix="bench-vscode-") as tmp_name:
        tmp = Path(tmp_name)
        model = start_llama_server(write_tiny_gguf(tmp / "tiny.gguf"), alias="tiny", log_dir=tmp / "logs")
        try:
            editor: list[dict[str, float]] = []
            bare: list[float] = []
            check: list[float] = []
            for i in range(runs):
                # Interleaved, so both sides see the same machine load.
                settings = user_settings(sys.executable, [model.url])
                with start_code_server(binary, vsix, tmp / f"run{i}", settings, code_server_env(True)) as cs:
                    obs = drive(cs, tmp / f"shots{i}", "smoke", expectStatus="⚖ 1 model")
                editor.append({k: v / 1000 for k, v in obs["timings"].items()})
                bare.append(asyncio.run(_bare_server_once(model.url)))
                check.append(_import_check_once())
        finally:
            model.stop()
    open_to_status = statistics.median(e["openToStatusMs"] for e in editor)
    server_to_status = statistics.median(bare)
    return {
        "runs": runs,
        "vscode_workbench_s": statistics.median(e["workbenchMs"] for e in editor),
        "vscode_open_to_status_s": open_to_status,
        "server_spawn_to_status_s": server_to_status,
        "interpreter_check_s": statistics.median(check),
        "vscode_over_server_ratio": open_to_status / server_to_status,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.vscode", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    result = run(args.runs)
    if args.json:
        print(json.dumps(result))
        return
    table = Table(title=f"VS Code extension: open a Python file -> status bar (median of {args.runs})")
    table.add_column("milestone")
    table.add_column("seconds", justify="right")
    table.add_row("VS Code workbench loaded (page navigation -> workbench)", f"{result['vscode_workbench_s']:.2f}")
    table.add_row("VS Code: open file -> '⚖ 1 model' in the status bar", f"{result['vscode_open_to_status_s']:.2f}")
    table.add_row("bare server: spawn -> first status with models", f"{result['server_spawn_to_status_s']:.2f}")
    table.add_row("extension's interpreter check (python -c import server)", f"{result['interpreter_check_s']:.2f}")
    table.add_row("ratio VS Code / bare server", f"{result['vscode_over_server_ratio']:.2f}x")
    Console().print(table)


if __name__ == "__main__":
    main()
