"""Run JavaScript where it lives: the project's own tests that name the selected function (``node --test``,
Jest or Vitest, found from ``package.json``), on the user's code and on each candidate, as the oracle (the same
gate as Python's, ``consensus.gate.project_gate``), and the calls those tests make to the function, recorded on
the user's code and replayed on each candidate (values compared here, in the parent).

Every job is a fresh sandbox (:meth:`~codeconductor.ensemble.verify.sandbox.Sandbox.run_program`, bubblewrap
only: the test runners start processes) that sees the project read-only at its own path, ``node_modules``
included; nothing of the user's is written. The text under test (the user's buffer, or a candidate put in place
of the target by :func:`~codeconductor.ensemble.edits.replace_span`, the very text an edit would leave in the
file) takes the module's place in every node process of the job: for ``node --test`` and the replay through
``_node_preload.mjs`` (``require`` for CommonJS, a ``load`` hook for ES modules, esbuild for TypeScript), for
Jest and Vitest through ``_node_overlay.cjs`` (``--require`` in ``NODE_OPTIONS``: fs's read functions return it
for the module's path, so jest-runtime or vite load it with the project's own transforms: babel-jest, ts-jest,
vite's esbuild). So the module is imported exactly as the project imports it.

Jest runs as ``jest --ci --cache=false --watchman=false --runInBand --reporters=_node_jest_reporter.cjs`` (with
``--experimental-vm-modules`` when ``scripts.test`` sets it: native ES modules) and Vitest as ``vitest run
--reporter=json --outputFile`` (no watch mode, no cache written: the project is read-only and ``HOME``/``TMPDIR``
are the scratch), both from the project's own ``node_modules``; ``--disable-wasm-trap-handler`` so that
WebAssembly (vite's parsers) fits the address-space limit, and "localhost" answered by the overlay (the sandbox
has no resolver configuration).

Recorded inputs. One *record* job runs the tests on the user's code with a recorder appended to its text (one
line: the function's binding, and ``module.exports`` entries holding it, wrapped) that keeps up to ``max_calls``
distinct argument lists that are plain JSON (nothing else can be replayed faithfully), each at most
``max_arg_chars``. Each *observe* job first replays them (``_node_replay.mjs``: the module imported with the
text under test, the function called with each list, ``[result, arguments after the call]`` reported as
canonical JSON), then runs the tests.

Verdicts. The runner's own report (``node --test``'s TAP on its stdout; one line per test from Jest's reporter
API, ``_node_jest_reporter.cjs``, since Jest's ``--json`` report is not written when a failure holds a BigInt;
Vitest's JSON report cut down to one line per test by ``_node_report.cjs``), the replay's lines, the recorded
calls and the hooks' event codes reach the parent only as lines signed by
:mod:`~codeconductor.ensemble.verify._harness` (the Go, Rust and Java harness, kind ``js``): it reads its job (a
per-job HMAC key) and deletes it before any node process starts, makes itself non-dumpable, runs each step as a
child whose output goes to a file it has already unlinked, kills every process left in the sandbox before each
step and before reading a step's output or the report file the runner wrote (deleted before the runner
starts), and signs each line with the step's exit status from ``waitpid``. Why not the shell script it
replaces: its stdout is a file in the scratch and the nonce that marked its lines was in the script, both
readable by code under test (same uid): an answer appended "passed" lines under the nonce and killed the script,
and every test of a wrong answer passed (``tests/integration/test_js_project.py``). Now unsigned lines are not
read, a signed line replayed is a test reported twice (an error), and a step killed by a signal that was not its
time limit (its runner killed by the code under test) reports nothing (:func:`_found`). What remains is the
runner's own process: code under test that runs in it (Jest runs in band) can patch ``expect`` or the reporter,
as with pytest; the containment, not the report, is the boundary there. A test reported twice counts as an
error, one never reported (its file failed to load) as not passed.

Hostile candidates. ``_node_overlay.cjs`` notes, in every node process, a connection to anything but loopback,
a write outside the scratch, the project and ``/dev``, and a child process killed by seccomp; a runner killed by
seccomp is seen from its exit status. Such a candidate's behaviour carries ``HOSTILE_KEY`` with the reason
(:data:`HOSTILE_REASONS`), and the consensus puts it out as unsafe unless the user's code did the same.

Mocha suites are not run: without a test file of a runner that runs here, JavaScript is checked as before, on its
own (examples and generated inputs). TypeScript for ``node --test``: its ``.ts`` files (tests included) are turned
into JavaScript by esbuild (``tools/node``; types stripped, nothing else rewritten), and ``./x`` or ``./x.js``
imports find ``x.ts``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..consensus.behaviour import HOSTILE_KEY, Behaviour, Probe, ProjectProbe
from ..edits import replace_span
from ..languages import language_for
from ..languages.javascript import HOSTILE_GENERAL, HOSTILE_REASONS, esbuild_path, node_path, read_harness_output
from ..types import ProjectInfo, Request
from ._project_base import run_harness
from .bounded import read_json
from .project import content_digest
from .sandbox import Sandbox, ScriptOutcome

__all__ = [
    "JsProjectRunner",
    "TestRunner",
    "find_runner",
    "js_test_files",
    "read_report_lines",
    "read_tap",
    "record_snippet",
]

_PRELOAD = Path(__file__).with_name("_node_preload.mjs")
_HOOKS = Path(__file__).with_name("_node_hooks.mjs")
_OVERLAY = Path(__file__).with_name("_node_overlay.cjs")
_REPLAY = Path(__file__).with_name("_node_replay.mjs")
_REPORT = Path(__file__).with_name("_node_report.cjs")
_JEST_REPORTER = Path(__file__).with_name("_node_jest_reporter.cjs")
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
    others (Jest, Vitest: run with the project's runner, :func:`find_runner`; Mocha: not run)."""
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


