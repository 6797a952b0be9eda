"""The import names the build installs: pyproject maps the folders ``ensemble/``, ``server/`` and ``cli/`` to
``codeconductor.ensemble``, ``codeconductor.server`` and ``codeconductor.cli`` (setuptools ``package-dir``), and
``codeconductor/`` links to them so a checkout imports its own files under the same names. Every package folder must be in the wheel, nothing
may import the folders by their bare names (a second copy of every module, and a name a user's ``server.py``
shadows), and the versions the editor extension and the server's handshake compare must agree.

The wheel itself, installed outside the repository, is tested in ``tests/integration/test_wheel.py``.
"""

from __future__ import annotations

import ast
import itertools
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import codeconductor
import codeconductor.cli
import codeconductor.ensemble
import codeconductor.server

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("ensemble", "server", "cli")
SOURCES = ("ensemble", "server", "cli", "tests", "bench", "scripts")


def _setuptools() -> dict[str, object]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    section: dict[str, object] = config["tool"]["setuptools"]
    return section


def test_every_package_folder_is_installed_under_codeconductor() -> None:
    found = {
        ".".join(("codeconductor", *init.parent.relative_to(ROOT).parts))
        for folder in FOLDERS
        for init in (ROOT / folder).rglob("__init__.py")
    }
    setuptools = _setuptools()
    assert set(setuptools["packages"]) == {"codeconductor", *found}  # type: ignore[call-overload]
    assert setuptools["package-dir"] == {f"codeconductor.{folder}": folder for folder in FOLDERS}


def test_the_checkout_imports_the_folders_through_its_links() -> None:
    for folder in FOLDERS:
        link = ROOT / "codeconductor" / folder
        assert link.is_symlink(), link
        assert link.resolve() == (ROOT / folder).resolve()
    assert Path(codeconductor.ensemble.__file__ or "").resolve() == ROOT / "ensemble" / "__init__.py"
    assert Path(codeconductor.server.__file__ or "").resolve() == ROOT / "server" / "__init__.py"
    assert Path(codeconductor.cli.__file__ or "").resolve() == ROOT / "cli" / "__init__.py"


def _bare_names(tree: ast.AST) -> list[tuple[int, str]]:
    """Imports of the folders by their bare names, and ``"-m", "codeconductor.server"`` argument pairs."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.List | ast.Tuple | ast.Call):
            items = node.args if isinstance(node, ast.Call) else node.elts
            values = [item.value if isinstance(item, ast.Constant) else None for item in items]
            names = [str(b) for a, b in itertools.pairwise(values) if a == "-m" and isinstance(b, str)]
        found += [(getattr(node, "lineno", 0), name) for name in names if name.split(".")[0] in FOLDERS]
    return found


def test_nothing_imports_the_folders_by_their_bare_names() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for folder in SOURCES
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line, name in _bare_names(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert offenders == []


def test_the_bare_name_check_finds_what_it_looks_for() -> None:
    engine, front, _ = FOLDERS  # spelled through variables: the names must not be literal in this file
    source = f'import {front}\nfrom {engine}.cli import main\nrun([python, "-m", "{front}"])\nfrom codeconductor import {engine}\n'
    assert _bare_names(ast.parse(source)) == [(1, front), (2, f"{engine}.cli"), (3, front)]


def test_the_extension_and_the_server_have_one_version() -> None:
    package = json.loads((ROOT / "vscode-extension" / "package.json").read_text(encoding="utf-8"))
    assert package["version"] == codeconductor.__version__
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert config["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "codeconductor.__version__"}


def test_handshake_names_the_distribution_version_and_interpreter(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "codeconductor.server", "--handshake"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["name"] == "codeconductor"
    assert answer["version"] == codeconductor.__version__
    assert answer["executable"] == sys.executable
    assert answer["python"] == ".".join(map(str, sys.version_info[:3]))
