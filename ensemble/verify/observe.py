"""Observe candidates for the consensus: run code on a :class:`~codeconductor.ensemble.consensus.behaviour.Probe` in the
sandbox and turn the outcomes into a :class:`~codeconductor.ensemble.consensus.behaviour.Behaviour`.

:class:`SandboxExecutor` is owned by whoever owns the sandbox (the ``Pipeline``; benchmarks) and closed with
it; its cache means the same code on the same probe runs once per executor.

Under the WebAssembly sandbox (where bubblewrap cannot run) only pure-Python values run: a request's project is
not run (the consensus compares values on the examples and probe inputs instead), and every result that ran says
where (:data:`~codeconductor.ensemble.verify._wasm.LABEL`).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict

from ..consensus.behaviour import Behaviour, Probe
from ..languages import is_python, language_for
from ..types import Request
from ._project_base import CompiledProjectRunner
from ._wasm import LABEL as WASM_LABEL
from ._wasm import PROGRAMS_NOTE
from .go_project import GoProjectRunner
from .java_project import JavaProjectRunner
from .js_project import LANGUAGES as JS_LANGUAGES
from .js_project import JsProjectRunner
from .project import ProjectRunner
from .rust_project import RustProjectRunner
from .sandbox import CallSpec, Sandbox

__all__ = ["SandboxExecutor"]


class SandboxExecutor:
    """Runs candidates in ``sandbox`` (one it owns when not given one) with a bounded per-executor cache."""

    def __init__(self, sandbox: Sandbox | None = None, *, call_timeout_s: float = 0.5, cache_size: int = 4096) -> None:
        self._own = sandbox is None
        self.sandbox = sandbox or Sandbox(workers=1)
        self.call_timeout_s = call_timeout_s
        self._cache: OrderedDict[str, Behaviour] = OrderedDict()
        self._cache_size = cache_size
        self._ran = False
        self._project: ProjectRunner | None = None  # started by the first request made in a project
        self._go: GoProjectRunner | None = None  # started by the first request made in a Go module
        self._js: JsProjectRunner | None = None  # started by the first request made in a JavaScript project
        self._in_wasm = False  # a job ran in the WebAssembly sandbox: every result says so
        self._project_skipped = False
        self._compiled: dict[str, CompiledProjectRunner] = {}  # Rust, Java: started by their first request

    def _projects(self) -> ProjectRunner:
        if self._project is None:
            self._project = ProjectRunner()
        return self._project

    def _go_modules(self) -> GoProjectRunner:
        if self._go is None:
            self._go = GoProjectRunner()
        return self._go

    def _js_projects(self) -> JsProjectRunner:
        if self._js is None:
            self._js = JsProjectRunner()
        return self._js

    def _compiled_runner(self, language: str) -> CompiledProjectRunner | None:
        """The runner of a compiled language's projects (Rust: cargo test; Java: javac and the JVM), or None."""
        made = {"rust": RustProjectRunner, "java": JavaProjectRunner}.get(language)
        if made is None:
            return None
        if language not in self._compiled:
            self._compiled[language] = made()
        return self._compiled[language]

    async def project_probe(self, request: Request, probe: Probe | None) -> Probe | None:
        """The probe that runs the request's code where it lives (:class:`~codeconductor.ensemble.verify.project.ProjectRunner`;
        Go: :class:`~codeconductor.ensemble.verify.go_project.GoProjectRunner`; JavaScript:
        :class:`~codeconductor.ensemble.verify.js_project.JsProjectRunner`)."""
        self._project_skipped = False
        if request.context.project is None:
            return None
        if not await asyncio.to_thread(lambda: self.sandbox.runs_programs):
            self._project_skipped = True  # the values probe decides instead; the result says why
            return None
        if request.context.project.language == "go":
            return await self._go_modules().probe(request, probe)
        if request.context.project.language in JS_LANGUAGES:
            return await self._js_projects().probe(request, probe)
        compiled = self._compiled_runner(request.context.project.language)
        if compiled is not None:
            return await compiled.probe(request, probe)
        return await self._projects().probe(request, probe)

    @property
    def notes(self) -> list[str]:
        notes: list[str] = []
        if self._in_wasm:
            notes.append(f"answers {WASM_LABEL}")
        if self._project_skipped:
            notes.append(f"your project's tests were not run: that {PROGRAMS_NOTE}")
        if self._ran and not self.sandbox.network_blocked:
            notes.append("sandbox could not block network access")
        return notes

    @property
    def cache(self) -> OrderedDict[str, Behaviour]:
        """Observed behaviours by key (benchmarks save and reload them)."""
        return self._cache

    @staticmethod
    def key(code: str, probe: Probe) -> str:
        digest = hashlib.sha256(code.encode())
        for example in probe.examples:
            digest.update(b"\0" + example.call.encode() + b"\1" + example.expected.encode())
        for call in probe.extra:
            digest.update(b"\0" + call.encode())
        digest.update(b"\2" + probe.language.encode())
        return digest.hexdigest()

    async def observe(self, code: str, probe: Probe) -> Behaviour:
        if probe.project is not None:
            self._ran = True
            if probe.project.language == "go":
                return await self._go_modules().observe(code, probe)
            if probe.project.language in JS_LANGUAGES:
                return await self._js_projects().observe(code, probe)
            compiled = self._compiled_runner(probe.project.language)
            if compiled is not None:
                return await compiled.observe(code, probe)
            return await self._projects().observe(code, probe)
        key = self.key(code, probe)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        calls = [CallSpec(e.call, e.expected) for e in probe.examples] + [CallSpec(c) for c in probe.extra]
        budget = min(3.0 + 0.1 * len(calls), self.call_timeout_s * len(calls) + 1.0)
        if is_python(probe.language):
            outcomes = await self.sandbox.arun_calls(
                code, probe.entry_point, calls, budget, call_timeout_s=self.call_timeout_s
            )
            self._in_wasm = self._in_wasm or self.sandbox.containment == "webassembly"
        else:  # node and the like start slower than a forked interpreter: a little more room
            outcomes = await language_for(probe.language).arun_calls(
                self.sandbox, code, probe.entry_point, calls, budget + 2.0, call_timeout_s=self.call_timeout_s
            )
        self._ran = True
        behaviour = Behaviour(
            keys=tuple(o.key for o in outcomes),
            passed=tuple(bool(o.matches) for o in outcomes[: len(probe.examples)]),
        )
        self._cache[key] = behaviour
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return behaviour

    def close(self) -> None:
        self._cache.clear()
        if self._project is not None:
            self._project.close()
            self._project = None
        if self._go is not None:
            self._go.close()
            self._go = None
        if self._js is not None:
            self._js.close()
            self._js = None
        for runner in self._compiled.values():
            runner.close()
        self._compiled.clear()
        if self._own:
            self.sandbox.close()
