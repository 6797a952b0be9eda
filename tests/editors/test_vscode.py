"""End to end in a real VS Code: code-server 4.100.3 (VS Code 1.100.3) in headless chromium, with the packaged
CodeConductor extension (.vsix) talking to the real language server (``python -m server``) and real llama.cpp
servers on loopback.

What a user sees is asserted from the editor's own DOM (status bar, code action menu, editor text, hover) by the
node playwright driver ``tests/editors/vscode/drive.cjs``; a screenshot of each step goes to
``test-results/vscode/<test>/``. ``scripts/install_code_server.sh`` installs code-server and chromium on first use.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LlamaServerFactory
from tests.support.gguf_tiny import write_tiny_gguf
from tests.support.llama_server import LlamaServer, free_port

pytestmark = [pytest.mark.editor, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "vscode-extension"
DRIVER = Path(__file__).resolve().parent / "vscode" / "drive.cjs"
SHOTS = ROOT / "test-results" / "vscode"

SAMPLE = '''def add(a, b):
    """Return the sum of a and b."""
    return a - b
'''


def _run(cmd: list[str], cwd: Path, timeout: float, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


@pytest.fixture(scope="session")
def code_server_bin() -> Path:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    out = _run(["bash", str(ROOT / "scripts" / "install_code_server.sh")], ROOT, timeout=1800)
    return Path(out.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def vsix(code_server_bin: Path) -> Path:
    """The packaged extension, rebuilt when any source is newer than it."""
    target = EXTENSION / "codeconductor.vsix"
    sources = [EXTENSION / "package.json", *EXTENSION.glob("src/*.ts")]
    if not target.exists() or max(p.stat().st_mtime for p in sources) > target.stat().st_mtime:
        _run(["npm", "run", "package"], EXTENSION, timeout=600)
    return target


@dataclass
class CodeServer:
    url: str
    folder: Path
    user_data: Path
    log: Path

    def extension_log(self) -> str:
        logs = sorted(self.user_data.glob("logs/*/exthost*/codeconductor.codeconductor/CodeConductor.log"))
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in logs[-2:]) or "<no extension log>"


def _user_settings(python: str, endpoints: list[str], extra: dict[str, Any]) -> dict[str, Any]:
    return {
        # A quiet, offline editor: no welcome page, trust prompt, telemetry, update or recommendation checks.
        "workbench.startupEditor": "none",
        "security.workspace.trust.enabled": False,
        "telemetry.telemetryLevel": "off",
        "update.mode": "none",
        "extensions.autoCheckUpdates": False,
        "extensions.autoUpdate": False,
        "extensions.ignoreRecommendations": True,
        "workbench.enableExperiments": False,
        "workbench.tips.enabled": False,
        "codeconductor.python": python,
        "codeconductor.endpoints": [{"url": url} for url in endpoints],
        "codeconductor.probeLocal": False,
        "codeconductor.embedded": "off",
        "codeconductor.history": False,
        **extra,
    }


@contextlib.contextmanager
def start_code_server(
    binary: Path, vsix: Path, tmp: Path, settings: dict[str, Any], env: dict[str, str]
) -> Iterator[CodeServer]:
    """code-server on 127.0.0.1 with a fresh user-data and extensions dir, the extension installed, stopped with
    SIGINT to its process group (SIGTERM leaves the extension host and the language server behind)."""
    user_data, extensions, folder = tmp / "user-data", tmp / "extensions", tmp / "workspace"
    for d in (user_data / "User", extensions, folder):
        d.mkdir(parents=True, exist_ok=True)
    (user_data / "User" / "settings.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")
    (folder / "sample.py").write_text(SAMPLE, encoding="utf-8")
    common = ["--user-data-dir", str(user_data), "--extensions-dir", str(extensions), "--config", str(tmp / "cs.yaml")]
    _run([str(binary), *common, "--install-extension", str(vsix)], tmp, timeout=300, env=env)
    port = free_port()
    log = tmp / "code-server.log"
    cmd = [
        str(binary), *common,
        "--bind-addr", f"127.0.0.1:{port}",
        "--auth", "none",
        "--disable-telemetry",
        "--disable-update-check",
        "--disable-workspace-trust",
        "--disable-getting-started-override",
        str(folder),
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"code-server exited ({proc.returncode}):\n{log.read_text(errors='replace')[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"code-server not up after 120 s:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.3)
        yield CodeServer(url=url, folder=folder, user_data=user_data, log=log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _env(pythonpath: bool) -> dict[str, str]:
    """code-server's environment: node on PATH, but no virtualenv, so only the configured Python is tried."""
    node_dir = str(Path(shutil.which("node") or "/usr/bin/node").parent)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join(dict.fromkeys([node_dir, "/usr/local/bin", "/usr/bin", "/bin"]))
    if pythonpath:
        env["PYTHONPATH"] = str(ROOT)  # the server package from this checkout (not pip-installed here)
    return env


