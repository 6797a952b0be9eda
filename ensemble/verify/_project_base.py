"""What the runners of compiled-language projects share (Go, Rust, Java): find the selected function, put the
text under test in place of it (:func:`~codeconductor.ensemble.edits.replace_span`, the very text an edit would leave in the
file), run the project's tests on it in a fresh sandbox, read a keyed per-test report, and cache the behaviour by
:func:`~codeconductor.ensemble.verify.project.content_digest` (a timed-out run is not kept: a slow machine may finish next time).

The report of a Rust or Java job comes from :mod:`codeconductor.ensemble.verify._harness` (run in the sandbox): lines of JSON
each signed with an HMAC under a per-job key the code under test never sees; :func:`run_harness` keeps only the
lines whose signature is right. A test's verdict (:func:`verdict`) rests on its process's exit status, read by
the harness from ``waitpid``, and on its runner's result line for it appearing exactly once.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..consensus.behaviour import Behaviour, Probe, ProjectProbe
from ..edits import replace_span
from ..errors import SandboxError
from ..languages import Function, language_for
from ..types import Request
from .project import content_digest, signed_records
from .sandbox import Sandbox, ScriptOutcome

__all__ = [
    "CompiledProjectRunner",
    "HarnessReport",
    "behaviour_from_report",
    "bypass_refusal",
    "callers_of",
    "run_harness",
    "selected_function",
    "verdict",
]

_HARNESS = Path(__file__).with_name("_harness.py")


def selected_function(
    text: str, start: int, end: int, language: str, comments: tuple[str, ...] = ("//", "/*", "*")
) -> Function | None:
    """The top-level function (or method) whose lines ``[start, end)`` are: lines above it in the selection may
    only be comments (its doc comment, in or out) or attributes, lines after it only blank."""
    lines = text.splitlines()
    for function in language_for(language).functions(text):
        if function.start_line < start or function.end_line > end:
            continue
        before = lines[start : function.start_line]
        after = lines[function.end_line : end]
        if all(not ln.strip() or ln.strip().startswith(comments) for ln in before) and not any(
            ln.strip() for ln in after
        ):
            return function
    return None


def callers_of(bodies: dict[str, list[str]], target: str, *, depth: int = 3, limit: int = 60) -> list[str]:
    """``target`` and the functions that call it, directly or through others (``depth`` levels), nearest first:
    ``bodies`` maps each function name of the project to its bodies' texts (names are matched as words, so a
    common name over-includes: more tests run, none is missed)."""
    found = [target]
    frontier = [target]
    for _ in range(depth):
        pattern = re.compile(r"\b(?:" + "|".join(re.escape(n) for n in frontier) + r")\b")
        frontier = [n for n, texts in bodies.items() if n not in found and any(pattern.search(t) for t in texts)]
        found.extend(sorted(frontier))
        if not frontier or len(found) >= limit:
            break
    return found[:limit]


def verdict(rc: int, passes: int, fails: int, skips: int) -> str:
    """A test's outcome from its own process: exit 0 with exactly one result line saying it passed is a pass;
    a non-zero exit with exactly one line saying it failed (a panic, an uncaught exception too) a failure; a
    forged line (two of a kind, or both) or any other end (a timeout, a crash before the runner reported) an
    error."""
    if rc == 0 and passes == 1 and fails == 0 and skips == 0:
        return "passed"
    if rc == 0 and skips == 1 and passes == 0 and fails == 0:
        return "skipped"
    if rc != 0 and fails == 1 and passes == 0:
        return "failed"
    return "error"


def bypass_refusal(source: str, original: str, pattern: re.Pattern[str]) -> str | None:
    """Why the text under test is refused unrun: it uses a way to end (or replace) a test's process with status 0
    after printing a forged result line, or to run code before the test runner, more often than the user's own
    file does. None when it does not."""
    more = len(pattern.findall(source)) - len(pattern.findall(original))
    if more <= 0:
        return None
    used = sorted({m if isinstance(m, str) else m[0] for m in pattern.findall(source)})[:3]
    return f"uses {', '.join(used)}, which could end its tests early: not run"


class HarnessReport:
    """What one harness job reported: the signed records, in order, and the sandbox's outcome."""

    def __init__(self, records: list[dict[str, Any]], outcome: ScriptOutcome) -> None:
        self.records = records
        self.outcome = outcome

    @property
    def done(self) -> bool:
        return any(r.get("done") is True for r in self.records)

    @property
    def build(self) -> dict[str, Any] | None:
        return next((r for r in self.records if "build" in r), None)