_SIGSYS_STATUS = 128 + 31  # a shell's $? for a process killed by SIGSYS (seccomp)
_PACKAGE_JSON_LIMIT = 1 << 20


@dataclass(frozen=True)
class TestRunner:
    """The project's test runner: ``node`` (``node --test``), or ``jest``/``vitest`` with the CLI script of the
    project's own copy (by real path) and the ``node_modules`` folder holding it (shown read-only)."""

    name: str
    cli: str = ""
    modules: str = ""
    esm: bool = False  # Jest with native ES modules: ``scripts.test`` sets --experimental-vm-modules


_CLI = {"jest": ("jest", "bin", "jest.js"), "vitest": ("vitest", "vitest.mjs")}
_CONFIGS = {"jest": "jest.config.", "vitest": "vitest.config."}


def find_runner(root: Path, *, levels: int = 6) -> TestRunner | None:
    """Jest or Vitest, as ``package.json`` names it (``scripts.test`` first, then the dependencies, then a config
    file), when the project's ``node_modules`` (or one above it: a workspace) holds it; None otherwise."""
    try:
        text = (root / "package.json").read_text(encoding="utf-8")[:_PACKAGE_JSON_LIMIT]
        package = read_json(text, max_depth=16, max_chars=_PACKAGE_JSON_LIMIT)
    except (OSError, ValueError):
        package = None
    package = package if isinstance(package, dict) else {}
    scripts = package.get("scripts")
    script = str(scripts.get("test", "")) if isinstance(scripts, dict) else ""
    deps: set[str] = set()
    for field in ("devDependencies", "dependencies"):
        value = package.get(field)
        if isinstance(value, dict):
            deps |= {str(k) for k in value}
    try:
        names = {p.name for p in root.iterdir()}
    except OSError:
        names = set()
    order = [n for n in ("vitest", "jest") if re.search(rf"(?<![\w-]){n}(?![\w-])", script)]
    order += [n for n in ("vitest", "jest") if n in deps and n not in order]
    order += [n for n, prefix in _CONFIGS.items() if any(x.startswith(prefix) for x in names) and n not in order]
    if "vitest" not in order and any(x.startswith("vite.config.") for x in names) and "vitest" in deps:
        order.append("vitest")
    for name in order:
        for folder in [root, *list(root.parents)[: levels - 1]]:
            cli = folder.joinpath("node_modules", *_CLI[name])
            if cli.is_file():
                real = os.path.realpath(cli)
                # The node_modules holding the package's real files (a link into a store or another checkout).
                modules = real[: real.rindex(os.sep + "node_modules" + os.sep) + len(os.sep + "node_modules")]
                return TestRunner(name, real, modules, esm="--experimental-vm-modules" in script)
    return None


