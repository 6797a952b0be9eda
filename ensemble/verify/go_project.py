"""Run Go code where it lives: ``go test`` on the package of the selection, with the package's own tests and
``Example`` functions (their ``// Output:`` comments are examples) as the oracle.

Every job is a fresh sandbox (:meth:`~codeconductor.ensemble.verify.sandbox.Sandbox.run_program`, bubblewrap only: the Go
toolchain starts processes) that sees the module read-only at its own path; nothing of the user's is written. The
text under test (the user's buffer, or a candidate put in place of the target by
:func:`~codeconductor.ensemble.edits.replace_span`, the very text an edit would leave in the file) is a file in the scratch
that ``go test -overlay`` uses instead of the module's file. Offline: ``GOPROXY=off``, ``-mod=vendor`` when the
module vendors its dependencies (else ``-mod=readonly`` with the host's module cache shown read-only),
``GOCACHE``/``GOPATH`` inside the scratch, cgo off.

One job per text: build the test binary once, then run each selected test in its own process. Verdicts are
decided by the job's shell script, not by what the code prints: the test binary's output goes to a file the
script reads, and a test passes only when its process exits 0 with exactly one ``--- PASS`` line for it (a
candidate that prints a forged one gets two, an error; one that ends the process early with status 0, after a
forged line, must call ``os.Exit`` or the like: a candidate calling it more often than the user's code is refused
unrun). A candidate stands in for one function, so it can use only the packages the file already imports. The parent reads one line per test, led by a per-job nonce.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import secrets
import shlex
import subprocess
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

from ..consensus.behaviour import Behaviour, Probe, ProjectProbe
from ..edits import replace_span
from ..errors import SandboxError
from ..languages import Function, language_for
from ..languages.go import go_toolchain
from ..types import Request
from .project import content_digest
from .sandbox import Sandbox, ScriptOutcome

__all__ = ["GoProjectRunner", "GoTest", "go_tests_of"]

_TEST_FUNC = re.compile(r"^func\s+((?:Test|Example)\w*)\s*\(", re.M)
_OUTPUT = re.compile(r"^\s*//\s*(?:Unordered output|Output):", re.M | re.I)
# Ways to end a test's process with status 0 after printing a forged PASS line (possible where the file imports os
# or syscall: a candidate has only the file's imports). A candidate using them more often than the user's code is
# refused.
_EXIT_BYPASS = re.compile(r"\b(?:os|syscall|unix)\s*\.\s*(?:Exit|RawSyscall|Syscall)\b|go:linkname")
_CANDIDATE = "__cc_candidate__.go"


@dataclass(frozen=True)
class GoTest:
    """One test of the package: a ``Test`` function, or an ``Example`` with an output comment (go test runs
    only those), and the file it is in."""

    name: str
    file: str


def go_tests_of(package_dir: Path, target: str) -> tuple[list[GoTest], int]:
    """The package's tests that name ``target`` (a word of their body: table-driven tests name it once), and
    how many tests the package has in all. Examples count only with an ``// Output:`` comment."""
    language = language_for("go")
    wanted = re.compile(rf"\b{re.escape(target.rsplit('.', 1)[-1])}\b")
    found: list[GoTest] = []
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
            if wanted.search(body) or (name.startswith("Example") and name.removeprefix("Example") == target):
                found.append(GoTest(name, path.name))
    return found, total


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


def _selected_function(text: str, start: int, end: int) -> Function | None:
    """The top-level function whose lines ``[start, end)`` are (its doc comment may be in or out; blank lines
    after it allowed)."""
    lines = text.splitlines()
    for function in language_for("go").functions(text):
        if function.start_line < start or function.end_line > end:
            continue
        before = lines[start : function.start_line]
        after = lines[function.end_line : end]
        if all(not ln.strip() or ln.strip().startswith("//") for ln in before) and not any(ln.strip() for ln in after):
            return function
    return None


