"""The packaged extension carries what the Open VSX registry (where Cursor installs extensions from) and the VS Code
Marketplace need, checked with the pinned ``@vscode/vsce`` itself: ``vsce ls`` lists only the bundle, the manifest,
the icon, README, licence and changelog; ``vsce package`` succeeds and the .vsix manifest names the publisher, the
licence, the repository and the icon; ``engines.vscode`` is no newer than the VS Code that Cursor is built on, and
``@types/vscode`` no newer than ``engines`` (vsce refuses that)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.editor

EXTENSION = Path(__file__).resolve().parents[2] / "vscode-extension"
VSCE = EXTENSION / "node_modules" / ".bin" / "vsce"
# Cursor tracks VS Code 1.99-1.100 (late 2025); an extension asking for a newer engine would not install there.
CURSOR_VSCODE = (1, 99, 0)


def _version(spec: str) -> tuple[int, ...]:
    found = re.search(r"(\d+)\.(\d+)\.(\d+)", spec)
    assert found is not None, spec
    return tuple(int(part) for part in found.groups())


def _vsce(*args: str) -> str:
    if shutil.which("node") is None or not VSCE.exists():
        pytest.skip("node or the extension's node modules are missing (scripts/setup.sh --dev runs npm ci)")
    proc = subprocess.run([str(VSCE), *args], cwd=EXTENSION, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, f"vsce {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_package_json_fits_cursor_and_open_vsx() -> None:
    package = json.loads((EXTENSION / "package.json").read_text(encoding="utf-8"))
    for key in ("publisher", "license", "repository", "icon", "displayName", "description", "version"):
        assert package.get(key), key
    assert (EXTENSION / package["icon"]).is_file()
    assert (EXTENSION / "LICENSE").is_file()
    engine = _version(package["engines"]["vscode"])
    assert engine <= CURSOR_VSCODE
    assert _version(package["devDependencies"]["@types/vscode"]) <= engine
    assert re.fullmatch(r"\d+\.\d+\.\d+", package["devDependencies"]["@vscode/vsce"])  # pinned
    readme = (EXTENSION / "README.md").read_text(encoding="utf-8")
    assert "Cursor" in readme
    assert "--install-extension" in readme or "Install from VSIX" in readme


def test_vsce_ls_and_package(tmp_path: Path) -> None:
    target = tmp_path / "codeconductor.vsix"
    _vsce("package", "--no-dependencies", "-o", str(target))  # runs vscode:prepublish (the bundle) first
    listed = sorted(_vsce("ls", "--no-dependencies").split())
    assert listed == sorted(
        ["package.json", "README.md", "LICENSE", "CHANGELOG.md", "media/icon.png", "dist/extension.js"]
    )
    with zipfile.ZipFile(target) as vsix:
        names = set(vsix.namelist())
        manifest = vsix.read("extension.vsixmanifest").decode("utf-8")
    assert {"extension/package.json", "extension/dist/extension.js", "extension/media/icon.png"} <= names
    assert 'Publisher="codeconductor"' in manifest
    assert "<License>extension/LICENSE.txt</License>" in manifest
    assert "<Icon>extension/media/icon.png</Icon>" in manifest
    assert 'Id="Microsoft.VisualStudio.Services.Links.Source" Value="https://github.com/' in manifest
    engine = json.loads((EXTENSION / "package.json").read_text(encoding="utf-8"))["engines"]["vscode"]
    assert f'Id="Microsoft.VisualStudio.Code.Engine" Value="{engine}"' in manifest
