"""Runs the user's pytest tests against a candidate edit, inside the sandbox, so "it passes the tests" is a fact.

The user's project is copied as text (:class:`ProjectSnapshot`: the tree minus ``.git``, virtual environments,
``node_modules``, caches, binary and large files, capped in total), the candidate replaces one function in one
file of that copy, and the chosen tests run with pytest in a contained sandbox child (scratch directory, no
network, clean environment, CPU/memory/process limits, wall timeout; see :mod:`codeconductor.ensemble.verify.sandbox`). The
user's own files are never written. A small driver script (:mod:`codeconductor.ensemble.verify._pytest_driver`) collects one
:class:`CaseResult` per test (outcome and a trimmed failure message) and reports them as JSON; each test also gets
its own time limit so one endless test does not hide the results of the others.

The report comes back on the sandboxed process's stdout as one line keyed by a per-run random key
(:func:`read_report`): a line without the key, a second keyed line or one that does not parse (bounded, not
recursive) and the run counts as failed - a report is never taken on trust.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..context import Block, parse_blocks
from ..edits import replace_span  # re-exported: the one code-to-span rule lives in codeconductor.ensemble.edits
from ..errors import RequestError
from ._pytest_driver import CONFIG_NAME, REPORT_MARKER
from .bounded import read_json
from .sandbox import Sandbox, shared_sandbox

__all__ = [
    "CaseResult",
    "ProjectSnapshot",
    "PytestReport",
    "PytestRunner",
    "locate_function",
    "read_report",
    "replace_span",
    "trim_message",
]

_log = logging.getLogger(__name__)

Outcome = Literal["passed", "failed", "error", "skipped", "timeout"]

DRIVER_NAME = "__codeconductor_pytest__.py"
# The driver is a module of this package (checked like the rest of the code); its source goes into the sandbox.
_DRIVER_PATH = Path(__file__).with_name("_pytest_driver.py")
_OUTCOMES = frozenset({"passed", "failed", "error", "skipped", "timeout"})

# Folders that never hold what a project's tests need, and would make the copy huge or leak secrets.
_SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        "env",
        ".env",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
        "build",
        "dist",
        ".idea",
        ".vscode",
        ".eggs",
    }
)
# Files that hold credentials are left out even when small and textual.
_SKIP_FILES = frozenset({".env", ".netrc", ".pypirc", "id_rsa", "id_ed25519", ".npmrc"})


def trim_message(text: str, limit: int = 1500) -> str:
    """Keep the head and, mostly, the tail of a failure message (the assertion is at the end of a traceback)."""
    text = text.strip()
    if len(text) <= limit:
        return text
    head = limit // 5
    return text[:head].rstrip() + "\n[...]\n" + text[-(limit - head) :].lstrip()


@dataclass(frozen=True)
class CaseResult:
    """One test's outcome; ``message`` is the trimmed assertion/traceback text when it did not pass."""

    nodeid: str
    outcome: Outcome
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"


@dataclass(frozen=True)
class PytestReport:
    """What one pytest run of the chosen tests did."""

    cases: tuple[CaseResult, ...]
    exit_code: int
    timed_out: bool
    network_blocked: bool
    wall_s: float
    errors: tuple[str, ...] = ()  # collection errors, crashes of the run itself (trimmed)
    notes: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> int:
        return sum(c.passed for c in self.cases)

    @property
    def failed(self) -> int:
        return sum(c.outcome in ("failed", "error", "timeout") for c in self.cases)

    @property
    def total(self) -> int:
        return len(self.cases)

    @property
    def ok(self) -> bool:
        """All chosen tests ran and passed (skips aside), and at least one passed: never a pass by default."""
        return not self.timed_out and not self.errors and self.passed > 0 and self.failed == 0 and self.exit_code == 0

    def summary(self) -> str:
        if self.timed_out and not self.cases:
            return "timed out"
        text = f"{self.passed}/{self.total} passed"
        if self.errors:
            text += f", {len(self.errors)} error(s)"
        if self.timed_out:
            text += ", timed out"
        return text

    def failure_text(self, limit: int = 3000, per_test: int = 800) -> str:
        """The failures as a model (or a person) should read them: test id, then its trimmed message."""
        parts = [f"ERROR: {trim_message(e, per_test)}" for e in self.errors]
        for case in self.cases:
            if case.outcome in ("failed", "error", "timeout"):
                parts.append(f"{case.outcome.upper()} {case.nodeid}\n{trim_message(case.message, per_test)}")
        if self.timed_out:
            parts.append("the test run did not finish within its time limit")
        return trim_message("\n\n".join(parts), limit)


