"""The engine owns no front end: nothing under ``ensemble/`` imports the language server or the command line, by
their installed names (``codeconductor.server``, ``codeconductor.cli``) or their folders' bare names, at the top of a
module or inside a function. (Each front end may import the engine; ``cli`` imports the server only to run it.)"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FRONT_ENDS = ("server", "cli")


def _front_end_imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every import in ``tree`` that names a front end."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.level == 0:
                modules = [node.module]
                if node.module == "codeconductor":  # from codeconductor import server
                    modules += [f"codeconductor.{alias.name}" for alias in node.names]
            else:  # a relative import climbing out of the engine package: from ...server import x
                modules = [node.module]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            modules = [
                arg.value for arg in node.args[:1] if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            ]
        for module in modules:
            parts = module.split(".")
            if parts[0] in FRONT_ENDS or (parts[0] == "codeconductor" and len(parts) > 1 and parts[1] in FRONT_ENDS):
                found.append((getattr(node, "lineno", 0), module))
    return found


def test_the_engine_imports_no_front_end() -> None:
    sources = sorted((ROOT / "ensemble").rglob("*.py"))
    assert len(sources) > 30  # the engine's modules were found
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in sources
        for line, module in _front_end_imports(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert offenders == []


def test_the_check_finds_each_way_of_importing_a_front_end() -> None:
    source = (
        "import codeconductor.server\n"
        "from codeconductor.cli.app import main\n"
        "from codeconductor import cli\n"
        "def f():\n    import server.app\n"
        "importlib.import_module('codeconductor.cli')\n"
        "from codeconductor import ensemble\n"
        "from .history import History\n"
    )
    assert _front_end_imports(ast.parse(source)) == [
        (1, "codeconductor.server"),
        (2, "codeconductor.cli.app"),
        (3, "codeconductor.cli"),
        (5, "server.app"),
        (6, "codeconductor.cli"),
    ]