async def run_harness(
    sandbox: Sandbox,
    job: dict[str, Any],
    *,
    ro_paths: Sequence[str],
    timeout_s: float,
    memory_mb: int,
    file_mb: int = 64,
    max_procs: int = 512,
    files: dict[str, str] | None = None,
) -> HarnessReport:
    """Run :mod:`~codeconductor.ensemble.verify._harness` on ``job`` in a fresh sandbox (``files``: more files for
    its scratch); the records it signed."""
    key = secrets.token_bytes(32)
    files = {
        **(files or {}),
        "cc_job.json": json.dumps({**job, "key": key.hex()}),
        "cc_harness.py": _HARNESS.read_text("utf-8"),
    }
    scratch = sandbox.scratch_dir or "/tmp"
    argv = [sys.executable, "-I", f"{scratch}/cc_harness.py", f"{scratch}/cc_job.json"]
    try:
        outcome = await sandbox.arun_program(
            files, argv, timeout_s, memory_mb=memory_mb, max_procs=max_procs, ro_paths=ro_paths, file_mb=file_mb
        )
    except SandboxError as exc:
        outcome = ScriptOutcome(-1, "", f"the sandbox cannot run here: {exc}", False, False, 0.0)
    return HarnessReport(signed_records(outcome.stdout, key), outcome)


def behaviour_from_report(report: HarnessReport, tests: Sequence[str], *, shown_path: tuple[str, str]) -> Behaviour:
    """Per test id (the probe's ``tests``), its verdict from the harness's signed records: a test reported twice
    (a replayed line) or never (the run ended early) is an error. A build that failed gives a ``!load:`` key with
    the compiler's first error (``shown_path``: the scratch path of the text under test, and the file name to
    show instead)."""
    build = report.build
    if build is not None:
        errors = [str(e) for e in build.get("errors") or [] if str(e).strip()]
        first = errors[0] if errors else ("the build timed out" if build.get("timed_out") else "it does not compile")
        first = first.replace(*shown_path).strip()
        return Behaviour(keys=(f"!load:{first[:160]}",), passed=())
    verdicts: dict[str, str] = {}
    for record in report.records:
        name = record.get("test")
        if not isinstance(name, str) or name not in tests:
            continue
        found = record.get("counts") or {}
        rc = record.get("rc")
        if name in verdicts or not isinstance(rc, int) or not isinstance(found, dict) or record.get("timed_out"):
            verdicts[name] = "error"
            continue
        if record.get("exit_only") is True:  # a program that checks and throws: its exit status is the verdict
            verdicts[name] = {0: "passed", 1: "failed", 3: "skipped"}.get(rc, "error")
            continue
        verdicts[name] = verdict(rc, *(int(found.get(k, 0)) for k in ("ok", "FAILED", "ignored")))
    if not report.done and not verdicts:
        why = "Timeout" if report.outcome.timed_out else "Lost"
        return Behaviour(keys=(f"!{why}",), passed=(), tests=tuple(sorted((t, "error") for t in tests)))
    return Behaviour(keys=(), passed=(), tests=tuple(sorted((t, verdicts.get(t, "error")) for t in tests)))


