"""Run the user's code where it lives: in its project, with the project's interpreter, on the calls its own tests
make, and with those tests as an oracle.

Every job is a fresh sandbox (:meth:`~codeconductor.ensemble.verify.sandbox.Sandbox.run_program` with the project's interpreter
by absolute path) that sees, read-only, the project root and the interpreter's prefixes and ``sys.path``;
nothing of the user's is written. Inside, :mod:`codeconductor.ensemble.verify._project_driver` imports the module by its
package name with the text under test (the user's buffer, or a candidate put in place of the target by
:func:`~codeconductor.ensemble.edits.replace_span`, the very text an edit would leave in the file).

Per request: the interpreter's ``sys.path`` (read once per interpreter, inside the sandbox: it is the project's
code), then one *record* job (the tests that name the target, found by reference in test functions and test
classes, ``unittest.TestCase`` ones included, through the import graph, else the tests of its module or package,
run on the user's code under a recorder that keeps up to ``max_calls`` distinct argument tuples, ``self``
included, as pickles that the parent never unpickles: they go, as opaque text, into the next jobs; and the tests
that called it, so only those run from then on), then one *observe* job per text (the original, cached per content, and each
candidate, side by side): return values and the arguments after the call as canonical reprs, exception type
names, and per-test outcomes. Comparing happens in the consensus (``consensus.gate.project_gate``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import secrets
import shlex
import textwrap
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .._targets import FunctionAt, find_tests, find_tests_importing, function_at
from ..consensus.behaviour import Behaviour, Probe, ProjectProbe
from ..context import parse_blocks
from ..edits import replace_span
from ..errors import SandboxError
from ..languages import Example, language_for
from ..types import ProjectInfo, Request
from ._project_driver import CONFIG_NAME, MARKER
from ._worker import BOOT, hostile_table
from .sandbox import HOSTILE_ERROR, Sandbox, ScriptOutcome

__all__ = ["InterpreterInfo", "ProjectRunner", "content_digest", "interpreter_paths_for", "signed_records"]

_log = logging.getLogger(__name__)
_DRIVER = Path(__file__).with_name("_project_driver.py")
_PYTEST_DRIVER = Path(__file__).with_name("_pytest_driver.py")
_DRIVER_NAME = "__cc_project__.py"
_SKIP_DIRS = frozenset({".git", ".venv", "venv", "env", "node_modules", "__pycache__", ".tox", ".nox", "build", "dist"})
ORACLE_INPUTS = 40


@dataclass(frozen=True)
class InterpreterInfo:
    """What the project's interpreter reported about itself, from inside the sandbox."""

    python: str
    version: tuple[int, ...]
    sys_path: tuple[str, ...]
    ro_paths: tuple[str, ...]  # what a job with this interpreter must see read-only


def _shown(python: str, root: str) -> str:
    """The interpreter as the user knows it: relative to the project when inside it."""
    try:
        return str(Path(python).relative_to(root))
    except ValueError:
        return python


def interpreter_paths_for(python: str) -> list[str]:
    """What the interpreter needs to start at all: its folder (and the real executable's), and for a virtual
    environment the environment and the base installation ``pyvenv.cfg`` names."""
    paths = {os.path.dirname(python), os.path.dirname(os.path.realpath(python))}
    venv = Path(python).parent.parent
    cfg = venv / "pyvenv.cfg"
    if cfg.is_file():
        paths.add(str(venv))
        for line in cfg.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home" and value.strip():
                paths.add(str(Path(value.strip()).parent))
    return sorted(p for p in paths if p and not p.startswith("/usr/") and p != "/usr")


def _compact(paths: Sequence[str]) -> tuple[str, ...]:
    """Existing paths, none inside another."""
    real = sorted({os.path.realpath(p) for p in paths if p and os.path.exists(p)} | {p for p in paths if p})
    out: list[str] = []
    for path in sorted(real, key=len):
        if not os.path.exists(path) or path == "/usr" or path.startswith("/usr/") or path in ("/", "/tmp"):
            continue
        if not any(path == p or path.startswith(p.rstrip("/") + "/") for p in out):
            out.append(path)
    return tuple(out)