def _script(nonce: str, go: str, package_dir: str, *, overlay: str, tests: list[str], env: dict[str, str]) -> str:
    """The job: build the test binary with the text under test, run each test alone, print one verdict line per
    test (the binary's own output never reaches stdout)."""
    q = shlex.quote
    lines = ["set -u", "umask 077"]
    lines += [f"export {key}={q(value)}" for key, value in env.items()]
    lines += [
        f"cd {q(package_dir)} || {{ echo {nonce} nodir; exit 0; }}",
        f"{q(go)} test -c -o /tmp/cc.test -overlay {q(overlay)} . > /tmp/cc.build 2>&1",
        "rc=$?",
        "if [ $rc -ne 0 ] || [ ! -x /tmp/cc.test ]; then",
        f"  echo {nonce} build $rc; head -c 2000 /tmp/cc.build | sed 's/^/{nonce} msg /'; exit 0",
        "fi",
    ]
    for name in tests:  # Go identifiers: nothing to quote
        lines += [
            f"/tmp/cc.test -test.run '^{name}$' -test.v -test.count=1 -test.timeout=$CC_TEST_TIMEOUT"
            " > /tmp/cc.out 2>&1 < /dev/null",
            "rc=$?",
            f"p=$(grep -c '^--- PASS: {name} ' /tmp/cc.out); f=$(grep -c '^--- FAIL: {name} ' /tmp/cc.out)",
            f"s=$(grep -c '^--- SKIP: {name} ' /tmp/cc.out)",
            f"echo {nonce} test {name} $rc $p $f $s",
        ]
    lines.append(f"echo {nonce} done")
    return "\n".join(lines) + "\n"


def _verdict(rc: int, passes: int, fails: int, skips: int) -> str:
    """A test's outcome from its process: one PASS line and exit 0 passes; one FAIL line and a non-zero exit
    fails (a panic too); a forged line (two of a kind, or both) or any other end (a timeout) is an error."""
    if rc == 0 and passes == 1 and fails == 0 and skips == 0:
        return "passed"
    if rc == 0 and skips == 1 and passes == 0 and fails == 0:
        return "skipped"
    if rc != 0 and fails == 1 and passes == 0:  # 1: the test failed; 2: it panicked (testing reports it)
        return "failed"
    return "error"


