"""Where the user's code lives (``codeconductor.ensemble.project``): root, module name, interpreter order, and the Pipeline's
filling of a request's project from its file. Real folders under tmp_path; nothing is run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from codeconductor.ensemble._targets import find_tests_importing
from codeconductor.ensemble.context import build_context
from codeconductor.ensemble.project import find_root, module_name, project_for, resolve_interpreter, with_project
from codeconductor.ensemble.types import Request, TaskKind


def _python(folder: Path) -> Path:
    (folder / "bin").mkdir(parents=True)
    exe = folder / "bin" / "python"
    exe.write_text("#!/bin/sh\n", encoding="utf-8")
    exe.chmod(0o755)
    return exe


def test_the_root_is_the_workspace_folder_else_the_nearest_marker(tmp_path: Path) -> None:
    (tmp_path / "proj" / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "proj" / "pyproject.toml").write_text("", encoding="utf-8")
    module = tmp_path / "proj" / "src" / "pkg" / "mod.py"
    module.write_text("x = 1\n", encoding="utf-8")
    assert find_root(module) == tmp_path / "proj"
    assert find_root(module, [tmp_path, tmp_path / "proj" / "src"]) == tmp_path / "proj" / "src"  # the innermost
    assert find_root(tmp_path / "loose.py") is None


def test_the_module_name_follows_the_packages(tmp_path: Path) -> None:
    package = tmp_path / "src" / "pkg" / "sub"
    package.mkdir(parents=True)
    for folder in (package, package.parent):
        (folder / "__init__.py").write_text("", encoding="utf-8")
    (package / "mod.py").write_text("", encoding="utf-8")
    assert module_name(tmp_path, package / "mod.py") == ("pkg.sub.mod", tmp_path / "src")
    assert module_name(tmp_path, package / "__init__.py") == ("pkg.sub", tmp_path / "src")
    assert module_name(tmp_path, tmp_path / "script.py") == ("script", tmp_path)
    assert module_name(tmp_path / "src", tmp_path / "other.py") is None  # outside the root
    assert module_name(tmp_path, tmp_path / "data.txt") is None


def test_the_interpreter_order(tmp_path: Path) -> None:
    venv = _python(tmp_path / "venv")
    dot_venv = _python(tmp_path / ".venv")
    active = _python(tmp_path / "active")
    env = {"VIRTUAL_ENV": str(tmp_path / "active")}
    assert resolve_interpreter(tmp_path, editor="/e/python", setting="/s/python", environ=env) == (
        "/e/python",
        "editor",
    )
    assert resolve_interpreter(tmp_path, setting="venv", environ=env) == (str(venv), "setting")  # a venv folder
    assert resolve_interpreter(tmp_path, environ=env) == (str(dot_venv), ".venv")
    os.remove(dot_venv)
    assert resolve_interpreter(tmp_path, environ=env) == (str(venv), "venv")
    os.remove(venv)
    assert resolve_interpreter(tmp_path, environ=env) == (str(active), "VIRTUAL_ENV")
    assert resolve_interpreter(tmp_path, environ={}) == (sys.executable, "server")


def test_the_pipeline_fills_the_project_only_when_the_lines_are_the_files(tmp_path: Path) -> None:
    (tmp_path / "setup.cfg").write_text("", encoding="utf-8")
    module = tmp_path / "mod.py"
    text = "def f(x):\n    return x + 1\n"
    module.write_text(text, encoding="utf-8")
    request = Request(task=TaskKind.IMPROVE, context=build_context(text, 0, 2, path=str(module)))
    filled = with_project(request, python_setting="/x/python")
    assert filled.context.project is not None
    assert (filled.context.project.module, filled.context.project.python) == ("mod", "/x/python")
    assert filled.context.project.module_text == text
    module.write_text("def f(x):\n    return x + 2\n", encoding="utf-8")  # the file moved on: not this code
    assert with_project(request).context.project is None
    assert project_for(module, text, root=tmp_path / "elsewhere") is None


def test_tests_importing_a_module() -> None:
    files = {
        "tests/test_a.py": "from pkg.mod import f\n\ndef test_f():\n    assert f()\n\nclass TestG:\n    pass\n",
        "tests/test_b.py": "from pkg import mod\n\ndef test_b():\n    mod.g()\n",
        "tests/test_c.py": "import pkg.other\n\ndef test_c():\n    pass\n",
        "tests/helper.py": "from pkg.mod import f\n\ndef test_not_a_test_file():\n    pass\n",
    }
    assert find_tests_importing(files, "pkg.mod") == [
        "tests/test_a.py::test_f",
        "tests/test_a.py::TestG",
        "tests/test_b.py::test_b",
    ]
    assert find_tests_importing(files, "pkg") == [
        "tests/test_a.py::test_f",
        "tests/test_a.py::TestG",
        "tests/test_b.py::test_b",
        "tests/test_c.py::test_c",
    ]