def _test_files(root: Path, limit_bytes: int = 4 * 1024 * 1024, max_dirs: int = 5000) -> dict[str, str]:
    """The project's test files (relative path -> text): what :func:`find_tests` reads (bounded: a root that is
    a home folder must not be read whole)."""
    found: dict[str, str] = {}
    total = 0
    for visited, (folder, dirs, names) in enumerate(os.walk(root)):
        if visited >= max_dirs:
            break
        dirs[:] = sorted(
            d for d in dirs if d not in _SKIP_DIRS and not d.startswith(".") and not d.endswith(".egg-info")
        )
        for name in sorted(names):
            if not name.endswith(".py") or not (name.startswith("test_") or name.endswith("_test.py")):
                continue
            path = Path(folder) / name
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            total += len(text)
            if total > limit_bytes:
                return found
            found[path.relative_to(root).as_posix()] = text
    return found


class ProjectRunner:
    """Runs the user's code and candidates inside the user's project. One per executor; ``workers`` jobs at a
    time (candidates are observed side by side)."""

    def __init__(
        self,
        sandbox: Sandbox | None = None,
        *,
        workers: int = 4,
        timeout_s: float = 45.0,
        per_call_s: float = 1.0,
        per_test_timeout_s: float = 10.0,
        tests_budget_s: float = 20.0,
        max_calls: int = 30,
        max_pickle: int = 16384,
        max_tests: int = 40,
        memory_mb: int = 1024,
    ) -> None:
        self._own = sandbox is None
        self.sandbox = sandbox or Sandbox(workers=workers, ahead=0, output_limit=2 * 1024 * 1024)
        self.timeout_s = timeout_s
        self.per_call_s = per_call_s
        self.per_test_timeout_s = per_test_timeout_s
        self.tests_budget_s = tests_budget_s
        self.max_calls = max_calls
        self.max_pickle = max_pickle
        self.max_tests = max_tests
        self.memory_mb = memory_mb
        self._interpreters: dict[str, InterpreterInfo] = {}
        # key -> (recorded calls as opaque base64 pickles, sys.path the tests ran with, literal seeds, tests that
        # called the target)
        self._recordings: OrderedDict[str, tuple[list[str], tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = (
            OrderedDict()
        )
        self._observed: OrderedDict[str, Behaviour] = OrderedDict()
        # What each observed run's audit hook saw (by the same keys), and the runs under way (so the original's
        # run, which a candidate's is compared with, is made once even when both are asked for at the same time).
        self._audits: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[Behaviour]] = {}

    def close(self) -> None:
        self._observed.clear()
        self._recordings.clear()
        if self._own:
            self.sandbox.close()

    # -- jobs ------------------------------------------------------------------------------------------------
    def _files(self, config: dict[str, Any]) -> dict[str, str]:
        return {
            _DRIVER_NAME: _DRIVER.read_text(encoding="utf-8"),
            "__cc_pytest__.py": _PYTEST_DRIVER.read_text(encoding="utf-8"),
            CONFIG_NAME: json.dumps(config),
        }

    async def _job(
        self, python: str, config: dict[str, Any], ro_paths: Sequence[str]
    ) -> tuple[dict[str, Any], ScriptOutcome]:
        # -I: no user site, no PYTHONPATH; BOOT installs the audit hook (no writes outside the scratch, no
        # processes, no sockets) before the driver runs.
        # In the bubblewrap sandbox (namespaces, no network, read-only file system, seccomp, uid 65534) the project
        # runs as it does at home: its tests may load C libraries (ctypes), start processes and open local
        # sockets. The weaker fallback sandbox adds the audit hook (BOOT) that refuses those.
        boot = ["-c", BOOT] if self.sandbox.containment != "bubblewrap" else []
        key = secrets.token_bytes(32)  # signs the driver's report; read and deleted before the project loads
        try:
            outcome = await self.sandbox.arun_program(
                self._files({**config, "report_key": key.hex()}),
                [python, "-I", *boot, _DRIVER_NAME],
                self.timeout_s,
                memory_mb=self.memory_mb,
                max_procs=256,
                ro_paths=list(ro_paths),
            )
        except SandboxError as exc:  # the sandbox itself cannot run: nothing ran, and the result says so
            return {}, ScriptOutcome(-1, "", f"the sandbox cannot run here: {exc}", False, False, 0.0)
        records = [r for r in signed_records(outcome.stdout, key) if r.get(MARKER) == 1]
        # Two signed reports (one replayed) or a driver that did not end with status 0: trust none.
        data = records[0] if len(records) == 1 and outcome.exit_code == 0 else {}
        return data, outcome

    async def interpreter(self, python: str) -> InterpreterInfo | str:
        """The interpreter's paths, read inside the sandbox once per interpreter; a sentence saying what is wrong
        with it otherwise."""
        cached = self._interpreters.get(python)
        if cached is not None:
            return cached  # only what worked is kept: a failure is looked at again next time
        if not await asyncio.to_thread(_runnable, python):
            found: InterpreterInfo | str = f"the interpreter {python} does not exist or cannot be run"
        else:
            data, outcome = await self._job(python, {"mode": "info"}, interpreter_paths_for(python))
            raw = data.get("sys_path")
            if not isinstance(raw, list):
                detail = outcome.stderr.strip().splitlines()[-1:] if outcome.stderr.strip() else []
                found = f"the interpreter {python} could not start in the sandbox" + (
                    f" ({detail[0][:160]})" if detail else ""
                )
            else:
                sys_path = tuple(str(p) for p in raw if isinstance(p, str) and os.path.isabs(p))
                extra = [str(data.get("prefix", "")), str(data.get("base_prefix", ""))]
                version = tuple(int(v) for v in data.get("version", []) if isinstance(v, int))
                ro = _compact([*interpreter_paths_for(python), *extra, *sys_path])
                found = InterpreterInfo(python, version, sys_path, ro)
                self._interpreters[python] = found
        return found

    # -- the probe -------------------------------------------------------------------------------------------
    async def probe(self, request: Request, base: Probe | None) -> Probe | None:
        """``base`` (examples and generated calls, or None) extended to run in the request's project."""
        project = request.context.project
        if project is None:
            return None
        start, end = request.context.start_line, request.context.end_line
        found = _selected_function(project.module_text, start, end)
        if found is None:
            return None  # not a whole function's lines: a candidate could not stand in their place
        target = found.name
        examples, extra = self._calls(request, target, base, ())
        plain = ProjectProbe(
            root=project.root,
            module=project.module,
            target=target,
            python=project.python,
            module_text=project.module_text,
            start=start,
            end=end,
            path=project.path,
            import_root=project.import_root,
        )
        info = await self.interpreter(project.python)
        if isinstance(info, str):
            return Probe(target, examples, extra, project=replace(plain, problem=f"{info}; {_choose(project)}"))
        root = Path(project.root)
        tests_files = await asyncio.to_thread(_test_files, root)
        notes: list[str] = []
        named = find_tests(tests_files, target, project.module)
        # None names it: the tests of its module, else of its package, may still reach it (the recorder sees
        # every call they make, and tests that make none are left out below).
        package = project.module.split(".", 1)[0]
        tests = tuple(
            (
                named
                or find_tests_importing(tests_files, project.module)
                or (find_tests_importing(tests_files, package) if package != project.module else [])
            )[: self.max_tests]
        )
        plugins = _plugins_for(tests_files, tests)
        if not tests:
            notes.append(f"no tests of {target} found in your project: checked on inputs only")
        key = content_digest(
            project.python,
            project.root,
            project.module,
            target,
            project.module_text,
            json.dumps(tests_files, sort_keys=True),
        )
        recorded = self._recordings.get(key)
        if recorded is None:
            config = self._config(replace(plain, plugins=plugins), project.module_text, tests)
            config["mode"] = "record"
            data, outcome = await self._job(project.python, config, self._ro(plain, info))
            problem = _problem(data, outcome, project)
            if problem is not None:
                return Probe(target, examples, extra, project=replace(plain, problem=problem))
            raw = data.get("recordings")
            recordings = [r for r in raw if isinstance(r, str)] if isinstance(raw, list) else []
            sys_path = data.get("sys_path")
            extra_path = tuple(p for p in sys_path if isinstance(p, str)) if isinstance(sys_path, list) else ()
            if data.get("no_pytest") and tests:
                notes.append(
                    f"pytest is not installed for {_shown(project.python, project.root)}: your tests were not run"
                )
            seeds_raw = data.get("seeds")
            seeds = tuple(x for x in seeds_raw if isinstance(x, str))[:50] if isinstance(seeds_raw, list) else ()
            called = data.get("calls")
            callers_raw = data.get("callers")
            callers = [c for c in callers_raw if isinstance(c, str)] if isinstance(callers_raw, list) else []
            # The tests that called it while it was recorded (a test found by name that never calls it says
            # nothing about it); all those found when it was called outside any test (at import time).
            exercised = tuple(_within(callers, tests)[: self.max_tests]) or (
                tests if isinstance(called, int) and called > 0 else ()
            )
            recorded = (recordings, extra_path, seeds, exercised)
            self._recordings[key] = recorded
            if len(self._recordings) > 64:
                self._recordings.popitem(last=False)
        if tests and not recorded[3]:
            # Tests that never call it say nothing about it (and would vouch for any answer): left out.
            notes.append(f"the tests found never call {target}: checked without them")
        tests = recorded[3]
        if recorded[2]:
            # Inputs typed like the ones the project's own tests pass (the seeds are only parsed, never run here).
            examples, extra = self._calls(request, target, base, recorded[2])
        if not tests and not recorded[0] and not examples and not extra:
            problem = (
                f"no test in your project calls {target}, and a method cannot be called without one: "
                "add a test that uses it"
            )
            return Probe(target, examples, extra, project=replace(plain, problem=problem))
        probe = replace(
            plain,
            tests=tests,
            plugins=plugins,
            recorded=len(recorded[0]),
            recording=key,
            notes=tuple(notes),
        )
        return Probe(target, examples, extra, project=probe)

    def _calls(
        self, request: Request, target: str, base: Probe | None, seeds: Sequence[str]
    ) -> tuple[tuple[Example, ...], tuple[str, ...]]:
        """Docstring examples and generated inputs (call expressions, for a module-level function only: they
        name it as the module does); ``seeds``: recorded calls with literal arguments, whose types and values
        the generated inputs follow."""
        if "." in target:
            return (), ()
        if base is not None and base.entry_point == target and not seeds:
            return base.examples, base.extra
        language = language_for("python")
        code = textwrap.dedent(request.context.selection)
        examples = language.examples(code, target)
        typed_by = [*examples, *(Example(seed, "") for seed in seeds)]
        extra = language.generate_calls(code, target, typed_by, limit=ORACLE_INPUTS, wide=True)
        return tuple(examples), tuple(c for c in extra if c not in seeds)

    def _ro(self, project: ProjectProbe, info: InterpreterInfo) -> list[str]:
        return list(_compact([project.root, project.import_root, *info.ro_paths]))

    def _config(self, project: ProjectProbe, source: str, tests: Sequence[str]) -> dict[str, Any]:
        return {
            "root": project.root,
            "module": project.module,
            "filename": project.path,
            "source": source,
            "target": project.target,
            "tests": list(tests),
            "sys_path": [project.import_root],
            "max_calls": self.max_calls,
            "max_pickle": self.max_pickle,
            "per_call_s": self.per_call_s,
            "per_test_timeout_s": self.per_test_timeout_s,
            "tests_budget_s": self.tests_budget_s,
            "plugins": list(project.plugins),
        }

    # -- observing -------------------------------------------------------------------------------------------
    def _key(self, project: ProjectProbe, source: str, probe: Probe) -> str:
        return content_digest(project.recording, source, *[e.call for e in probe.examples], *probe.extra)

    async def observe(self, code: str, probe: Probe) -> Behaviour:
        """``code`` put in place of the target in the module, run on ``probe`` in the project. A candidate whose
        run sees a connection, a process, a signal or a write outside the scratch that the original's run on the
        same probe does not see is hostile (every key ``!Hostile:<reason>``): the user's own tests are never
        blamed on it."""
        project = probe.project
        assert project is not None
        source = replace_span(project.module_text, project.start, project.end, code)
        behaviour, added = await self._run_source(project, source, probe)
        if added and source != project.module_text:
            # The user's own module on the same probe: run once, or joined while it runs (never read before it ends).
            _, original = await self._run_source(project, project.module_text, probe)
            added = added - original
        if not added:
            return behaviour
        reason = _hostile_reason(added)
        keys = (HOSTILE_ERROR_KEY + reason,) * max(1, len(behaviour.keys))
        return replace(behaviour, keys=keys, passed=(False,) * len(behaviour.passed))

    async def _run_source(self, project: ProjectProbe, source: str, probe: Probe) -> tuple[Behaviour, frozenset[str]]:
        """``source`` (the whole module) observed on ``probe``, and the audit events its run saw: cached, joined
        while it runs, or run once."""
        key = self._key(project, source, probe)
        cached = self._observed.get(key)
        if cached is None:
            running = self._inflight.get(key)
            if running is None:
                running = asyncio.ensure_future(self._observe(project, source, probe, key))
                self._inflight[key] = running
                running.add_done_callback(lambda _: self._inflight.pop(key, None))
            cached = await asyncio.shield(running)
        return cached, self._audits.get(key, frozenset())

    async def _observe(self, project: ProjectProbe, source: str, probe: Probe, key: str) -> Behaviour:
        n_calls = len(probe.examples) + len(probe.extra)
        info = self._interpreters.get(project.python)
        recorded = self._recordings.get(project.recording, ([], (), (), ()))
        total = n_calls + len(recorded[0])
        if not isinstance(info, InterpreterInfo):
            return Behaviour(keys=("!load:interpreter",) * total, passed=(False,) * len(probe.examples))
        config = self._config(project, source, project.tests)
        config.update(
            mode="observe",
            calls=[e.call for e in probe.examples] + list(probe.extra),
            recordings=recorded[0],
            watch=sorted(_WATCHED),
        )
        config["sys_path"] = [project.import_root, *[p for p in recorded[1] if p != project.import_root]]
        data, outcome = await self._job(project.python, config, self._ro(project, info))
        keys_raw = data.get("keys")
        tests_raw = data.get("tests")
        tests = tuple(sorted((str(k), str(v)) for k, v in tests_raw.items())) if isinstance(tests_raw, dict) else ()
        if "load_error" in data:
            error = str(data.get("load_error"))[:80]
            keys: tuple[str, ...] = (f"!load:{error}",) * total
        elif isinstance(keys_raw, list) and len(keys_raw) == total and all(isinstance(k, str) for k in keys_raw):
            keys = tuple(keys_raw)
        else:
            why = "Timeout" if outcome.timed_out else "Lost"
            keys = (f"!{why}",) * total
            tests = tuple((t, "error") for t in project.tests)
        expected = [e.expected for e in probe.examples]
        passed = tuple(_matches(k, exp) for k, exp in zip(keys, expected, strict=False))
        behaviour = Behaviour(keys=keys, passed=passed, tests=tests)
        audit = data.get("audit")
        seen = [str(a) for a in audit[:32] if a == "write" or a in _WATCHED] if isinstance(audit, list) else []
        self._audits[key] = frozenset(seen)
        self._observed[key] = behaviour
        for kept in (self._observed, self._audits):
            if len(kept) > 512:
                kept.popitem(last=False)
        return behaviour


# What the project driver's audit hook watches (bubblewrap refuses none of it for a project's own tests): the
# values child's table without the look at the interpreter's internals (debuggers and coverage tools use those).
_TABLE, _WRITE_OUTSIDE = hostile_table()
_WATCHED = frozenset(e for e, reason in _TABLE.items() if "internals" not in reason)
HOSTILE_ERROR_KEY = "!" + HOSTILE_ERROR


def _hostile_reason(added: frozenset[str]) -> str:
    """The one reason shown for what a candidate's run added (a connection first, then a process, a signal, a
    write)."""
    reasons = [_WRITE_OUTSIDE if event == "write" else _TABLE[event] for event in sorted(added)]
    order = ("network", "process", "signal", "write")
    return min(reasons, key=lambda r: next((i for i, word in enumerate(order) if word in r), len(order)))


def _selected_function(text: str, start: int, end: int) -> FunctionAt | None:
    """The function whose lines ``[start, end)`` are (its decorators optional, blank lines after it allowed)."""
    blocks = parse_blocks(text, "python")
    found = function_at(blocks, start, "python")
    if found is None or start < found.start or end < found.end:
        return None
    lines = text.splitlines()
    if any(line.strip() for line in lines[found.end : end]):
        return None
    header = next((b for b in blocks if b.kind == "function" and b.start == found.start), None)
    return found if header is not None else None


# pytest plugins the tests may need (plugin autoloading is off in the sandbox), by a word their files use.
_PLUGINS = (("asyncio", "pytest_asyncio.plugin"), ("hypothesis", "hypothesis.extra.pytestplugin"))


def _plugins_for(files: dict[str, str], tests: Sequence[str]) -> tuple[str, ...]:
    texts = [files.get(t.split("::", 1)[0], "") for t in tests]
    return tuple(plugin for word, plugin in _PLUGINS if any(word in text for text in texts))


def _within(callers: Sequence[str], tests: Sequence[str]) -> list[str]:
    """The callers (pytest node ids, as ``PYTEST_CURRENT_TEST`` names them) that lie within the tests that were
    run (a file, a class or a test): nothing else is ever asked for."""
    return [c for c in callers if any(c == t or c.startswith(t + "::") for t in tests)]


def _runnable(python: str) -> bool:
    return os.path.isfile(python) and os.access(python, os.X_OK)


def _matches(key: str, expected: str) -> bool:
    from .compare import matches_expected

    return key.startswith("=") and matches_expected(key[1:], expected)


def signed_records(stdout: str, key: bytes, *, max_chars: int = 4 << 20) -> list[dict[str, Any]]:
    """The lines of ``stdout`` that are JSON objects, a tab and their HMAC-SHA256 under ``key`` (the per-job key
    only the sandbox's own harness or driver holds), parsed, in order; every other line is ignored."""
    records: list[dict[str, Any]] = []
    for line in stdout.splitlines():
        text, _, mac = line.rpartition("\t")
        if not text or len(mac) != 64 or len(text) > max_chars:
            continue
        expected = hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, mac):
            continue
        try:
            record = json.loads(text)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def content_digest(*parts: str) -> str:
    """A cache key for what a project job's outcome depends on (paths, texts, test ids), one part after another."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "replace") + b"\0")
    return digest.hexdigest()


def _choose(project: ProjectInfo) -> str:
    return (
        "choose the project's interpreter (in VS Code: Python: Select Interpreter; or the `python` setting; "
        "or `codeconductor ask --python PATH`)"
    )


def _problem(data: dict[str, Any], outcome: ScriptOutcome, project: ProjectInfo) -> str | None:
    """Why the user's module cannot run in its project, in words that say how to fix it; None when it ran."""
    shown = _shown(project.python, project.root)
    if not data:
        if outcome.timed_out:
            return "importing your module and running its tests took too long"
        tail = outcome.stderr.strip().splitlines()[-1:] if outcome.stderr.strip() else []
        return f"the interpreter at {shown} could not run it" + (f" ({tail[0][:160]})" if tail else "")
    if "driver_error" in data:
        return f"running it with the interpreter at {shown} failed ({data['driver_error']})"
    error = data.get("load_error")
    if error is None:
        return None
    missing = data.get("missing")
    if isinstance(missing, str) and missing:
        top = missing.split(".", 1)[0]
        return (
            f"your module imports `{top}`, which the interpreter at {shown} does not have: install it there "
            f"({shlex.quote(shown)} -m pip install {top}) or {_choose(project)}"
        )
    if error == "SyntaxError":
        line = data.get("line")
        return f"your module has a syntax error{f' at line {line}' if isinstance(line, int) else ''}: fix it first"
    detail = str(data.get("detail") or "")[:160]
    return f"importing your module raised {error}{f' ({detail})' if detail else ''} with the interpreter at {shown}"
