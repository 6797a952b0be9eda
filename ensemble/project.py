"""Where the user's code lives: its project's root, the Python interpreter that runs it, and the name its module
is imported by. Decided the same way in the editor and on the command line; nothing here runs anything (the
interpreter's ``sys.path`` is read inside the sandbox, by :mod:`codeconductor.ensemble.verify.project`).

Root: the workspace folder the editor reports (the one holding the file), else the nearest folder above the file
with ``pyproject.toml``, ``setup.py``, ``setup.cfg`` or ``.git``. Interpreter, first found wins: the one the
editor reports for that folder, the user's ``python`` setting, ``.venv``/``venv`` in the root, ``$VIRTUAL_ENV``,
else this process's own.

Go: the root is the nearest folder above the file with ``go.mod`` (the module), the package is the file's folder
and its import path the module's path joined with that folder; the server's ``go`` toolchain runs it
(:mod:`codeconductor.ensemble.verify.go_project`). JavaScript: the root is the nearest folder above the file with
``package.json``; the project's ``node --test`` tests run it (:mod:`codeconductor.ensemble.verify.js_project`). Rust: the
package is the nearest folder above the file with a ``Cargo.toml`` that has ``[package]``, the root its workspace's
folder when one above lists it; ``cargo test`` runs it (:mod:`codeconductor.ensemble.verify.rust_project`). Java: the source
root is the folder the file's ``package`` declaration names, the root the nearest folder above it with a build file
or ``.git`` (else the folder holding ``src/``); javac and the project's test classes run it
(:mod:`codeconductor.ensemble.verify.java_project`).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from .languages import is_python, language_for
from .languages.rust import cargo_toml
from .types import ProjectInfo, Request

__all__ = [
    "find_root",
    "go_project_for",
    "java_project_for",
    "module_name",
    "project_for",
    "resolve_interpreter",
    "runs_in_project",
    "rust_project_for",
    "with_project",
]

_OWN_FILES = Path(__file__).resolve().parent  # this package's own files are never the user's project

_ROOT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")
_VENV_NAMES = (".venv", "venv")


def find_root(path: Path, workspace_folders: Sequence[Path] = ()) -> Path | None:
    """The project root of the file at ``path``: the innermost workspace folder holding it, else the nearest
    folder above it with a project marker; None when there is neither."""
    path = path.resolve()
    holding = [f.resolve() for f in workspace_folders if path.is_relative_to(f.resolve())]
    if holding:
        return max(holding, key=lambda f: len(f.parts))
    for folder in path.parents:
        if any((folder / marker).exists() for marker in _ROOT_MARKERS):
            return folder
    return None


def _venv_python(folder: Path) -> Path | None:
    for name in ("python", "python3"):
        candidate = folder / "bin" / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def resolve_interpreter(
    root: Path,
    *,
    editor: str | None = None,
    setting: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """The project's interpreter (an absolute path, not resolved: a venv's ``python`` is a link that must stay
    one) and where it came from: ``editor``, ``setting``, ``.venv``, ``venv``, ``VIRTUAL_ENV`` or ``server``."""
    env = os.environ if environ is None else environ
    for value, source in ((editor, "editor"), (setting, "setting")):
        if value and value.strip():
            chosen = Path(value.strip()).expanduser()
            if not chosen.is_absolute():
                chosen = root / chosen
            if chosen.is_dir():  # a virtual environment's folder
                chosen = _venv_python(chosen) or chosen
            return str(chosen), source
    for name in _VENV_NAMES:
        found = _venv_python(root / name)
        if found is not None:
            return str(found), name
    virtual_env = env.get("VIRTUAL_ENV", "").strip()
    if virtual_env:
        found = _venv_python(Path(virtual_env))
        if found is not None:
            return str(found), "VIRTUAL_ENV"
    return sys.executable, "server"


def module_name(root: Path, path: Path) -> tuple[str, Path] | None:
    """The dotted name ``path`` is imported by, and the folder that must be on ``sys.path`` for that name: the
    packages (folders with ``__init__.py``) above the file make up the name. None when the file is outside
    ``root`` or is not a Python module."""
    path, root = path.resolve(), root.resolve()
    if path.suffix != ".py" or not path.is_relative_to(root):
        return None
    parts = [] if path.name == "__init__.py" else [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file() and folder != root.parent:
        parts.insert(0, folder.name)
        folder = folder.parent
    if not parts or not all(p.isidentifier() for p in parts):
        return None
    return ".".join(parts), folder


def _go_module_path(go_mod: Path) -> str | None:
    try:
        text = go_mod.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        words = line.split("//", 1)[0].split()
        if len(words) == 2 and words[0] == "module":
            return words[1].strip('"')
    return None


def go_project_for(path: Path, module_text: str, *, root: Path | None = None) -> ProjectInfo | None:
    """The Go module and package the file at ``path`` belongs to; None when it is no ``.go`` file of a module
    (no ``go.mod`` above it, or one outside ``root`` when given) or is itself a test file."""
    path = path.resolve()
    if path.suffix != ".go" or path.name.endswith("_test.go"):
        return None
    bound = root.resolve() if root is not None else None
    for folder in path.parents:
        if bound is not None and not folder.is_relative_to(bound):
            return None
        if (folder / "go.mod").is_file():
            module = _go_module_path(folder / "go.mod")
            if module is None:
                return None
            relative = path.parent.relative_to(folder).as_posix()
            package = module if relative == "." else f"{module}/{relative}"
            return ProjectInfo(
                root=str(folder),
                path=str(path),
                module=package,
                import_root=str(path.parent),
                module_text=module_text,
                language="go",
                python_source="go",
            )
    return None


def rust_project_for(path: Path, module_text: str, *, root: Path | None = None) -> ProjectInfo | None:
    """The Cargo package the ``.rs`` file at ``path`` belongs to (the nearest ``Cargo.toml`` above it with a
    ``[package]``), in its workspace when one above it lists it (the root is then the workspace's folder); None
    when there is none (or only outside ``root`` when given)."""
    path = path.resolve()
    if path.suffix != ".rs":
        return None
    bound = root.resolve() if root is not None else None
    package: Path | None = None
    name = ""
    for folder in path.parents:
        if bound is not None and not folder.is_relative_to(bound):
            break
        manifest = folder / "Cargo.toml"
        if not manifest.is_file():
            continue
        data = cargo_toml(manifest)
        if package is None:
            found = data.get("package")
            if not isinstance(found, dict) or not isinstance(found.get("name"), str):
                return None
            package, name = folder, found["name"]
            workspace = folder
            if "workspace" in data:
                break
        elif "workspace" in data:
            workspace = folder
            break
    if package is None:
        return None
    return ProjectInfo(
        root=str(workspace),
        path=str(path),
        module=name,
        import_root=str(package),
        module_text=module_text,
        language="rust",
        python_source="cargo",
    )


_JAVA_PACKAGE = re.compile(r"^\s*package\s+([\w.]+)\s*;", re.M)
_JAVA_LAYOUTS = (("src", "main", "java"), ("src", "test", "java"), ("src",))
_JAVA_MARKERS = ("pom.xml", "build.gradle", "build.gradle.kts", "settings.gradle", "settings.gradle.kts", ".git")


def java_project_for(path: Path, module_text: str, *, root: Path | None = None) -> ProjectInfo | None:
    """The Java source tree the ``.java`` file at ``path`` belongs to: its source root is the folder its
    ``package`` declaration names (the file's folder for the default package), the project's root the nearest
    folder above that with a build file or ``.git`` (else the source root itself); the module is the class's
    full name. None when the file's folders do not match its package (or lie outside ``root`` when given)."""
    path = path.resolve()
    if path.suffix != ".java":
        return None
    declared = _JAVA_PACKAGE.search(module_text)
    package = declared.group(1).split(".") if declared else []
    source_root = path.parent
    for part in reversed(package):
        if source_root.name != part:
            return None
        source_root = source_root.parent
    bound = root.resolve() if root is not None else None
    if bound is not None and not source_root.is_relative_to(bound):
        return None
    # Without a build file: the folder holding src/ (or src/main/java), where a test/ folder sits too.
    project_root = source_root
    for layout in _JAVA_LAYOUTS:
        if source_root.parts[-len(layout) :] == layout:
            project_root = source_root.parents[len(layout) - 1]
            break
    if bound is not None and not project_root.is_relative_to(bound):
        project_root = source_root
    for folder in [source_root, *source_root.parents]:
        if bound is not None and not folder.is_relative_to(bound):
            break
        if any((folder / marker).exists() for marker in _JAVA_MARKERS):
            project_root = folder
            break
    return ProjectInfo(
        root=str(project_root),
        path=str(path),
        module=".".join([*package, path.stem]),
        import_root=str(source_root),
        module_text=module_text,
        language="java",
        python_source="javac",
    )


_JS_SUFFIXES = (".js", ".mjs", ".cjs", ".ts", ".mts", ".cts")


def js_project_for(
    path: Path, module_text: str, *, root: Path | None = None, workspace_folders: Sequence[Path] = ()
) -> ProjectInfo | None:
    """The JavaScript (or TypeScript) project the file at ``path`` belongs to: the nearest folder above it with ``package.json``
    (inside ``root`` or the workspace folder holding it, when given); None when there is none, or the file is in
    ``node_modules``."""
    path = path.resolve()
    if path.suffix not in _JS_SUFFIXES or "node_modules" in path.parts:
        return None
    holding = [f.resolve() for f in workspace_folders if path.is_relative_to(f.resolve())]
    bound = root.resolve() if root is not None else max(holding, key=lambda f: len(f.parts)) if holding else None
    for folder in path.parents:
        if bound is not None and not folder.is_relative_to(bound):
            return None
        if (folder / "package.json").is_file():
            return ProjectInfo(
                root=str(folder),
                path=str(path),
                module=path.relative_to(folder).as_posix(),
                import_root=str(folder),
                module_text=module_text,
                language="typescript" if path.suffix.endswith("ts") else "javascript",
                python_source="node",
            )
    return None


def project_for(
    path: Path,
    module_text: str,
    *,
    workspace_folders: Sequence[Path] = (),
    root: Path | None = None,
    editor_python: str | None = None,
    python_setting: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ProjectInfo | None:
    """Everything the sandbox needs to run the user's module where it lives; None when the file belongs to no
    project (no root) or is not an importable Python module (or a Go file of a module: :func:`go_project_for`)."""
    if path.suffix == ".go":
        return go_project_for(path, module_text, root=root)
    if path.suffix == ".rs":
        return rust_project_for(path, module_text, root=root)
    if path.suffix == ".java":
        return java_project_for(path, module_text, root=root)
    if path.suffix in _JS_SUFFIXES:
        return js_project_for(path, module_text, root=root, workspace_folders=workspace_folders)
    found_root = root.resolve() if root is not None else find_root(path, workspace_folders)
    if found_root is None:
        return None
    named = module_name(found_root, path)
    if named is None:
        return None
    name, base = named
    python, source = resolve_interpreter(found_root, editor=editor_python, setting=python_setting, environ=environ)
    return ProjectInfo(
        root=str(found_root),
        path=str(path.resolve()),
        module=name,
        import_root=str(base),
        module_text=module_text,
        python=python,
        python_source=source,
    )


def runs_in_project(language: str) -> bool:
    """Whether code in ``language`` is run inside its project (Python; Go, Rust and Java where their toolchains
    are installed; JavaScript where node is)."""
    return is_python(language) or language_for(language).runs_in_project


def with_project(
    request: Request,
    *,
    python_setting: str | None = None,
    workspace_folders: Sequence[Path] = (),
) -> Request:
    """``request`` with its project filled in from the file it names (read from the disk), when the request has
    none, is Python or Go, and its lines are the file's lines there (a selection that is not the file's is left alone:
    the code that would be checked is not the user's)."""
    context = request.context
    if context.project is not None or not context.path or not runs_in_project(context.language):
        return request
    path = Path(context.path)
    if path.resolve().is_relative_to(_OWN_FILES):
        return request  # our own bundled example (the demo): standalone code, not a project of the user's
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return request
    lines = text.splitlines()[context.start_line : context.end_line]
    if [line.rstrip() for line in lines] != [line.rstrip() for line in context.selection.splitlines()]:
        return request
    project = project_for(path, text, workspace_folders=workspace_folders, python_setting=python_setting)
    if project is None:
        return request
    return request.model_copy(update={"context": context.model_copy(update={"project": project})})