class GoProjectRunner:
    """Runs the user's Go code and candidates with ``go test`` inside the user's module; ``workers`` jobs at a
    time."""

    def __init__(
        self,
        sandbox: Sandbox | None = None,
        *,
        workers: int = 2,
        build_timeout_s: float = 90.0,
        per_test_timeout_s: float = 10.0,
        max_tests: int = 40,
        memory_mb: int = 2048,
    ) -> None:
        self._own = sandbox is None
        self.sandbox = sandbox or Sandbox(workers=workers, ahead=0, output_limit=256 * 1024)
        self.build_timeout_s = build_timeout_s
        self.per_test_timeout_s = per_test_timeout_s
        self.max_tests = max_tests
        self.memory_mb = memory_mb
        self._observed: OrderedDict[str, Behaviour] = OrderedDict()

    def close(self) -> None:
        self._observed.clear()
        if self._own:
            self.sandbox.close()

    async def probe(self, request: Request, base: Probe | None) -> Probe | None:
        """The probe that runs the selected function's package tests; None when the selection is not one whole
        function (a candidate could not stand in its place); a probe whose ``project.problem`` says why nothing
        can run."""
        project = request.context.project
        if project is None or project.language != "go":
            return None
        start, end = request.context.start_line, request.context.end_line
        found = _selected_function(project.module_text, start, end)
        if found is None:
            return None
        plain = ProjectProbe(
            root=project.root,
            module=project.module,
            target=found.name,
            python="",
            module_text=project.module_text,
            start=start,
            end=end,
            path=project.path,
            import_root=project.import_root,
            language="go",
        )
        problem: str | None = None
        tests: list[GoTest] = []
        if go_toolchain() is None:
            problem = "there is no go toolchain here (install Go)"
        elif self.sandbox.containment != "bubblewrap":
            problem = "Go code runs only in the bubblewrap sandbox, which cannot start here"
        else:
            tests, total = await asyncio.to_thread(go_tests_of, Path(project.import_root), found.name)
            if not tests:
                problem = (
                    f"no test in package {project.module} calls {found.name} ({total} tests there): add a Test "
                    "function, or an Example with an // Output: comment, that calls it"
                )
        named = tuple(f"{t.file}::{t.name}" for t in tests[: self.max_tests])
        how = (f"go: executed with go test in package {project.module} ({len(named)} tests that call {found.name})",)
        project_probe = replace(plain, tests=named, problem=problem, notes=() if problem else how)
        return Probe(found.name, (), (), language="go", project=project_probe)

    async def observe(self, code: str, probe: Probe) -> Behaviour:
        """``code`` put in place of the target in its file, the package's selected tests run on it."""
        project = probe.project
        assert project is not None
        source = replace_span(project.module_text, project.start, project.end, code)
        key = content_digest(project.root, project.path, source, *project.tests)
        cached = self._observed.get(key)
        if cached is not None:
            return cached
        names = [t.split("::", 1)[1] for t in project.tests]
        if len(_EXIT_BYPASS.findall(source)) > len(_EXIT_BYPASS.findall(project.module_text)):
            behaviour = Behaviour(keys=("!load:ends the process itself, so its tests cannot be judged",), passed=())
            return self._keep(key, behaviour, project)
        job = await self._job(project, source, names)
        behaviour = self._read(job, project)
        if not job[1].timed_out:  # a slow machine may finish next time
            self._keep(key, behaviour, project)
        return behaviour

    def _keep(self, key: str, behaviour: Behaviour, project: ProjectProbe) -> Behaviour:
        self._observed[key] = behaviour
        if len(self._observed) > 512:
            self._observed.popitem(last=False)
        return behaviour

    def _nonce(self) -> str:
        return "cc" + secrets.token_hex(8)

    async def _job(self, project: ProjectProbe, source: str, tests: list[str]) -> tuple[str, ScriptOutcome]:
        go = go_toolchain()
        assert go is not None
        scratch = self.sandbox.scratch_dir or "/tmp"
        nonce = self._nonce()
        cache, vendored = await asyncio.to_thread(_dependencies, project.root)
        env = {
            "HOME": scratch,
            "TMPDIR": scratch,
            "GOCACHE": f"{scratch}/.gocache",
            "GOPATH": f"{scratch}/.gopath",
            "GOPROXY": "off",
            "GOSUMDB": "off",
            "GOWORK": "off",
            "GOTOOLCHAIN": "local",
            "GOTELEMETRY": "off",
            "CGO_ENABLED": "0",
            "GOFLAGS": "-mod=vendor" if vendored else "-mod=readonly",
            "CC_TEST_TIMEOUT": f"{int(self.per_test_timeout_s)}s",
        }
        ro = [project.root, os.path.dirname(os.path.dirname(go))]
        if cache is not None and not vendored:
            env["GOMODCACHE"] = cache
            ro.append(cache)
        overlay = json.dumps({"Replace": {project.path: f"{scratch}/{_CANDIDATE}"}})
        files = {
            "run.sh": _script(nonce, go, project.import_root, overlay=f"{scratch}/overlay.json", tests=tests, env=env),
            _CANDIDATE: source,
            "overlay.json": overlay,
        }
        timeout = self.build_timeout_s + (self.per_test_timeout_s + 1.0) * len(tests)
        try:
            outcome = await self.sandbox.arun_program(
                files, ["/bin/sh", f"{scratch}/run.sh"], timeout, memory_mb=self.memory_mb, max_procs=512, ro_paths=ro
            )
        except SandboxError as exc:
            outcome = ScriptOutcome(-1, "", f"the sandbox cannot run here: {exc}", False, False, 0.0)
        return nonce, outcome

    def _read(self, job: tuple[str, ScriptOutcome], project: ProjectProbe) -> Behaviour:
        nonce, outcome = job
        verdicts: dict[str, str] = {}
        seen: set[str] = set()
        build: str | None = None
        messages: list[str] = []
        done = False
        for line in outcome.stdout.splitlines():
            words = line.split(" ")
            if not words or words[0] != nonce or len(words) < 2:
                continue
            if words[1] == "test" and len(words) == 7 and all(w.isdigit() for w in words[3:]):
                name = words[2]
                rc, passes, fails, skips = (int(w) for w in words[3:])
                verdicts[name] = "error" if name in seen else _verdict(rc, passes, fails, skips)
                seen.add(name)
            elif words[1] == "build":
                build = "build"
            elif words[1] == "msg":
                messages.append(" ".join(words[2:]))
            elif words[1] == "done":
                done = True
        if build is not None:
            first = next((m for m in messages if m.strip() and not m.startswith("#")), "it does not compile")
            first = first.replace(f"{self.sandbox.scratch_dir or '/tmp'}/{_CANDIDATE}", os.path.basename(project.path))
            return Behaviour(keys=(f"!load:{first.strip()[:120]}",), passed=())
        names = [t.split("::", 1)[1] for t in project.tests]
        if not done and not verdicts:
            why = "Timeout" if outcome.timed_out else "Lost"
            return Behaviour(keys=(f"!{why}",), passed=(), tests=tuple(sorted((t, "error") for t in project.tests)))
        tests = tuple(
            sorted(
                (f"{t.split('::', 1)[0]}::{n}", verdicts.get(n, "error"))
                for t, n in zip(project.tests, names, strict=True)
            )
        )
        return Behaviour(keys=(), passed=(), tests=tests)