def record_snippet(name: str, output: str, *, max_calls: int, max_chars: int) -> str:
    """One line appended to the user's text in a record job: ``name``'s binding (and ``module.exports`` entries
    holding it) wrapped so that each call's arguments, when they are plain JSON (no functions, class instances,
    ``undefined``, holes), are appended to ``output`` as one line, up to ``max_calls`` distinct lists of at most
    ``max_chars``. One line after ``// @ts-ignore``, so TypeScript checkers (ts-jest) pass it; every name of its
    own starts with ``__cc_`` (it must not shadow the function's)."""
    code = (
        "(function(){try{if(typeof @NAME@!=='function')return;var __cc_f=@NAME@;var __cc_p=globalThis.process;"
        "var __cc_fs=(__cc_p&&__cc_p.getBuiltinModule&&__cc_p.getBuiltinModule('fs'))||"
        "(typeof require==='function'?require('fs'):null);if(!__cc_fs)return;var __cc_n=0,__cc_seen=new Set();"
        "var __cc_ok=function(v,d){if(d>20)return false;if(v===null||typeof v==='string'||typeof v==='boolean')"
        "return true;if(typeof v==='number')return isFinite(v);if(Array.isArray(v)){for(var i=0;i<v.length;i++)"
        "if(!(i in v)||!__cc_ok(v[i],d+1))return false;return true}if(typeof v==='object'){"
        "var q=Object.getPrototypeOf(v);if(q!==Object.prototype&&q!==null)return false;"
        "for(var k in v)if(!__cc_ok(v[k],d+1))return false;return true}return false};"
        "var __cc_w=function(){if(__cc_n<@MAX@){try{var a=Array.prototype.slice.call(arguments);"
        "if(__cc_ok(a,0)){var t=JSON.stringify(a);if(t.length<=@SIZE@&&!__cc_seen.has(t)){__cc_seen.add(t);"
        "__cc_n++;__cc_fs.appendFileSync(@OUT@,t+'\\n')}}}catch(e){}}return __cc_f.apply(this,arguments)};"
        "@NAME@=__cc_w;if(typeof module==='object'&&module&&module.exports){"
        "if(module.exports===__cc_f)module.exports=__cc_w;else for(var __cc_k in module.exports)"
        "if(module.exports[__cc_k]===__cc_f)module.exports[__cc_k]=__cc_w}}catch(__cc_e){}})();"
    )
    code = code.replace("@MAX@", str(max_calls)).replace("@SIZE@", str(max_chars)).replace("@OUT@", json.dumps(output))
    return "\n// @ts-ignore\n;" + code.replace("@NAME@", name) + "\n"


def expose_snippet(name: str) -> str:
    """One line appended to the text under test in an observe job: the function, for the replay to call."""
    code = "(function(){try{if(typeof @NAME@==='function')globalThis.__ccTarget=@NAME@}catch(__cc_e){}})();"
    return "\n// @ts-ignore\n;" + code.replace("@NAME@", name) + "\n"


def _rebindable(text: str, start: int, end: int, name: str) -> str:
    """``text`` with a ``const`` declaring ``name`` in lines ``[start, end)`` made ``let``, so the recorder can
    wrap it (record jobs only: what a candidate is judged on is never rewritten)."""
    lines = text.splitlines(keepends=True)
    span = "".join(lines[start:end])
    span = re.sub(rf"\bconst(\s+{re.escape(name)}\b)", r"let\1", span, count=1)
    return "".join(lines[:start]) + span + "".join(lines[end:])