@dataclass
class ProjectSnapshot:
    """The project's text files (relative POSIX path -> content), as the tests will see them."""

    root: Path
    files: dict[str, str]
    skipped: list[str] = field(default_factory=list)  # left out: too large, binary, or over the total cap

    @classmethod
    def capture(
        cls,
        root: Path | str,
        *,
        max_file_bytes: int = 256 * 1024,
        max_total_bytes: int = 8 * 1024 * 1024,
        must_include: Sequence[str] = (),
    ) -> ProjectSnapshot:
        """Read ``root``'s tree. Python files and small config files come first, so that the size cap drops
        data files rather than code; ``must_include`` (relative paths) are read whatever their size."""
        base = Path(root).resolve()
        if not base.is_dir():
            raise RequestError(f"project folder {base} does not exist")
        found: list[Path] = []
        for folder, dirs, names in os.walk(base):
            # Sorted, pruned in place: a deterministic copy without descending into skipped folders.
            dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.endswith(".egg-info"))
            found.extend(Path(folder) / n for n in sorted(names) if n not in _SKIP_FILES)
        wanted = {str(Path(p)) for p in must_include}

        def priority(path: Path) -> tuple[int, str]:
            rel = str(path.relative_to(base))
            return (0 if rel in wanted else 1 if path.suffix in (".py", ".pyi") else 2, rel)

        files: dict[str, str] = {}
        skipped: list[str] = []
        total = 0
        for path in sorted(found, key=priority):
            rel = path.relative_to(base).as_posix()
            if path.is_symlink() and not path.resolve().is_relative_to(base):
                skipped.append(rel)  # a link out of the project could expose anything on the disk
                continue
            try:
                size = path.stat().st_size
                forced = str(Path(rel)) in wanted
                if not forced and (size > max_file_bytes or total + size > max_total_bytes):
                    skipped.append(rel)
                    continue
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                skipped.append(rel)
                continue
            files[rel] = text
            total += len(text)
        return cls(base, files, skipped)

    def with_file(self, rel_path: str, text: str) -> dict[str, str]:
        """The snapshot's files with ``rel_path`` replaced by ``text`` (the candidate applied)."""
        return {**self.files, Path(rel_path).as_posix(): text}


def locate_function(text: str, name: str) -> tuple[int, int]:
    """Lines ``[start, end)`` of function ``name`` (or ``Class.method``) in Python source ``text``."""
    blocks = parse_blocks(text, "python")
    *outer, leaf = name.split(".")
    matches = [b for b in blocks if b.name == leaf and b.kind == "function"]
    if outer:
        classes = [b for b in blocks if b.name == outer[-1] and b.kind == "class"]
        matches = [m for m in matches if any(c.start <= m.start and m.end <= c.end for c in classes)]
    if not matches:
        raise RequestError(f"no function named {name!r} in the file")

    # A module-level function first, then the outermost: a nested helper of the same name is not what is meant.
    def nesting(block: Block) -> int:
        return sum(o.start <= block.start and block.end <= o.end and o != block for o in blocks)

    best = min(matches, key=lambda b: (nesting(b), b.start))
    return best.start, best.end


