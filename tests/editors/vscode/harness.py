"""Run a real VS Code (code-server) with the packaged CodeConductor extension and drive it with headless chromium:
install (``scripts/install_code_server.sh``), package the .vsix, start code-server on 127.0.0.1 with fresh
user-data and extensions dirs, run ``drive.cjs`` and return its observations. Used by the end-to-end test
(``tests/editors/test_vscode.py``) and the benchmark (``bench/vscode.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.llama_server import free_port

__all__ = [
    "DRIVER",
    "EXTENSION",
    "ROOT",
    "SAMPLE",
    "CodeServer",
    "HarnessError",
    "build_vsix",
    "code_server_env",
    "drive",
    "install_code_server",
    "start_code_server",
    "user_settings",
]

ROOT = Path(__file__).resolve().parents[3]
EXTENSION = ROOT / "vscode-extension"
DRIVER = Path(__file__).resolve().parent / "drive.cjs"

SAMPLE = '''def add(a, b):
    """Return the sum of a and b."""
    return a - b
'''


class HarnessError(RuntimeError):
    """A step of the editor harness failed; the message carries the logs that say why."""


def _run(cmd: list[str], cwd: Path, timeout: float, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    if proc.returncode != 0:
        raise HarnessError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def install_code_server() -> Path:
    """Install code-server, chromium and the extension's node modules (idempotent); the code-server binary."""
    out = _run(["bash", str(ROOT / "scripts" / "install_code_server.sh")], ROOT, timeout=1800)
    return Path(out.strip().splitlines()[-1])


def build_vsix() -> Path:
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


def user_settings(python: str, endpoints: list[str], extra: dict[str, Any] | None = None) -> dict[str, Any]:
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
        **(extra or {}),
    }


def code_server_env(pythonpath: bool) -> dict[str, str]:
    """code-server's environment: node on PATH, but no virtualenv, so only the configured Python is tried."""
    node_dir = str(Path(shutil.which("node") or "/usr/bin/node").parent)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join(dict.fromkeys([node_dir, "/usr/local/bin", "/usr/bin", "/bin"]))
    if pythonpath:
        env["PYTHONPATH"] = str(ROOT)  # the server package from this checkout (it is not pip-installed)
    return env


@contextlib.contextmanager
def start_code_server(
    binary: Path, vsix: Path, tmp: Path, settings: dict[str, Any], env: dict[str, str]
) -> Iterator[CodeServer]:
    """code-server on 127.0.0.1 with a fresh user-data and extensions dir and the extension installed; stopped with
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
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise HarnessError(
                    f"code-server exited ({proc.returncode}):\n{log.read_text(errors='replace')[-3000:]}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise HarnessError(f"code-server not up after 120 s:\n{log.read_text(errors='replace')[-3000:]}")
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


def drive(cs: CodeServer, shots: Path, scenario: str, timeout: float = 600, **cfg: Any) -> dict[str, Any]:
    """Run one driver scenario against ``cs``; its observations (raises :class:`HarnessError` when it failed)."""
    shutil.rmtree(shots, ignore_errors=True)
    config = {"url": cs.url, "folder": str(cs.folder), "file": "sample.py", "shots": str(shots), "scenario": scenario}
    proc = subprocess.run(
        ["node", str(DRIVER), json.dumps({**config, **cfg})],
        capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT,
    )  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    result: dict[str, Any] = json.loads(lines[-1]) if lines else {"ok": False, "error": "no output"}
    if not result.get("ok"):
        raise HarnessError(
            f"driver failed: {result.get('error')}\nobservations: {json.dumps(result)[:3000]}\n"
            f"driver stderr:\n{proc.stderr[-2000:]}\nextension log:\n{cs.extension_log()}"
        )
    return result
