"""Run JavaScript where it lives: the project's own ``node --test`` tests that name the selected function, on the
user's code and on each candidate, as the oracle (the same gate as Python's, ``consensus.gate.project_gate``).

Every job is a fresh sandbox (:meth:`~codeconductor.ensemble.verify.sandbox.Sandbox.run_program`, bubblewrap only: the test
runner starts a process per test file) that sees the project read-only at its own path, ``node_modules``
included; nothing of the user's is written. The text under test (the user's buffer, or a candidate put in place
of the target by :func:`~codeconductor.ensemble.edits.replace_span`, the very text an edit would leave in the file) takes the
module's place in each test file's process (``_node_preload.cjs``: ``require`` for CommonJS, a ``load`` hook
for ES modules), so the module is imported exactly as the project imports it (relative paths, package
``exports``, its dependencies from ``node_modules``).

Verdicts come from the test runner's TAP report (the runner process runs no code of the user's; what a test
prints reaches the report only as ``#`` comments); a test reported twice counts as an error, and one never
reported (its process ended early) as not passed. Jest, Vitest and Mocha suites are not run here: without a
``node --test`` file that names the function, JavaScript is checked as before, on its own (examples and
generated inputs). TypeScript projects too: their ``.ts`` files (tests included) are turned into JavaScript in the
test processes by esbuild (``tools/node``; types stripped, nothing else rewritten), and ``./x`` or ``./x.js``
imports find ``x.ts``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shlex
from collections import OrderedDict
from pathlib import Path

from ..consensus.behaviour import Behaviour, Probe, ProjectProbe
from ..edits import replace_span
from ..errors import SandboxError
from ..languages import language_for
from ..languages.javascript import esbuild_path, node_path
from ..types import Request
from .project import content_digest
from .sandbox import Sandbox, ScriptOutcome

__all__ = ["JsProjectRunner", "js_test_files", "read_tap"]

_PRELOAD = Path(__file__).with_name("_node_preload.mjs")
_HOOKS = Path(__file__).with_name("_node_hooks.mjs")
_SKIP_DIRS = frozenset({"node_modules", ".git", "dist", "build", "coverage"})
_TEST_NAME = re.compile(r"(?:[._-](?:test|spec)\.[cm]?[jt]s$)|(?:^test\.[cm]?[jt]s$)")
_TEST_DIRS = frozenset({"test", "tests", "__tests__"})
_NODE_TEST = re.compile(r"""["']node:test["']""")
_TAP_RESULT = re.compile(r"^( *)(not ok|ok) \d+ - (.*?)(?: # (SKIP|TODO)\b.*)?$", re.I)
_TAP_SUBTEST = re.compile(r"^( *)# Subtest: (.*)$")
_NODE_MEMORY_MB = 4096  # address space: V8 reserves ~1 GiB per isolate (the hooks thread is another), esbuild too
LANGUAGES = ("javascript", "typescript")
_ESBUILD = Path(__file__).resolve().parents[2] / "tools" / "node" / "node_modules" / "esbuild"


def _esbuild_package() -> str | None:
    """esbuild's JavaScript package (``tools/node``, installed by ``scripts/setup.sh``), by its real path; the
    test processes load it to turn TypeScript into JavaScript. None without it or its binary."""
    if esbuild_path() is None or not (_ESBUILD / "package.json").is_file():
        return None
    return os.path.realpath(_ESBUILD)


def js_test_files(root: Path, target: str, *, limit: int = 20, max_dirs: int = 5000) -> tuple[list[str], list[str]]:
    """The project's test files that name ``target`` (relative paths): those written for ``node --test``, and the
    others (Jest, Vitest, Mocha: not run here)."""
    wanted = re.compile(rf"(?<![\w$]){re.escape(target)}(?![\w$])")
    node_tests: list[str] = []
    others: list[str] = []
    for visited, (folder, dirs, names) in enumerate(os.walk(root)):
        if visited >= max_dirs:
            break
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        in_test_dir = bool(_TEST_DIRS & set(Path(folder).relative_to(root).parts))
        for name in sorted(names):
            if not (_TEST_NAME.search(name) or (in_test_dir and re.search(r"\.[cm]?[jt]s$", name))):
                continue
            path = Path(folder) / name
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if not wanted.search(text):
                continue
            relative = path.relative_to(root).as_posix()
            (node_tests if _NODE_TEST.search(text) else others).append(relative)
            if len(node_tests) >= limit:
                return node_tests, others
    return node_tests, others


def read_tap(text: str, file: str) -> dict[str, str]:
    """Per test (``file::outer > inner``): ``passed``, ``failed``, ``skipped``, or ``error`` when reported more
    than once; suites left out. YAML blocks (error messages, stacks: text the code under test controls) are
    skipped."""
    outcomes: dict[str, str] = {}
    stack: list[str] = []
    yaml_indent: int | None = None
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip(" "))
        if yaml_indent is not None:
            if line.strip() == "..." and indent == yaml_indent:
                yaml_indent = None
            continue
        if line.strip() == "---":
            yaml_indent = indent
            continue
        subtest = _TAP_SUBTEST.match(line)
        if subtest:
            level = len(subtest.group(1)) // 4
            stack[level:] = [subtest.group(2)]
            continue
        result = _TAP_RESULT.match(line)
        if not result:
            continue
        level = len(result.group(1)) // 4
        path = [*stack[:level], result.group(3).replace("\\#", "#")]
        name = f"{file}::{' > '.join(path)}"
        verdict = "skipped" if result.group(4) else "passed" if result.group(2).lower() == "ok" else "failed"
        outcomes[name] = "error" if name in outcomes else verdict
    # A suite (``describe``) reports what its tests did: counted once, by its tests.
    return {name: v for name, v in outcomes.items() if not any(o.startswith(name + " > ") for o in outcomes)}