def read_report_lines(lines: list[str], root: str) -> dict[str, str]:
    """Per test (``file::outer > inner``, the file relative to ``root``): ``passed``, ``failed``, ``skipped``, or
    ``error`` when reported more than once, from the lines ``_node_report.cjs`` cut from Jest's or Vitest's JSON
    report (``[file, name, status]`` each, parsed bounded; anything else is ignored)."""
    outcomes: dict[str, str] = {}
    for line in lines[:5000]:
        try:
            row = read_json(line, max_depth=2, max_chars=4096)
        except ValueError:
            continue
        if not (isinstance(row, list) and len(row) == 3 and all(isinstance(x, str) for x in row)):
            continue
        file, name, status = row
        if os.path.isabs(file) and Path(file).is_relative_to(root):
            file = Path(file).relative_to(root).as_posix()
        verdict = {"passed": "passed", "failed": "failed"}.get(status, "skipped")
        key = f"{file}::{name}"
        outcomes[key] = "error" if key in outcomes else verdict
    return outcomes


@dataclass
class _Plan:
    """What the record job found for a request: the runner, its test files, the recorded argument lists."""

    runner: TestRunner
    tests: tuple[str, ...]
    calls: tuple[str, ...]


class JsProjectRunner:
    """Runs the user's JavaScript and candidates with the project's tests (``node --test``, Jest, Vitest) and the
    calls they make to the selected function; ``workers`` jobs at a time."""

    def __init__(
        self,
        sandbox: Sandbox | None = None,
        *,
        workers: int = 2,
        timeout_s: float = 60.0,
        per_file_s: float = 20.0,
        runner_s: float = 90.0,
        replay_s: float = 20.0,
        max_files: int = 20,
        max_calls: int = 30,
        max_arg_chars: int = 4096,
    ) -> None:
        self._own = sandbox is None
        self.sandbox = sandbox or Sandbox(workers=workers, ahead=0, output_limit=1024 * 1024)
        self.timeout_s = timeout_s
        self.per_file_s = per_file_s
        self.runner_s = runner_s
        self.replay_s = replay_s
        self.max_files = max_files
        self.max_calls = max_calls
        self.max_arg_chars = max_arg_chars
        self._observed: OrderedDict[str, Behaviour] = OrderedDict()
        self._plans: OrderedDict[str, _Plan] = OrderedDict()

    def close(self) -> None:
        self._observed.clear()
        self._plans.clear()
        if self._own:
            self.sandbox.close()

    async def probe(self, request: Request, base: Probe | None) -> Probe | None:
        """The probe that runs the project's tests of the selected function and replays the calls they make to
        it; None when there are none to run (then the function is checked on its own, as outside a project)."""
        project = request.context.project
        if project is None or project.language not in LANGUAGES:
            return None
        start, end = request.context.start_line, request.context.end_line
        target = _selected_function(project.module_text, start, end, project.language)
        if target is None:
            return None
        root = Path(project.root)
        node_tests, others = await asyncio.to_thread(js_test_files, root, target, limit=self.max_files)
        runner = TestRunner("node") if node_tests else await asyncio.to_thread(find_runner, root)
        files = node_tests if node_tests else others[: self.max_files] if runner is not None else []
        if runner is None or not files or node_path() is None or self.sandbox.containment != "bubblewrap":
            return None  # the test runner starts processes: only the bubblewrap sandbox lets it
        if project.language == "typescript" and _esbuild_package() is None:
            return None
        shown = "node --test" if runner.name == "node" else runner.name
        notes: tuple[str, ...] = (
            f"{project.language}: executed with {shown} on {len(files)} test file(s) of your project",
        )
        if runner.name == "node" and others:
            notes += (f"{len(others)} test file(s) of {target} use another runner than node --test: not run",)
        key = content_digest(project.root, project.path, project.module_text, target, runner.cli, *files)
        plan = self._plans.get(key)
        if plan is None:
            plan = await self._record(project, target, (start, end), runner, tuple(files))
            self._plans[key] = plan
            if len(self._plans) > 64:
                self._plans.popitem(last=False)
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
            tests=plan.tests,
            recorded=len(plan.calls),
            recording=key,
            notes=notes,
        )
        return Probe(target, (), (), language=project.language, project=plain)

    async def _record(
        self, project: ProjectInfo, target: str, span: tuple[int, int], runner: TestRunner, files: tuple[str, ...]
    ) -> _Plan:
        """The record job: the tests run on the user's text with the recorder appended; the distinct argument
        lists the function was called with (plain JSON text, validated here, never evaluated here)."""
        text = _rebindable(project.module_text, *span, target)
        scratch = self.sandbox.scratch_dir or "/tmp"
        source = text + record_snippet(
            target, f"{scratch}/cc_rec.jsonl", max_calls=self.max_calls, max_chars=self.max_arg_chars
        )
        _, found, _ = await self._job(project, source, runner, files, calls=(), record=True)
        calls: list[str] = []
        for line in found.get("rec", []):
            try:
                value = read_json(line, max_depth=24, max_chars=self.max_arg_chars)
            except ValueError:
                continue
            if isinstance(value, list) and line not in calls:
                calls.append(line)
            if len(calls) >= self.max_calls:
                break
        return _Plan(runner, files, tuple(calls))

    async def observe(self, code: str, probe: Probe) -> Behaviour:
        """``code`` put in place of the target in its module: the recorded calls replayed, the selected test files
        run with the project's runner."""
        project = probe.project
        assert project is not None
        plan = self._plans.get(project.recording)
        if plan is None:  # its record job's plan was let go: the runner found again, no recorded calls
            node_tests, _ = await asyncio.to_thread(js_test_files, Path(project.root), project.target)
            found = TestRunner("node") if node_tests else await asyncio.to_thread(find_runner, Path(project.root))
            plan = _Plan(found or TestRunner("node"), project.tests, ())
        source = replace_span(project.module_text, project.start, project.end, code)
        if plan.calls:
            source += expose_snippet(project.target)
        key = content_digest(project.root, project.path, source, plan.runner.cli, *plan.tests, *plan.calls)
        cached = self._observed.get(key)
        if cached is not None:
            return cached
        nonce, signed, outcome = await self._job(
            project, source, plan.runner, plan.tests, calls=plan.calls, record=False
        )
        behaviour = self._read(nonce, signed, outcome, project, plan)
        if not outcome.timed_out:
            self._observed[key] = behaviour
            if len(self._observed) > 512:
                self._observed.popitem(last=False)
        return behaviour

    async def _job(
        self,
        project: ProjectInfo | ProjectProbe,
        source: str,
        runner: TestRunner,
        tests: tuple[str, ...],
        *,
        calls: tuple[str, ...],
        record: bool,
    ) -> tuple[str, dict[str, list[str]], ScriptOutcome]:
        """Run the job in a fresh sandbox through :mod:`~codeconductor.ensemble.verify._harness`: the nonce that
        frames the replay's lines, the signed lines by kind (:func:`_found`), the sandbox's outcome."""
        node = node_path()
        assert node is not None
        scratch = self.sandbox.scratch_dir or "/tmp"
        nonce = "cc" + secrets.token_hex(8)
        target = await asyncio.to_thread(os.path.realpath, project.path)
        root = await asyncio.to_thread(os.path.realpath, project.root)
        esbuild = _esbuild_package() if project.language == "typescript" else None
        job = {
            "target": target,
            "root": root,
            "hooks": f"{scratch}/cc_hooks.mjs",
            "source": source,
            "esbuild": esbuild or "",
            "calls": list(calls),
            "callTimeoutMs": 1000,
        }
        overlay = f"{scratch}/cc_overlay.cjs"
        preload = "file://" + scratch + "/cc_preload.mjs"
        env = {
            "CC_JOB": f"{scratch}/cc_node_job.json",
            "CC_EVENTS": f"{scratch}/cc_events",
            "NODE_OPTIONS": "",
            "NODE_PATH": "",
            "HOME": scratch,
            "TMPDIR": scratch,
            "CI": "1",
            "NO_COLOR": "1",
            "FORCE_COLOR": "0",
        }
        esbuild_env = {"ESBUILD_BINARY_PATH": esbuild_path() or ""}  # ours, for our hooks; never for vite's
        steps: list[dict[str, object]] = []
        if calls:
            steps.append({
                "kind": "rv",
                "argv": [node, "--require", overlay, "--import", preload, f"{scratch}/cc_replay.mjs", nonce],
                "env": {"CC_REPLAY": "1", **esbuild_env},
                "timeout": self.replay_s,
                "output": True,
                "prefix": nonce + " ",
            })  # fmt: skip
        if runner.name == "node":
            for index, file in enumerate(tests):
                steps.append({
                    "kind": "tap",
                    "index": index,
                    "argv": [node, "--require", overlay, "--import", preload, "--test", "--test-reporter=tap", file],
                    "env": esbuild_env,
                    "timeout": self.per_file_s,
                    "output": True,
                })  # fmt: skip
        else:
            report = f"{scratch}/cc_report.json"
            lines_file = f"{scratch}/cc_report.lines"
            if runner.name == "jest":
                args = ["--ci", "--cache=false", "--watchman=false", "--runInBand"]
                args += [f"--reporters={scratch}/cc_jest_reporter.cjs", "--runTestsByPath", *tests]
            else:
                args = ["run", "--watch=false", "--reporter=json", f"--outputFile={report}", *tests]
            node_options = "--disable-wasm-trap-handler --require " + overlay
            if runner.esm:
                node_options += " --experimental-vm-modules --no-warnings"
            steps.append({
                "kind": "t" if runner.name == "jest" else "run",
                "argv": [node, runner.cli, *args],
                "env": {"CC_REPORT": lines_file, "NODE_OPTIONS": node_options},
                "timeout": self.runner_s,
                "fresh": [report, lines_file],  # nothing written before the runner ran is read as its report
                "read": lines_file if runner.name == "jest" else "",
            })  # fmt: skip
            if runner.name == "vitest":
                steps.append({
                    "kind": "report",
                    "argv": [node, f"{scratch}/cc_report.cjs", report, nonce],
                    "timeout": 30.0,
                    "output": True,
                    "prefix": nonce + " t ",
                })  # fmt: skip
        files: list[tuple[str, str, int]] = [("ev", f"{scratch}/cc_events", 1000)]
        if record:
            files.insert(0, ("rec", f"{scratch}/cc_rec.jsonl", self.max_calls * 4))
        scripts = {
            "cc_node_job.json": json.dumps(job),
            "cc_preload.mjs": _PRELOAD.read_text(encoding="utf-8"),
            "cc_hooks.mjs": _HOOKS.read_text(encoding="utf-8"),
            "cc_overlay.cjs": _OVERLAY.read_text(encoding="utf-8"),
            "cc_replay.mjs": _REPLAY.read_text(encoding="utf-8"),
            "cc_report.cjs": _REPORT.read_text(encoding="utf-8"),
            "cc_jest_reporter.cjs": _JEST_REPORTER.read_text(encoding="utf-8"),
        }
        ro = [project.root, os.path.dirname(os.path.dirname(node))]
        if runner.modules:
            ro.append(runner.modules)
        if esbuild is not None:
            ro.append(os.path.dirname(esbuild))  # the node_modules holding esbuild and its native binary
        spent = self.per_file_s * len(tests) if runner.name == "node" else self.runner_s
        timeout = min(self.timeout_s + spent + (self.replay_s if calls else 0.0), 300.0)
        harness_job = {"kind": "js", "root": root, "env": env, "steps": steps, "files": files}
        report_ = await run_harness(
            self.sandbox, harness_job, ro_paths=ro, timeout_s=timeout, memory_mb=_NODE_MEMORY_MB, files=scripts
        )
        return nonce, _found(report_.records), report_.outcome

    def _read(
        self, nonce: str, found: dict[str, list[str]], outcome: ScriptOutcome, project: ProjectProbe, plan: _Plan
    ) -> Behaviour:
        tests: dict[str, str] = {}
        if plan.runner.name == "node":
            taps: dict[int, list[str]] = {}
            for line in found.get("tap", []):
                index, _, text = line.partition(" ")
                if index.isdigit():
                    taps.setdefault(int(index), []).append(text)
            for number, file in enumerate(plan.tests):
                tests.update(read_tap("\n".join(taps.get(number, [])), file))
        else:
            tests = read_report_lines(found.get("t", []), project.root)
        codes = [c.strip() for c in found.get("ev", [])]
        statuses = [int(c) for c in found.get("rc", []) if c.strip().isdigit()]
        if _SIGSYS_STATUS in statuses or outcome.hostile:
            codes.insert(0, "syscall")
        keys: tuple[str, ...] = ()
        if plan.calls:
            replayed = "".join(f"{nonce} {line}\n" for line in found.get("rv", []))
            why = "Timeout" if outcome.timed_out or (statuses and statuses[0] == 124) else "Lost"
            keys = tuple(_canonical(o.key) for o in read_harness_output(replayed, nonce, len(plan.calls), why))
        hostile = next((HOSTILE_REASONS.get(c, HOSTILE_GENERAL) for c in codes if c), None)
        if hostile is not None:
            return Behaviour(keys=(HOSTILE_KEY + hostile,) * max(1, len(keys)), passed=(), tests=())
        if not tests:
            done = "done" in found
            # The runner killed at its limit (timeout's status 124: an answer that loops) is no load error.
            stopped = outcome.timed_out or (plan.runner.name != "node" and statuses and statuses[-1] == 124)
            why = "Timeout" if stopped else "Lost" if not done else "load:no test reported a result"
            return Behaviour(keys=keys or (f"!{why}",), passed=())
        return Behaviour(keys=keys, passed=(), tests=tuple(sorted(tests.items())))


