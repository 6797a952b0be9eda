"""Run Java code where it lives: javac compiles the project's source tree with the text under test in place of
the selected method's file, and the project's dependency-free tests that call the method run on the JVM as the
oracle.

What runs: plain source trees and single files (``javac`` on every ``.java`` file of the project, Maven's
``src/main/java`` and ``src/test/java`` included) with the JDK on PATH; nothing is downloaded, so Maven and Gradle
builds are not run (a project whose sources import a library that is not in the tree leaves those files out,
and says so when the selected file is one of them). Tests: test classes (``*Test.java``, ``*Tests.java``,
``Test*.java`` or files in a ``test`` folder) with a ``public static void main`` that names the method (or a
method of the project that calls it) and
checks by throwing (``assert`` runs with ``-ea``), and JUnit 4 ``@Test`` methods that name it where JUnit 4 is
installed (Debian's ``junit4``, ``/usr/share/java/junit4.jar`` and hamcrest: ``scripts/setup.sh --dev``), each
run alone by a small runner of ours (``_CcJUnit4Runner.java``) that ends its JVM with the verdict as exit status;
each test in its own JVM. JUnit 5 suites and Javadoc ``{@code}`` examples are not run here.

Every job is a fresh sandbox (bubblewrap only: javac and the JVM start threads and read the JDK) that sees the
project and the JDK (and its configuration folder, ``/etc/java-NN-openjdk`` on Debian) read-only; the classes
are compiled into the scratch. The harness (:mod:`codeconductor.ensemble.verify._harness`) reports each verdict on a line
signed with a per-job key: a test passes when its JVM exits 0 and fails when it exits 1 (an uncaught exception or
a failed assertion in a ``main``; a failure JUnit reports); 3 is a JUnit test ignored; a timeout or a crash is an
error. Exiting with 0 before a check fails takes
``System.exit``, ``Runtime.halt``, reflection, method handles, native code or a new process: a candidate naming
any of those more often than the user's file is refused unrun (:data:`BYPASS`).
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
from pathlib import Path
from typing import Any

from ..consensus.behaviour import Behaviour, ProjectProbe
from ..languages import Function, language_for
from ..languages.java import JavaToolchain, java_toolchain
from ._project_base import (
    CompiledProjectRunner,
    bounded_files,
    callers_of,
)

__all__ = ["BYPASS", "JavaProjectRunner", "java_sources", "java_tests_of"]

BYPASS = re.compile(
    r"\b(exit|halt|Runtime|ProcessBuilder|ProcessHandle|reflect|forName|getMethods?|getDeclaredMethods?|"
    r"getFields?|getDeclaredFields?|getDeclaredConstructors?|MethodHandles?|invoke|Lookup|ClassLoader|defineClass|"
    r"native|loadLibrary|load|Unsafe|ScriptEngine\w*|setSecurityManager|addShutdownHook)\b"
)
_SKIP = ("target", "build", "out", "bin", "node_modules", ".git", ".gradle", ".idea")
_IMPORT = re.compile(r"^\s*import\s+(?:static\s+)?([\w.]+)", re.M)
_PACKAGE = re.compile(r"^\s*package\s+([\w.]+)\s*;", re.M)
_MAIN = re.compile(r"\bpublic\s+static\s+void\s+main\s*\(")
_TEST_NAME = re.compile(r"(?:^Test\w*|\w+Tests?)\.java$")
_JDK_PACKAGES = ("java.", "javax.", "jdk.", "sun.", "com.sun.", "org.w3c.", "org.xml.", "org.ietf.")
# The JVM reserves address space far beyond what it touches (class space, code cache): bounded here.
_JVM = ["-Xmx256m", "-Xss4m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:CompressedClassSpaceSize=64m",
        "-XX:ReservedCodeCacheSize=48m", "-Xshare:auto"]  # fmt: skip
_WORK = "/tmp/w"
_RUNNER = Path(__file__).with_name("_CcJUnit4Runner.java")
_JUNIT_TEST = re.compile(r"^\s*@(?:org\.junit\.)?Test\b", re.M)
_JUNIT4 = re.compile(r"^\s*import\s+(?:static\s+)?org\.junit\.(?!jupiter)", re.M)
_JARS = ("/usr/share/java/junit4.jar", "/usr/share/java/hamcrest.jar")


def junit4_classpath() -> str | None:
    """JUnit 4 and hamcrest (Debian's ``junit4`` package), by real path; None when they are not installed."""
    if not all(os.path.isfile(jar) for jar in _JARS):
        return None
    return os.pathsep.join(os.path.realpath(jar) for jar in _JARS)


def java_sources(root: Path, limit: int = 2000, *, junit: bool = False) -> tuple[list[Path], list[Path]]:
    """The project's ``.java`` files javac can compile without libraries (only the JDK's packages, the
    project's own and, with ``junit``, JUnit 4's and hamcrest's imported), and those it cannot."""
    files = bounded_files(root, ".java", skip=_SKIP)[:limit]
    texts: dict[Path, str] = {}
    for path in files:
        try:
            texts[path] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
    own = {m.group(1) for text in texts.values() for m in _PACKAGE.finditer(text)}
    known_prefixes = _JDK_PACKAGES + (("org.junit.", "junit.", "org.hamcrest.") if junit else ())
    usable: list[Path] = []
    left_out: list[Path] = []
    for path, text in texts.items():
        imports = [m.group(1) for m in _IMPORT.finditer(text)]
        known = all(
            (i.startswith(known_prefixes) and not i.startswith("org.junit.jupiter"))
            or any(i == p or i.startswith(p + ".") for p in own)
            for i in imports
        )
        (usable if known else left_out).append(path)
    return usable, left_out


def _is_test_file(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).parts
    return bool(_TEST_NAME.search(path.name)) or "test" in parts[:-1] or "tests" in parts[:-1]


def java_tests_of(
    root: Path, sources: list[Path], target: str, *, junit: bool = False
) -> tuple[list[tuple[str, str, str]], int]:
    """The tests that name ``target`` or a method of the project that calls it (directly or through others),
    those naming the target first: ``(file relative to root, full class name, method)``, the method ``main`` for
    a test class whose ``main`` checks, else a JUnit 4 ``@Test`` method (with ``junit``); and how many tests
    there are in all."""
    language = language_for("java")
    bodies: dict[str, list[str]] = {}
    candidates: list[tuple[str, str, str, str]] = []  # file, class, method, the text that must name it
    for path in sources:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if not _is_test_file(path, root):
            for method in language.functions(text):
                bodies.setdefault(method.name, []).append(method.text.split("{", 1)[-1])
            continue
        package = _PACKAGE.search(text)
        name = f"{package.group(1)}.{path.stem}" if package else path.stem
        relative = path.relative_to(root).as_posix()
        if junit and _JUNIT4.search(text):
            for method in language.functions(text):
                if _JUNIT_TEST.search(method.text.split("(", 1)[0]):
                    candidates.append((relative, name, method.name, method.text.split("{", 1)[-1]))
        elif _MAIN.search(text):
            candidates.append((relative, name, "main", text))
    names = callers_of(bodies, target)
    found: list[tuple[int, tuple[str, str, str]]] = []
    for relative, name, test_method, body in candidates:
        rank = next((i for i, n in enumerate(names) if re.search(rf"\b{re.escape(n)}\b", body)), None)
        if rank is not None:
            found.append((rank, (relative, name, test_method)))
    found.sort(key=lambda pair: pair[0])
    return [test for _, test in found], len(candidates)


class JavaProjectRunner(CompiledProjectRunner):
    """Runs the user's Java code and candidates with javac and the project's ``main`` test classes; ``workers``
    jobs at a time."""

    language = "java"
    language_shown = "Java"
    no_toolchain = "there is no JDK here (install one with javac)"
    comments = ("//", "/*", "*", "@")
    _bypass = BYPASS
    build_timeout_s = 120.0
    per_test_timeout_s = 15.0
    memory_mb = 4096  # address space: a JVM reserves much more than its heap

    @functools.cached_property
    def _sources(self) -> dict[str, list[str]]:
        """Per project root (the probe's key), the files javac compiles."""
        return {}

    async def _select_tests(
        self, plain: ProjectProbe, found: Function
    ) -> tuple[tuple[str, ...], str | None, tuple[str, ...]]:
        root = Path(plain.root)
        path = Path(plain.path)
        junit = junit4_classpath() is not None
        usable, left_out = await asyncio.to_thread(java_sources, root, junit=junit)
        if path in left_out:
            problem = (
                f"{path.name} imports libraries that are not part of your source tree (Maven and Gradle builds are "
                "not run here)"
            )
            return (), problem, ()
        if path not in usable:
            usable.append(path)
        self._sources[plain.root] = [str(p) for p in usable]
        tests, total = await asyncio.to_thread(java_tests_of, root, usable, found.name, junit=junit)
        named = tuple(f"{file}::{name}.{method}" for file, name, method in tests)[: self.max_tests]
        if not named:
            runs = "JUnit 4 @Test methods and " if junit else ""
            problem = (
                f"no test in your project calls {found.name} ({total} tests there: {runs}test classes with a "
                "main that checks): add one that calls it"
            )
            return (), problem, ()
        notes = [f"java: executed with javac and the JVM ({len(named)} tests of yours that call {found.name})"]
        if left_out:
            libraries = "JUnit 5, ..." if junit else "JUnit, ..."
            notes.append(f"{len(left_out)} Java file(s) import libraries ({libraries}): not compiled, not run")
        return named, None, tuple(notes)

    async def _run(self, project: ProjectProbe, source: str) -> tuple[Behaviour, bool]:
        toolchain = java_toolchain()
        assert toolchain is not None
        job = self._job(project, source, toolchain)
        relative = Path(project.path).relative_to(project.import_root).as_posix()
        return await self._run_job(
            project,
            job,
            ro_paths=[project.root, toolchain.home, *toolchain.config],
            timeout_s=self.build_timeout_s + (self.per_test_timeout_s + 1) * len(project.tests),
            shown_path=(f"{_WORK}/src/{relative}", Path(project.path).name),
        )

    def _job(self, project: ProjectProbe, source: str, toolchain: JavaToolchain) -> dict[str, Any]:
        scratch = self.sandbox.scratch_dir or "/tmp"
        classpath = junit4_classpath() or ""
        tests = []
        for test in project.tests:
            name, _, method = test.split("::", 1)[1].rpartition(".")
            argv = [name] if method == "main" else ["CcJUnit4Runner", name, method]
            tests.append({"id": test, "argv": argv, "patterns": {}, "exit_only": True})
        return {
            "kind": "java",
            "root": project.root,
            "path": project.path,
            "relative": Path(project.path).relative_to(project.import_root).as_posix(),
            "source": source,
            "sources": self._sources.get(project.root, [project.path]),
            "runner": _RUNNER.read_text(encoding="utf-8") if classpath else "",
            "work": _WORK,
            "javac": toolchain.javac,
            "java": toolchain.java,
            "jvm_javac": [f"-J{flag}" for flag in _JVM if not flag.startswith("-Xmx")] + ["-J-Xmx512m"],
            "jvm": _JVM,
            "classpath": classpath,
            "env": {"PATH": "/usr/bin:/bin", "HOME": scratch, "TMPDIR": scratch, "LANG": "C.UTF-8"},
            "tests": tests,
            "build_timeout": self.build_timeout_s,
            "per_test": self.per_test_timeout_s,
        }
