"""A real editor: headless Neovim (0.7+) starts the language server, lists code actions, runs "Fix with
ensemble", applies the server's edit through its own ``workspace/applyEdit`` handler and reads the hover. The
Lua script exits non-zero on any failure. Models: the fault server's fixed-answer models (the editor, not the
models, is under test here)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fault_server import FaultServer

pytestmark = [
    pytest.mark.editor,
    pytest.mark.skipif(shutil.which("nvim") is None, reason="Neovim is not installed (apt-get install neovim)"),
]

SCRIPT = Path(__file__).parent / "neovim" / "run.lua"
BUGGY = "import os\n\n\ndef add(a, b):\n    return a - b\n"
FIXED = "def add(a, b):\n    return a + b\n"


def test_neovim_fix_apply_hover(fault_server: FaultServer, tmp_path: Path) -> None:
    for name in ("ok-nvim-a", "ok-nvim-b"):
        fault_server.add_model(name, text=f"```python\n{FIXED}```\n")
    path = tmp_path / "calc.py"
    path.write_text(BUGGY)
    options = {
        "endpoints": [{"url": fault_server.url, "kind": "openai"}],
        "probeLocal": False,
        "embedded": "off",
        "includeModels": ["ok-nvim-*"],
        "verify": False,
        "history": False,
    }
    env = {
        **os.environ,
        "CC_SERVER_CMD": json.dumps([sys.executable, "-m", "server"]),
        "CC_INIT_OPTIONS": json.dumps(options),
        "CC_FILE": str(path),
        "CC_EXPECT": "return a + b",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "XDG_STATE_HOME": str(tmp_path / "state"),  # Neovim's LSP log stays in the test's folder
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    proc = subprocess.run(
        ["nvim", "--headless", "--noplugin", "-n", "-i", "NONE", "-u", "NONE", "-c", f"luafile {SCRIPT}"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, f"Neovim failed:\n{proc.stderr}\n{proc.stdout}"
    assert "run status: applied" in proc.stderr
    assert "Fix with ensemble" in proc.stderr
    assert "hover ok" in proc.stderr
    # Neovim applied the edit to its buffer (the file on disk is untouched: nothing saved it).
    assert path.read_text() == BUGGY