def _project_site_dirs(root: Path) -> list[str]:
    """The project's own virtual environment's site-packages, when it matches this interpreter's version, so
    its tests find their dependencies (read-only; nothing is installed)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    out = []
    for venv in (".venv", "venv", "env"):
        site_dir = root / venv / "lib" / version / "site-packages"
        if site_dir.is_dir():
            out.append(str(site_dir))
    return out


class PytestRunner:
    """Runs chosen pytest tests on a project snapshot with one file replaced, in the sandbox.

    ``timeout_s`` bounds the whole run; ``per_test_timeout_s`` each test. ``plugins`` are pytest plugins to load
    (plugin autoloading is off; ``pytest_asyncio.plugin`` is added by itself when a test file uses asyncio).
    """

    def __init__(
        self,
        sandbox: Sandbox | None = None,
        *,
        timeout_s: float = 60.0,
        per_test_timeout_s: float = 10.0,
        memory_mb: int = 1024,
        plugins: Sequence[str] = (),
        message_limit: int = 1500,
    ) -> None:
        self.sandbox = sandbox or shared_sandbox()
        self.timeout_s = timeout_s
        self.per_test_timeout_s = per_test_timeout_s
        self.memory_mb = memory_mb
        self.plugins = list(plugins)
        self.message_limit = message_limit

    def _files(
        self,
        files: Mapping[str, str],
        tests: Sequence[str],
        root: Path | None,
        extra_path: Sequence[str],
        report_key: str,
    ) -> dict[str, str]:
        plugins = list(self.plugins)
        test_files = {t.split("::", 1)[0] for t in tests}
        uses_asyncio = any(
            "asyncio" in text for path, text in files.items() if any(path.startswith(t) for t in test_files)
        )
        if uses_asyncio and "pytest_asyncio.plugin" not in plugins:
            try:
                import pytest_asyncio  # noqa: F401
            except ImportError:
                pass
            else:
                plugins.append("pytest_asyncio.plugin")
        sys_path = ["."] + (["src"] if any(p.startswith("src/") for p in files) else [])
        sys_path += [p for p in extra_path if p not in sys_path]
        config = {
            "tests": list(tests),
            "plugins": plugins,
            "per_test_timeout_s": self.per_test_timeout_s,
            "message_limit": self.message_limit,
            "sys_path": sys_path,
            "site_dirs": _project_site_dirs(root) if root is not None else [],
            "report_key": report_key,
        }
        driver = _DRIVER_PATH.read_text(encoding="utf-8")
        return {**files, DRIVER_NAME: driver, CONFIG_NAME: json.dumps(config)}

    def run(
        self, files: Mapping[str, str], tests: Sequence[str], *, root: Path | None = None, sys_path: Sequence[str] = ()
    ) -> PytestReport:
        """Run ``tests`` (pytest node ids or paths, relative to the project root) on ``files``; ``sys_path``:
        extra folders (relative) to import from, besides the root and ``src``."""
        if not tests:
            raise RequestError("no tests given: name at least one test (path/to/test_x.py::test_y)")
        key = secrets.token_hex(16)
        outcome = self.sandbox.run_script(
            self._files(files, tests, root, sys_path, key),
            [DRIVER_NAME],
            self.timeout_s,
            memory_mb=self.memory_mb,
            # The project's own site-packages, read-only: nothing else of the project enters the sandbox.
            ro_paths=_project_site_dirs(root) if root is not None else (),
        )
        notes = () if outcome.network_blocked else ("the sandbox could not block network access",)
        data, problem = read_report(outcome.stdout, key, limit=self.sandbox.output_limit + 64)
        if data is None:
            # No report we can trust: the run was killed (time, memory), crashed before pytest could answer, or
            # something printed a report that is not the driver's.
            why = problem or ("timed out" if outcome.timed_out else f"exited with code {outcome.exit_code}")
            detail = trim_message(outcome.stderr, self.message_limit) if not problem else ""
            cases = tuple(CaseResult(t, "timeout" if outcome.timed_out else "error", why) for t in tests)
            return PytestReport(
                cases,
                outcome.exit_code or 1,
                outcome.timed_out,
                outcome.network_blocked,
                outcome.wall_s,
                errors=(f"the test run {why}" + (f": {detail}" if detail else ""),),
                notes=notes,
            )
        raw_tests, raw_errors, code = data["tests"], data["errors"], data["exit_code"]
        cases = tuple(CaseResult(t["nodeid"], t["outcome"], t.get("message", "")) for t in raw_tests)
        errors = tuple(raw_errors)
        if not cases and not errors and code != 0:
            # pytest collected nothing (a wrong test id): exit 4/5.
            errors = (f"pytest found no tests for {', '.join(tests)} (exit code {code})",)
        return PytestReport(cases, code, outcome.timed_out, outcome.network_blocked, outcome.wall_s, errors, notes)

    async def arun(
        self, files: Mapping[str, str], tests: Sequence[str], *, root: Path | None = None, sys_path: Sequence[str] = ()
    ) -> PytestReport:
        import asyncio

        return await asyncio.to_thread(self.run, files, tests, root=root, sys_path=sys_path)


def read_report(stdout: str, key: str, *, limit: int = 1 << 20) -> tuple[dict[str, Any] | None, str]:
    """The driver's report from ``stdout``: the one line ``REPORT_MARKER KEY JSON``, checked in shape. Returns
    (report, "") or (None, why): no report at all (why is empty), or one that cannot be trusted - a report line
    without the key or with another, two keyed lines, JSON that does not parse, is too large or too deeply nested
    (read without recursion), or has the wrong shape. Never raises."""
    marker = REPORT_MARKER + " "
    lines = [ln for ln in stdout.splitlines() if REPORT_MARKER in ln]
    if not lines:
        return None, ""
    keyed = [ln for ln in lines if ln.startswith(marker + key + " ")]
    if len(keyed) != len(lines):
        return None, "printed a report that is not the driver's"
    if len(keyed) > 1:
        return None, "printed the report twice"
    try:
        data = read_json(keyed[0][len(marker) + len(key) + 1 :], max_depth=4, max_chars=limit)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not _report_shape(data):
        return None, "printed a malformed report"
    return data, ""


def _report_shape(data: dict[str, Any]) -> bool:
    tests, errors, code = data.get("tests"), data.get("errors"), data.get("exit_code")
    if not isinstance(tests, list) or not isinstance(errors, list) or type(code) is not int:
        return False
    if not all(isinstance(e, str) for e in errors):
        return False
    seen: set[str] = set()
    for test in tests:
        if not isinstance(test, dict) or not isinstance(test.get("nodeid"), str) or test["nodeid"] in seen:
            return False
        if test.get("outcome") not in _OUTCOMES or not isinstance(test.get("message", ""), str):
            return False
        seen.add(test["nodeid"])
    return True