def drive(cs: CodeServer, shots: Path, scenario: str, timeout: float = 600, **cfg: Any) -> dict[str, Any]:
    shutil.rmtree(shots, ignore_errors=True)
    config = {"url": cs.url, "folder": str(cs.folder), "file": "sample.py", "shots": str(shots), "scenario": scenario}
    proc = subprocess.run(
        ["node", str(DRIVER), json.dumps({**config, **cfg})],
        capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT,
    )  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    result: dict[str, Any] = json.loads(lines[-1]) if lines else {"ok": False, "error": "no output"}
    if not result.get("ok"):
        pytest.fail(
            f"driver failed: {result.get('error')}\nobservations: {json.dumps(result)[:3000]}\n"
            f"driver stderr:\n{proc.stderr[-2000:]}\nextension log:\n{cs.extension_log()}"
        )
    return result


def test_extension_activates_and_counts_models(
    code_server_bin: Path, vsix: Path, tiny_server: LlamaServer, tmp_path: Path
) -> None:
    settings = _user_settings(sys.executable, [tiny_server.url], {})
    with start_code_server(code_server_bin, vsix, tmp_path, settings, _env(pythonpath=True)) as cs:
        obs = drive(cs, SHOTS / "activation", "smoke", expectStatus="⚖ 1 model")
        log = cs.extension_log()
    assert "⚖ 1 model" in obs["statusBar"]
    assert (SHOTS / "activation" / "01-activated.png").is_file()
    assert f"{sys.executable} -m server" in log  # the configured interpreter was the one used
    assert not obs["errors"], obs["errors"]


def test_missing_server_package_is_reported_with_a_fix(
    code_server_bin: Path, vsix: Path, tmp_path: Path
) -> None:
    # An interpreter that exists but lacks the package: the user must be told, with an install button.
    bare = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"
    settings = _user_settings(bare, ["http://127.0.0.1:9"], {})
    with start_code_server(code_server_bin, vsix, tmp_path, settings, _env(pythonpath=False)) as cs:
        obs = drive(cs, SHOTS / "missing-package", "smoke", expectStatus="CodeConductor", waitNotification="not installed")
    text = " ".join(obs["notifications"])
    assert f"the server is not installed for {bare}" in text
    assert "Install in Terminal" in text
    assert "Set Python Path" in text


@pytest.mark.slow
def test_code_action_progress_edit_and_disagreement_hover(
    code_server_bin: Path,
    vsix: Path,
    smollm2_server: LlamaServer,
    llama_server_factory: LlamaServerFactory,
    tmp_path: Path,
) -> None:
    # Two real models that disagree: SmolLM2 writes the fix; a tiny random model answers noise.
    tiny = llama_server_factory(write_tiny_gguf(tmp_path / "noise.gguf", seed=7), alias="noise", n_ctx=2048)
    settings = _user_settings(
        sys.executable, [smollm2_server.url, tiny.url], {"codeconductor.maxTokens": 96, "codeconductor.timeoutS": 240}
    )
    shots = SHOTS / "code-action"
    with start_code_server(code_server_bin, vsix, tmp_path, settings, _env(pythonpath=True)) as cs:
        obs = drive(cs, shots, "full", expectStatus="⚖ 2 models", selectLines=[1, 3], timeoutMs=120000)
        edited = (cs.folder / "sample.py").read_text(encoding="utf-8")
    assert "Fix with ensemble" in obs["actions"]
    assert "Review with ensemble" in obs["actions"]
    assert obs.get("progress"), obs["errors"]
    assert "return a - b" in obs["before"]
    assert obs["after"] != obs["before"]  # the consensus edit was applied in the editor
    assert edited == SAMPLE  # ... as an unsaved edit: the file on disk is untouched
    hover = obs["hover"]
    assert "Confidence" in hover
    for name in ("smollm2", "noise"):
        assert name in hover  # one row per model in the hover's table
    assert "of 2 models agree" in hover
    for step in ("02-code-action-menu", "03-progress", "04-applied-edit", "05-disagreement-hover"):
        assert (shots / f"{step}.png").is_file()
