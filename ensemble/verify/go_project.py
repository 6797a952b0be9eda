"""Run Go code where it lives: ``go test`` on the package of the selection, with the package's own tests and
``Example`` functions (their ``// Output:`` comments are examples) as the oracle.

Every job is a fresh sandbox (:meth:`~codeconductor.ensemble.verify.sandbox.Sandbox.run_program`, bubblewrap only: the Go
toolchain starts processes) that sees the module read-only at its own path; nothing of the user's is written. The
text under test (the user's buffer, or a candidate put in place of the target by
:func:`~codeconductor.ensemble.edits.replace_span`, the very text an edit would leave in the file) is a file in the scratch
that ``go test -overlay`` uses instead of the module's file. Offline: ``GOPROXY=off``, ``-mod=vendor`` when the
module vendors its dependencies (else ``-mod=readonly`` with the host's module cache shown read-only),
``GOCACHE``/``GOPATH`` inside the scratch, cgo off.

One job per text, run by :mod:`codeconductor.ensemble.verify._harness` (:mod:`codeconductor.ensemble.verify._project_base`): build the
test binary once, then run each selected test in its own process, with the build's outputs put back as they were
before each (what one test's process wrote never reaches the next) and every process the last one left killed. A
test passes only when its process exits 0 with exactly one ``--- PASS`` line for it (a candidate that prints a
forged one gets two, an error; one that ends the process early with status 0, after a forged line, must call
``os.Exit`` or the like: a candidate calling it more often than the user's code is refused unrun). The harness
signs each verdict line with a per-job key the code under test never sees; the program's output file, which that
code can rewrite, carries nothing else that counts. A candidate stands in for one function, so it can use only
the packages the file already imports.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..consensus.behaviour import Behaviour, ProjectProbe
from ..languages import Function, language_for
from ..languages.go import go_toolchain
from ._project_base import CompiledProjectRunner, callers_of

__all__ = ["GoProjectRunner", "GoTest", "go_tests_of"]

_TEST_FUNC = re.compile(r"^func\s+((?:Test|Example)\w*)\s*\(", re.M)
_OUTPUT = re.compile(r"^\s*//\s*(?:Unordered output|Output):", re.M | re.I)
# Ways to end a test's process with status 0 after printing a forged PASS line (possible where the file imports os
# or syscall: a candidate has only the file's imports). A candidate using them more often than the user's code is
# refused.
_EXIT_BYPASS = re.compile(r"\b(?:os|syscall|unix)\s*\.\s*(?:Exit|RawSyscall|Syscall)\b|go:linkname")
_CANDIDATE = "__cc_candidate__.go"
_WORK = "/tmp/w"


@dataclass(frozen=True)
class GoTest:
    """One test of the package: a ``Test`` function, or an ``Example`` with an output comment (go test runs
    only those), and the file it is in."""

    name: str
    file: str


def go_tests_of(package_dir: Path, target: str) -> tuple[list[GoTest], int]:
    """The package's tests that name ``target`` (a word of their body: table-driven tests name it once) or a
    function of the package that calls it (directly or through others), those naming it first; and how many
    tests the package has in all. Examples count only with an ``// Output:`` comment."""
    language = language_for("go")
    short = target.rsplit(".", 1)[-1]
    bodies: dict[str, list[str]] = {}
    for path in sorted(package_dir.glob("*.go")):
        if path.name.endswith("_test.go"):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for function in language.functions(text):
            bodies.setdefault(function.name.rsplit(".", 1)[-1], []).append(function.text.split("{", 1)[-1])
    names = callers_of(bodies, short)
    ranked: list[tuple[int, GoTest]] = []
    total = 0
    for path in sorted(package_dir.glob("*_test.go")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for function in language.functions(text):
            if not _TEST_FUNC.match(function.text):
                continue
            name = function.name
            if name.startswith("Example") and not _OUTPUT.search(function.text):
                continue
            if name.startswith("Test") and "*testing.T" not in function.header:
                continue
            total += 1
            body = function.text.split("{", 1)[-1]
            if name.startswith("Example") and name.removeprefix("Example") == target:
                ranked.append((0, GoTest(name, path.name)))
                continue
            rank = next((i for i, n in enumerate(names) if re.search(rf"\b{re.escape(n)}\b", body)), None)
            if rank is not None:
                ranked.append((rank, GoTest(name, path.name)))
    ranked.sort(key=lambda pair: pair[0])
    return [test for _, test in ranked], total


@functools.cache
def _module_cache() -> str | None:
    """The host's Go module cache (dependencies a module does not vendor), when there is one: shown read-only."""
    go = go_toolchain()
    if go is None:
        return None
    try:
        done = subprocess.run([go, "env", "GOMODCACHE"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    path = done.stdout.strip()
    return path if done.returncode == 0 and os.path.isabs(path) and os.path.isdir(path) else None


def _dependencies(root: str) -> tuple[str | None, bool]:
    """Where the module's dependencies come from: the host's module cache, and whether it vendors them."""
    return _module_cache(), os.path.isfile(os.path.join(root, "vendor", "modules.txt"))


class GoProjectRunner(CompiledProjectRunner):
    """Runs the user's Go code and candidates with ``go test`` inside the user's module; ``workers`` jobs at a
    time."""

    language = "go"
    language_shown = "Go"
    no_toolchain = "there is no go toolchain here (install Go)"
    comments = ("//",)
    _bypass = _EXIT_BYPASS
    build_timeout_s = 90.0
    memory_mb = 2048

    async def _select_tests(
        self, plain: ProjectProbe, found: Function
    ) -> tuple[tuple[str, ...], str | None, tuple[str, ...]]:
        """The package's tests and examples that call the selected function."""
        tests, total = await asyncio.to_thread(go_tests_of, Path(plain.import_root), found.name)
        if not tests:
            problem = (
                f"no test in package {plain.module} calls {found.name} ({total} tests there): add a Test "
                "function, or an Example with an // Output: comment, that calls it"
            )
            return (), problem, ()
        named = tuple(f"{t.file}::{t.name}" for t in tests[: self.max_tests])
        how = f"go: executed with go test in package {plain.module} ({len(named)} tests that call {found.name})"
        return named, None, (how,)

    async def _run(self, project: ProjectProbe, source: str) -> tuple[Behaviour, bool]:
        go = go_toolchain()
        assert go is not None
        scratch = self.sandbox.scratch_dir or "/tmp"
        cache, vendored = await asyncio.to_thread(_dependencies, project.root)
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": scratch,
            "TMPDIR": scratch,
            "LANG": "C.UTF-8",
            "GOCACHE": f"{scratch}/.gocache",
            "GOPATH": f"{scratch}/.gopath",
            "GOPROXY": "off",
            "GOSUMDB": "off",
            "GOWORK": "off",
            "GOTOOLCHAIN": "local",
            "GOTELEMETRY": "off",
            "CGO_ENABLED": "0",
            "GOFLAGS": "-mod=vendor" if vendored else "-mod=readonly",
        }
        ro = [project.root, os.path.dirname(os.path.dirname(go))]
        if cache is not None and not vendored:
            env["GOMODCACHE"] = cache
            ro.append(cache)
        job = {
            "kind": "go",
            "go": go,
            "path": project.path,
            "package_dir": project.import_root,
            "source": source,
            "candidate": _CANDIDATE,
            "work": _WORK,
            "env": env,
            "tests": [{"id": t, "name": t.split("::", 1)[1]} for t in project.tests],
            "build_timeout": self.build_timeout_s,
            "per_test": int(self.per_test_timeout_s),
        }
        timeout = self.build_timeout_s + (self.per_test_timeout_s + 6.0) * len(project.tests)
        shown = (f"{_WORK}/{_CANDIDATE}", os.path.basename(project.path))
        return await self._run_job(project, job, ro_paths=ro, timeout_s=timeout, shown_path=shown)