def _selected_function(text: str, start: int, end: int, language: str) -> str | None:
    """The name of the function whose lines ``[start, end)`` are (comments above it may be in; blank lines after)."""
    lines = text.splitlines()
    for function in language_for(language).functions(text):
        if function.start_line < start or function.end_line > end:
            continue
        before = lines[start : function.start_line]
        after = lines[function.end_line : end]
        if all(not ln.strip() or ln.strip().startswith(("//", "/*", "*")) for ln in before) and not any(
            ln.strip() for ln in after
        ):
            return function.name
    return None


class JsProjectRunner:
    """Runs the user's JavaScript and candidates with the project's ``node --test`` tests; ``workers`` jobs at a
    time."""

    def __init__(
        self,
        sandbox: Sandbox | None = None,
        *,
        workers: int = 2,
        timeout_s: float = 60.0,
        per_file_s: float = 20.0,
        max_files: int = 20,
    ) -> None:
        self._own = sandbox is None
        self.sandbox = sandbox or Sandbox(workers=workers, ahead=0, output_limit=1024 * 1024)
        self.timeout_s = timeout_s
        self.per_file_s = per_file_s
        self.max_files = max_files
        self._observed: OrderedDict[str, Behaviour] = OrderedDict()

    def close(self) -> None:
        self._observed.clear()
        if self._own:
            self.sandbox.close()

    async def probe(self, request: Request, base: Probe | None) -> Probe | None:
        """The probe that runs the project's tests of the selected function; None when there are none to run
        (then the function is checked on its own, as outside a project); a probe whose ``project.problem`` says
        why nothing can run."""
        project = request.context.project
        if project is None or project.language not in LANGUAGES:
            return None
        start, end = request.context.start_line, request.context.end_line
        target = _selected_function(project.module_text, start, end, project.language)
        if target is None:
            return None
        files, others = await asyncio.to_thread(js_test_files, Path(project.root), target, limit=self.max_files)
        notes: tuple[str, ...] = (
            f"{project.language}: executed with node --test on {len(files)} test file(s) of your project",
        )
        if others:
            notes += (f"{len(others)} test file(s) of {target} use another runner than node --test: not run",)
        plain = ProjectProbe(
            root=project.root,
            module=project.module,
            target=target,
            python="",
            module_text=project.module_text,
            start=start,
            end=end,
            path=project.path,
            import_root=project.import_root,
            language=project.language,
            tests=tuple(files),
            notes=notes,
        )
        if not files or node_path() is None or self.sandbox.containment != "bubblewrap":
            return None  # the test runner starts processes: only the bubblewrap sandbox lets it
        if project.language == "typescript" and _esbuild_package() is None:
            return None
        return Probe(target, (), (), language=project.language, project=plain)

    async def observe(self, code: str, probe: Probe) -> Behaviour:
        """``code`` put in place of the target in its module, the selected test files run with ``node --test``."""
        project = probe.project
        assert project is not None
        source = replace_span(project.module_text, project.start, project.end, code)
        key = content_digest(project.root, project.path, source, *project.tests)
        cached = self._observed.get(key)
        if cached is not None:
            return cached
        nonce, outcome = await self._job(project, source)
        behaviour = self._read(nonce, outcome, project)
        if not outcome.timed_out:
            self._observed[key] = behaviour
            if len(self._observed) > 512:
                self._observed.popitem(last=False)
        return behaviour

    async def _job(self, project: ProjectProbe, source: str) -> tuple[str, ScriptOutcome]:
        node = node_path()
        assert node is not None
        scratch = self.sandbox.scratch_dir or "/tmp"
        nonce = "cc" + secrets.token_hex(8)
        target = await asyncio.to_thread(os.path.realpath, project.path)
        esbuild = _esbuild_package() if project.language == "typescript" else None
        job = {"target": target, "hooks": f"{scratch}/cc_hooks.mjs", "source": source, "esbuild": esbuild or ""}
        q = shlex.quote
        lines = [
            f"export CC_JOB={q(scratch + '/cc_job.json')} NODE_OPTIONS= NODE_PATH= "
            f"ESBUILD_BINARY_PATH={q(esbuild_path() or '')}",
            f"cd {q(project.root)} || {{ echo {nonce} nodir; exit 0; }}",
        ]
        for index, file in enumerate(project.tests):
            lines += [
                f"timeout {int(self.per_file_s)} {q(node)} --import {q('file://' + scratch + '/cc_preload.mjs')} --test "
                f"--test-reporter=tap {q(file)} > {scratch}/cc.tap 2> /dev/null < /dev/null",
                f"echo {nonce} file {index} $?",
                f"sed 's/^/{nonce} tap {index} /' {scratch}/cc.tap",
            ]
        lines.append(f"echo {nonce} done")
        files = {
            "run.sh": "\n".join(lines) + "\n",
            "cc_job.json": json.dumps(job),
            "cc_preload.mjs": _PRELOAD.read_text(encoding="utf-8"),
            "cc_hooks.mjs": _HOOKS.read_text(encoding="utf-8"),
        }
        ro = [project.root, os.path.dirname(os.path.dirname(node))]
        if esbuild is not None:
            ro.append(os.path.dirname(esbuild))  # the node_modules holding esbuild and its native binary
        timeout = min(self.timeout_s + self.per_file_s * len(project.tests), 300.0)
        try:
            outcome = await self.sandbox.arun_program(
                files, ["/bin/sh", f"{scratch}/run.sh"], timeout, memory_mb=_NODE_MEMORY_MB, max_procs=512, ro_paths=ro
            )
        except SandboxError as exc:
            outcome = ScriptOutcome(-1, "", f"the sandbox cannot run here: {exc}", False, False, 0.0)
        return nonce, outcome

    def _read(self, nonce: str, outcome: ScriptOutcome, project: ProjectProbe) -> Behaviour:
        taps: dict[int, list[str]] = {}
        done = False
        for line in outcome.stdout.splitlines():
            head, _, rest = line.partition(" ")
            if head != nonce:
                continue
            kind, _, rest = rest.partition(" ")
            if kind == "tap":
                index, _, text = rest.partition(" ")
                if index.isdigit():
                    taps.setdefault(int(index), []).append(text)
            elif kind == "done":
                done = True
        tests: dict[str, str] = {}
        for number, file in enumerate(project.tests):
            tests.update(read_tap("\n".join(taps.get(number, [])), file))
        if not tests:
            why = "Timeout" if outcome.timed_out else "Lost" if not done else "load:no test reported a result"
            return Behaviour(keys=(f"!{why}",), passed=())
        return Behaviour(keys=(), passed=(), tests=tuple(sorted(tests.items())))