class CompiledProjectRunner(ABC):
    """The shared skeleton: a sandbox (its own unless given one), the probe's steps (the selected function, the
    toolchain and sandbox checks), ``observe`` with its cache, the refusal of a text that could end its tests
    early (``_bypass``, a pattern per language) and the harness job's run. Subclasses choose the tests
    (:meth:`_select_tests`) and make one job per text (:meth:`_run`, through :meth:`_run_job`).

    The limits are class attributes (each language's defaults) that a keyword of the constructor overrides."""

    language: str
    language_shown: str  # the language's name in messages ("Rust")
    no_toolchain: str  # the problem when the language's toolchain is missing, saying what to install
    comments: tuple[str, ...] = ("//", "/*", "*")  # what may stand above the function in the selection
    _bypass: re.Pattern[str] | None = None
    build_timeout_s: float
    per_test_timeout_s: float = 10.0
    max_tests: int = 40
    memory_mb: int  # the sandbox's address space for the whole job

    def __init__(
        self,
        sandbox: Sandbox | None = None,
        *,
        workers: int = 2,
        build_timeout_s: float | None = None,
        per_test_timeout_s: float | None = None,
        max_tests: int | None = None,
        memory_mb: int | None = None,
        output_limit: int = 256 * 1024,
    ) -> None:
        self._own = sandbox is None
        self.sandbox = sandbox or Sandbox(workers=workers, ahead=0, output_limit=output_limit)
        self._observed: OrderedDict[str, Behaviour] = OrderedDict()
        if build_timeout_s is not None:
            self.build_timeout_s = build_timeout_s
        if per_test_timeout_s is not None:
            self.per_test_timeout_s = per_test_timeout_s
        if max_tests is not None:
            self.max_tests = max_tests
        if memory_mb is not None:
            self.memory_mb = memory_mb

    def close(self) -> None:
        self._observed.clear()
        if self._own:
            self.sandbox.close()

    async def observe(self, code: str, probe: Probe) -> Behaviour:
        """``code`` put in place of the target in its file, the project's selected tests run on it."""
        project = probe.project
        assert project is not None
        source = replace_span(project.module_text, project.start, project.end, code)
        key = content_digest(project.root, project.path, source, *project.tests)
        cached = self._observed.get(key)
        if cached is not None:
            return cached
        refused = bypass_refusal(source, project.module_text, self._bypass) if self._bypass is not None else None
        if refused is not None:
            return self._keep(key, Behaviour(keys=(f"!load:{refused}",), passed=()))
        behaviour, timed_out = await self._run(project, source)
        if source == project.module_text and behaviour.keys and not behaviour.loaded and project.tests:
            # The user's own file does not compile: every test fails on it (what the test runner says too), so a
            # fix is held to making them pass; improve and docstring find nothing passing to keep and refuse.
            behaviour = Behaviour(keys=(), passed=(), tests=tuple(sorted((t, "failed") for t in project.tests)))
        return behaviour if timed_out else self._keep(key, behaviour)

    async def probe(self, request: Request, base: Probe | None) -> Probe | None:
        """The probe that runs the selected function's tests in its project; None when the selection is not one
        whole function (a candidate could not stand in its place); a probe whose ``project.problem`` says why
        nothing can run."""
        project = request.context.project
        if project is None or project.language != self.language:
            return None
        start, end = request.context.start_line, request.context.end_line
        found = selected_function(project.module_text, start, end, self.language, self.comments)
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
            language=self.language,
        )
        tests: tuple[str, ...] = ()
        notes: tuple[str, ...] = ()
        if not language_for(self.language).runs_in_project:
            problem: str | None = self.no_toolchain
        elif self.sandbox.containment != "bubblewrap":
            problem = f"{self.language_shown} code runs only in the bubblewrap sandbox, which cannot start here"
        else:
            tests, problem, notes = await self._select_tests(plain, found)
        probe = replace(plain, tests=tests, problem=problem, notes=() if problem else notes)
        return Probe(found.name, (), (), language=self.language, project=probe)

    @abstractmethod
    async def _select_tests(
        self, plain: ProjectProbe, found: Function
    ) -> tuple[tuple[str, ...], str | None, tuple[str, ...]]:
        """The test ids to run on the selected function ``found`` (at most :attr:`max_tests`), why nothing can
        run (None when something can), and the notes that say how it was run; the toolchain and the sandbox are
        known to be there."""

    @abstractmethod
    async def _run(self, project: ProjectProbe, source: str) -> tuple[Behaviour, bool]:
        """Run the tests on ``source`` (the module's whole text with the candidate in it): the behaviour, and
        whether the job ran out of time."""

    async def _run_job(
        self,
        project: ProjectProbe,
        job: dict[str, Any],
        *,
        ro_paths: Sequence[str],
        timeout_s: float,
        shown_path: tuple[str, str],
    ) -> tuple[Behaviour, bool]:
        """Run the harness ``job`` (at most 600 s), the behaviour per test of ``project`` and whether it timed out
        (``shown_path``: the scratch path of the text under test, and the file name to show instead)."""
        report = await run_harness(
            self.sandbox, job, ro_paths=ro_paths, timeout_s=min(timeout_s, 600.0), memory_mb=self.memory_mb
        )
        return behaviour_from_report(report, project.tests, shown_path=shown_path), report.outcome.timed_out

    def _keep(self, key: str, behaviour: Behaviour) -> Behaviour:
        self._observed[key] = behaviour
        if len(self._observed) > 512:
            self._observed.popitem(last=False)
        return behaviour


def bounded_files(root: Path, suffix: str, *, skip: Iterable[str], max_dirs: int = 5000) -> list[Path]:
    """Files under ``root`` ending in ``suffix``, in sorted order, folders named in ``skip`` and hidden ones left
    out (bounded: a root that is a home folder must not be read whole)."""
    skipped = set(skip)
    found: list[Path] = []
    for visited, (folder, dirs, names) in enumerate(os.walk(root)):
        if visited >= max_dirs:
            break
        dirs[:] = sorted(d for d in dirs if d not in skipped and not d.startswith("."))
        found.extend(Path(folder) / n for n in sorted(names) if n.endswith(suffix))
    return found