def _found(records: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The harness's signed records as lines by kind (``tap`` lines led by their file's index), and each step's
    exit status as a shell gives it (``124``: stopped at its time limit, ``128 + N``: killed by signal N) under
    ``rc``. A step killed by a signal it was not stopped with (its runner killed by code under test, or by the
    kernel) reports nothing: what it printed, and a report read after it, may be the killer's."""
    found: dict[str, list[str]] = {}
    killed = False
    for record in records:
        kind = str(record.get("step", ""))
        raw = record.get("lines")
        lines = [x for x in raw if isinstance(x, str)] if isinstance(raw, list) else []
        rc = record.get("rc")
        if isinstance(rc, int) and kind != "report":
            timed_out = record.get("timed_out") is True
            found.setdefault("rc", []).append(str(124 if timed_out else 128 - rc if rc < 0 else rc))
            killed = rc < 0 and not timed_out
            if killed:
                lines = []
        if kind == "report" and killed:
            lines = []
        if kind == "tap":
            lines = [f"{record.get('index')} {line}" for line in lines]
        if record.get("done") is True:
            found["done"] = []
        elif kind:
            found.setdefault("t" if kind == "report" else kind, []).extend(lines)
    return found


def _canonical(key: str) -> str:
    """An outcome key with its JSON value re-encoded here (sorted keys, no spaces): equal values, equal keys."""
    if not key.startswith("="):
        return key
    try:
        value = read_json(key[1:], max_depth=48, max_chars=4096)
    except ValueError:
        return key  # cut at its length limit: compared as text
    return "=" + json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
