"""A real editor: headless Neovim (0.7+), configured by the README's snippet, starts the language server, lists
code actions, runs "Fix with ensemble" — a preview, since Neovim has no change annotations: the edit waits in the
code actions — rejects it (nothing changes), runs it again and accepts it (applied through Neovim's own
``workspace/applyEdit`` handler) and reads the hover. The Lua script exits non-zero on any failure. Models: the fault server's fixed-answer models (the editor, not the
models, is under test here). The README's ``codeconductor serve`` is the console script of a virtual environment
that imports this checkout (:mod:`tests.support.checkout_python`), and the project Neovim opens has its own
``server.py``, ``server/``, ``ensemble/`` and ``codeconductor/`` (:mod:`tests.support.shadow`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.checkout_python import checkout_venv
from tests.support.fault_server import FaultServer
from tests.support.shadow import write_shadowing_modules

pytestmark = [
    pytest.mark.editor,
    pytest.mark.skipif(shutil.which("nvim") is None, reason="Neovim is not installed (apt-get install neovim)"),
]

SCRIPT = Path(__file__).parent / "neovim" / "run.lua"
README = Path(__file__).resolve().parents[2] / "README.md"
SNIPPET_CMD = '{ "codeconductor", "serve" }'
SNIPPET_OPTIONS = '{ apply = "preview" }'


def readme_config() -> str:
    """The Neovim configuration shown in README.md, pointed at this checkout's server and the test's models (its
    own settings, ``apply = "preview"``, are kept)."""
    text = README.read_text(encoding="utf-8")
    block = text.split("<!-- neovim-config -->", 1)[1].split("```lua\n", 1)[1].split("```", 1)[0]
    assert SNIPPET_CMD in block
    assert SNIPPET_OPTIONS in block
    block = block.replace(SNIPPET_CMD, 'vim.fn.json_decode(os.getenv("CC_SERVER_CMD"))')
    return block.replace(
        SNIPPET_OPTIONS,
        f'vim.tbl_extend("force", vim.fn.json_decode(os.getenv("CC_INIT_OPTIONS")), {SNIPPET_OPTIONS})',
    )


BUGGY = "import os\n\n\ndef add(a, b):\n    return a - b\n"
FIXED = "def add(a, b):\n    return a + b\n"


def test_neovim_readme_config_preview_reject_accept_hover(fault_server: FaultServer, tmp_path: Path) -> None:
    for name in ("ok-nvim-a", "ok-nvim-b"):
        fault_server.add_model(name, text=f"```python\n{FIXED}```\n")
    project = write_shadowing_modules(tmp_path / "project")  # Neovim's cwd and root_dir
    path = project / "calc.py"
    path.write_text(BUGGY)
    codeconductor = checkout_venv(tmp_path / "venv") / "codeconductor"
    options = {
        "endpoints": [{"url": fault_server.url, "kind": "openai"}],
        "probeLocal": False,
        "embedded": "off",
        "includeModels": ["ok-nvim-*"],
        "verify": False,
        "history": False,
    }
    env = {
        **{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        "CC_SERVER_CMD": json.dumps([str(codeconductor), "serve"]),
        "CC_INIT_OPTIONS": json.dumps(options),
        "CC_FILE": str(path),
        "CC_EXPECT": "return a + b",
        "XDG_STATE_HOME": str(tmp_path / "state"),  # Neovim's LSP log stays in the test's folder
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    init = tmp_path / "init.lua"
    init.write_text(readme_config(), encoding="utf-8")
    proc = subprocess.run(
        ["nvim", "--headless", "--noplugin", "-n", "-i", "NONE", "-u", str(init), "-c", f"luafile {SCRIPT}"],
        env=env,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, f"Neovim failed:\n{proc.stderr}\n{proc.stdout}"
    assert "SHADOW" not in proc.stdout + proc.stderr
    # No change annotations in Neovim: the fix waits in the code actions; reject keeps the text, accept applies.
    assert "run status: preview, preview: codeAction" in proc.stderr
    assert "waiting actions: Accept: Apply consensus (2/2 models" in proc.stderr
    assert "| Reject the ensemble's suggestion" in proc.stderr
    assert "reject status: rejected" in proc.stderr
    assert "accept status: applied" in proc.stderr
    assert "Fix with ensemble" in proc.stderr
    assert "hover ok" in proc.stderr
    # Neovim applied the edit to its buffer (the file on disk is untouched: nothing saved it).
    assert path.read_text() == BUGGY
