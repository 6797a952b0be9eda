"""Benchmark: CodeConductor on real code - functions and methods of real libraries, inside their own projects.

For each library (pure Python, from PyPI, shipping its tests in the sdist; pinned), the harness makes a project as
a user has one: the sdist unpacked, a ``.venv`` inside it with the library installed editable and pytest. It picks
functions and methods that the library's tests exercise (top-level tests that name them, and that kill at least
three one-token mutants), then asks through the public path, exactly as a user in that project would::

    cd <project> && codeconductor ask --json --quiet --file MODULE --lines A-B --task improve|fix|docstring TEXT

(``python -m codeconductor.cli`` of this checkout, settings in a private user config: three loopback models, history off).
The three "models" are a loopback OpenAI-compatible server (``tests/support/fault_server.py``) serving chosen
answers (``bench/mutants.py``):

* wrong answers: one-token mutants that the library's tests kill (verified by running them);
* right answers: behaviour-preserving rewrites that the tests pass (a mirrored comparison or the returned value
  through a local, with locals renamed; one more docstring line for ``docstring``); verified the same way.

Cells: ``improve-wrong`` (3 mutants), ``improve-mixed`` (2 mutants + 1 rewrite), ``fix`` (the user's file holds a
mutant; answers: the original + 2 other mutants), ``docstring`` (a docstring line added: to the original, and to 2
mutants), each with the docstring examples as shipped and with them removed from the user's file and the answers.
Every OFFERED edit is put into the module (``codeconductor.ensemble.edits.replace_span``, what the editor applies) and judged by
the library's own tests. Nothing is ever written to the project but the user's file for the time of its request.

Signals read from the ``--json`` Result (the integrator should keep them honest):

* the user's code ran: ``consensus.method`` ends with ``+original`` (the consensus compared the answers with what
  the user's code did; :func:`code_ran`);
* an edit is offered: ``consensus.pick`` non-empty and ``consensus.no_edit`` null (``ConsensusResult.offers_edit``);
* an offered edit is not checked: a note says so ("not checked", "confidence capped", "not verified", "not
  compared", "not executed"; :func:`not_checked`).

    python -m bench.realcode                           # default: 3 libraries x 4 functions, 8 requests each
    python -m bench.realcode --held-out                # a library this benchmark was not developed against
    python -m bench.realcode --libraries toolz==1.0.0 --functions 3 --seed 1 --json out.json
    python -m bench.realcode --engine ../other-checkout  # ask another CodeConductor checkout (before/after)

A run asks about no new function after ``--max-minutes`` (default 20); the libraries are taken in turn, so a run
stopped by the bound still covers each of them, and the first output line says so.

Needs network access to PyPI the first time (the sdists, pytest and the libraries' build backends); everything
is cached under ``$CODECONDUCTOR_BENCH_CACHE`` (default ``~/.cache/codeconductor-bench``), including the tests'
verdicts per module text, so a rerun only runs what is new.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import hashlib
import itertools
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.mutants import Mutant, add_doc_line, dedent_function, explain_return, mirror_compare, mutants, rename_locals
from bench.mutants import strip_examples as strip_function_examples

__all__ = ["code_ran", "main", "not_checked", "offers_edit", "reliability_bins"]

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LIBRARIES = ("toolz==1.0.0", "more-itertools==10.5.0", "boltons==24.1.0")
# Not looked at while this benchmark was written: run it to see whether the figures hold on code nobody tuned to.
HELD_OUT = ("inflection==0.5.1",)
PYTEST = "pytest==8.3.4"
CELLS = ("improve-wrong", "improve-mixed", "fix", "docstring")
VARIANTS = ("examples", "no-examples")
MODELS = (("qwen2.5-coder:7b", "qwen2"), ("llama3.1:8b", "llama"), ("deepseek-coder-v2:16b", "deepseek2"))
INSTRUCTIONS = {
    "improve": "Improve this code (readability, speed) without changing what it does.",
    "fix": "This code has a bug: fix it.",
    "docstring": "Write a better docstring for this code.",
}
MAX_TEST_NODES = 30  # a name found in more top-level tests than this is too common to find its tests by reference
MUTANTS_TRIED = 8  # per function: stop looking for killed mutants after this many test runs
REQUEST_TIMEOUT_S = 600.0


def _cache_root() -> Path:
    return Path(os.environ.get("CODECONDUCTOR_BENCH_CACHE", "~/.cache/codeconductor-bench")).expanduser()


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _sha(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


# -- the signals read from a Result ------------------------------------------------------------------------------


def offers_edit(result: dict[str, Any]) -> bool:
    """``ConsensusResult.offers_edit`` on the JSON document."""
    c = result.get("consensus") or {}
    return c.get("kind") == "code" and bool(str(c.get("pick", "")).strip()) and c.get("no_edit") is None


def code_ran(result: dict[str, Any]) -> bool:
    """Whether the consensus compared the answers with what the user's code did: ``method`` gets ``+original``
    exactly when the user's code ran and its behaviour was the oracle (``ensemble/consensus/__init__.py``)."""
    return "+original" in str((result.get("consensus") or {}).get("method", ""))


_UNCHECKED_WORDS = ("not checked", "confidence capped", "not verified", "not compared", "not executed")


def not_checked(result: dict[str, Any]) -> bool:
    """Whether an offered edit comes with a note saying it was not checked against the user's code."""
    notes = [*(result.get("notes") or []), *((result.get("consensus") or {}).get("notes") or [])]
    return offers_edit(result) and any(word in str(note).lower() for note in notes for word in _UNCHECKED_WORDS)


# -- libraries ---------------------------------------------------------------------------------------------------


@dataclass
class Library:
    spec: str
    name: str
    version: str
    home: Path  # cache folder of this library
    sdist: Path
    project: Path  # the user's project: the unpacked sdist with its .venv
    judge: Path  # a second copy where the judge puts edits and runs the tests
    package_root: str  # "" or "src": where the importable code lies inside the project
    modules: list[str]  # module files (relative paths), tests excluded
    test_files: list[str]

    @property
    def python(self) -> Path:
        return self.project / ".venv" / "bin" / "python"


def _run(
    cmd: Sequence[str | Path], *, cwd: Path | None = None, timeout: float = 900, env: dict[str, str] | None = None
) -> None:
    done = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(map(str, cmd))} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )


def _members(sdist: Path) -> dict[str, bytes]:
    """The sdist's files by path below its top folder."""
    out: dict[str, bytes] = {}
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            if member.isfile():
                handle = tar.extractfile(member)
                if handle is not None:
                    out[member.name.split("/", 1)[1] if "/" in member.name else member.name] = handle.read()
    return out


def _restore(tree: Path, members: dict[str, bytes]) -> None:
    """Make every Python file of ``tree`` as the sdist has it (a run that was killed may have left an edit)."""
    for rel, data in members.items():
        if not rel.endswith(".py"):
            continue
        path = tree / rel
        if not path.exists() or path.read_bytes() != data:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            _forget_bytecode(path)


def _unpack(members: dict[str, bytes], dest: Path) -> None:
    if dest.exists():
        return
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    for rel, data in members.items():
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    tmp.rename(dest)


_SKIP_DIRS = {"tests", "test", "testing", "docs", "doc", "examples", "benchmarks", "bench", ".venv", "build"}


def _layout(project: Path) -> tuple[str, list[str], list[str]]:
    """(package root, module files, test files) of an unpacked sdist."""
    root = "src" if (project / "src").is_dir() else ""
    base = project / root if root else project
    modules: list[str] = []
    for path in sorted(base.rglob("*.py")):
        rel = path.relative_to(base)
        if any(part in _SKIP_DIRS or part.startswith(".") for part in rel.parts[:-1]):
            continue
        if len(rel.parts) == 1 and path.name in ("setup.py", "conftest.py", "noxfile.py", "tasks.py", "fabfile.py"):
            continue
        if path.name.startswith("test_") or path.name.endswith("_test.py") or path.name == "conftest.py":
            continue
        if len(rel.parts) > 1 and not (base / rel.parts[0] / "__init__.py").exists():
            continue  # a folder that is not a package
        modules.append(str(path.relative_to(project)))
    tests = sorted(
        str(p.relative_to(project))
        for p in project.rglob("*.py")
        if (p.name.startswith("test_") or p.name.endswith("_test.py")) and ".venv" not in p.parts
    )
    return root, modules, tests


def prepare(spec: str) -> Library:
    """Download, unpack and install one library (cached)."""
    name, _, version = spec.partition("==")
    if not version:
        raise SystemExit(f"pin an exact version: {spec!r} (NAME==VERSION)")
    home = _cache_root() / f"{name}-{version}"
    sdists = home / "sdist"
    if not any(sdists.glob("*.tar.gz")):
        _log(f"[realcode] downloading the sdist of {spec}")
        sdists.mkdir(parents=True, exist_ok=True)
        _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", spec, "-d", sdists])
    sdist = next(sdists.glob("*.tar.gz"), None)
    if sdist is None:
        raise SystemExit(f"{spec}: no .tar.gz sdist on PyPI")
    members = _members(sdist)
    project, judge = home / "project", home / "judge"
    _unpack(members, project)
    _unpack(members, judge)
    _restore(project, members)
    _restore(judge, members)
    stamp = project / ".venv" / ".bench-installed"
    if not stamp.exists():
        _log(f"[realcode] {spec}: creating {project / '.venv'} (editable install + {PYTEST})")
        shutil.rmtree(project / ".venv", ignore_errors=True)
        _run([sys.executable, "-m", "venv", project / ".venv"])
        _run([project / ".venv" / "bin" / "python", "-m", "pip", "install", "-q", "-e", project, PYTEST])
        stamp.write_text(spec)
    root, modules, tests = _layout(project)
    if not tests:
        raise SystemExit(f"{spec}: the sdist ships no tests (test_*.py)")
    return Library(spec, name, version, home, sdist, project, judge, root, modules, tests)


# -- the judge: the library's own tests ----------------------------------------------------------------------------


def _forget_bytecode(path: Path) -> None:
    """Drop ``path``'s cached bytecode and give it a fresh mtime: an edit of the same size in the same second must
    not be served from a stale .pyc."""
    for pyc in (path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"):
        pyc.unlink(missing_ok=True)
    stamp = time.time_ns()
    os.utime(path, ns=(stamp, stamp))


class Judge:
    """Runs the selected tests of a library on a module text, with the module put in the judge's copy."""

    def __init__(self, library: Library) -> None:
        self.library = library
        self._cache_path = library.home / "verdicts.json"
        self._verdicts: dict[str, tuple[bool, float]] = {}  # key -> (the tests passed, their seconds)
        if self._cache_path.exists():
            with contextlib.suppress(ValueError, OSError, TypeError):
                saved = json.loads(self._cache_path.read_text())
                self._verdicts = {
                    k: (v, 0.0) if isinstance(v, bool) else (bool(v[0]), float(v[1])) for k, v in saved.items()
                }
        self.runs = 0
        self.seconds = 0.0
        self._originals = {m: (library.judge / m).read_text(encoding="utf-8") for m in library.modules}
        self._check_import_path()

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
        root = self.library.judge / self.library.package_root
        return env | {"PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"}

    def _check_import_path(self) -> None:
        """The judge must test its own copy, not the project's editable install."""
        module = self.library.modules[0]
        dotted = _dotted(module, self.library.package_root)
        code = f"import importlib, sys; m = importlib.import_module({dotted!r}); print(m.__file__)"
        done = subprocess.run(
            [str(self.library.python), "-c", code],
            cwd=self.library.judge,
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        where = Path(done.stdout.strip() or "/")
        if self.library.judge.resolve() not in where.resolve().parents:
            raise SystemExit(f"{self.library.spec}: the judge imports {dotted} from {where}, not from its copy")

    def save(self) -> None:
        tmp = self._cache_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._verdicts))
        tmp.replace(self._cache_path)

    def passes(self, module: str, text: str, nodes: Sequence[str], *, timeout: float = 300.0) -> bool:
        """Whether every selected test passes with ``module`` replaced by ``text`` (cached per text)."""
        key = _sha(module, text, *nodes)
        if key in self._verdicts:
            return self._verdicts[key][0]
        path = self.library.judge / module
        path.write_text(text, encoding="utf-8")
        _forget_bytecode(path)
        started = time.perf_counter()
        try:
            done = subprocess.run(
                [
                    str(self.library.python),
                    "-m",
                    "pytest",
                    "-q",
                    "-x",
                    "-p",
                    "no:cacheprovider",
                    "-o",
                    "addopts=",
                    "--no-header",
                    *nodes,
                ],
                cwd=self.library.judge,
                env=self._env(),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            verdict = done.returncode == 0
        except subprocess.TimeoutExpired:
            verdict = False  # a mutant that loops forever is wrong
        finally:
            path.write_text(self._originals[module], encoding="utf-8")
            _forget_bytecode(path)
            elapsed = time.perf_counter() - started
            self.runs += 1
            self.seconds += elapsed
        self._verdicts[key] = (verdict, round(elapsed, 3))
        return verdict

    def seconds_for(self, module: str, text: str, nodes: Sequence[str]) -> float:
        """How long the selected tests took on ``text`` when they were run (0 when they never were)."""
        return self._verdicts.get(_sha(module, text, *nodes), (False, 0.0))[1]


def _dotted(module: str, package_root: str) -> str:
    rel = Path(module).relative_to(package_root) if package_root else Path(module)
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


# -- targets: the functions and methods asked about ---------------------------------------------------------------


@dataclass
class Target:
    library: str
    module: str  # relative to the project
    qualname: str  # "func" or "Class.method"
    start: int  # 0-based first line (decorators included)
    end: int  # exclusive
    indent: str
    text: str  # dedented, as shipped
    has_examples: bool
    nodes: list[str]  # the tests that name it
    wrong: list[str] = field(default_factory=list)  # killed mutants (texts), at least 3
    wrong_kinds: list[str] = field(default_factory=list)
    right: str = ""  # a rewrite the tests pass whose code differs (improve)
    right_kind: str = ""
    doc_right: str = ""  # one more docstring line (docstring)
    test_s: float = 0.0  # the selected tests' time on the original (pytest start-up included)

    @property
    def is_method(self) -> bool:
        return "." in self.qualname

    @property
    def name(self) -> str:
        return self.qualname.rsplit(".", 1)[-1]


_TEST_CLASS = re.compile(r"(^Test|Tests?$|TestCase$)")


def _test_nodes(library: Library) -> list[tuple[str, str, set[str]]]:
    """(node id, file text, words) of each top-level test function and test class."""
    out = []
    for rel in library.test_files:
        text = (library.judge / rel).read_text(encoding="utf-8", errors="replace")
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                is_test = node.name.startswith("test")
            elif isinstance(node, ast.ClassDef):
                is_test = bool(_TEST_CLASS.search(node.name)) or any("TestCase" in ast.unparse(b) for b in node.bases)
            else:
                continue
            if is_test:
                segment = ast.get_source_segment(text, node) or ""
                out.append((f"{rel}::{node.name}", text, set(re.findall(r"\w+", segment))))
    return out


def _candidates(library: Library) -> list[Target]:
    nodes = _test_nodes(library)
    out: list[Target] = []
    for module in library.modules:
        text = (library.judge / module).read_text(encoding="utf-8")
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        lines = text.splitlines(keepends=True)
        found: list[tuple[str, ast.FunctionDef]] = []
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                found.append((node.name, node))
            elif isinstance(node, ast.ClassDef):
                found += [(f"{node.name}.{m.name}", m) for m in node.body if isinstance(m, ast.FunctionDef)]
        stem = Path(module).stem if Path(module).stem != "__init__" else Path(module).parent.name
        for qualname, fn in found:
            name = fn.name
            if name.startswith("__") or len(name) < 3:
                continue
            start = (fn.decorator_list[0].lineno if fn.decorator_list else fn.lineno) - 1
            end = fn.end_lineno or fn.lineno
            if not 4 <= end - start <= 60:
                continue
            owner = qualname.split(".")[0] if "." in qualname else None
            hits = [n for n, ftext, words in nodes if name in words and (owner is None or owner in ftext)]
            near = [n for n in hits if stem.lower() in n.split("::")[0].lower()]
            hits = near or hits
            if not hits or len(hits) > MAX_TEST_NODES:
                continue
            dedented, indent = dedent_function("".join(lines[start:end]))
            if len(mutants(dedented)) < 3 or add_doc_line(dedented) is None:
                continue
            if mirror_compare(dedented) is None and explain_return(dedented) is None:
                continue
            out.append(Target(library.spec, module, qualname, start, end, indent, dedented, ">>>" in dedented, hits))
    return out


def _module_with(library: Library, target: Target, func: str, original: str) -> str:
    """The module ``original`` with the target's lines replaced by ``func`` (dedented) at the target's indent."""
    lines = original.splitlines(keepends=True)
    body = "".join(target.indent + line if line.strip() else line for line in func.splitlines(keepends=True))
    if not body.endswith("\n"):
        body += "\n"
    return "".join(lines[: target.start]) + body + "".join(lines[target.end :])


def _verify(library: Library, judge: Judge, target: Target, rng: random.Random, originals: dict[str, str]) -> bool:
    """Find the target's killed mutants and verified rewrites; False when it does not qualify."""
    original = originals[target.module]
    if not judge.passes(target.module, original, target.nodes):
        return False
    target.test_s = judge.seconds_for(target.module, original, target.nodes)
    pool: list[Mutant] = mutants(target.text)
    rng.shuffle(pool)
    for mutant in pool[:MUTANTS_TRIED]:
        if not judge.passes(target.module, _module_with(library, target, mutant.text, original), target.nodes):
            target.wrong.append(mutant.text)
            target.wrong_kinds.append(f"{mutant.kind} {mutant.old}->{mutant.new}")
            if len(target.wrong) == 4:
                break
    if len(target.wrong) < 3:
        return False
    forms = [("mirror", mirror_compare(target.text, rng)), ("explain-return", explain_return(target.text))]
    rng.shuffle(forms)
    for kind, text in forms:
        if text is None:
            continue
        renamed = rename_locals(text)
        for candidate, label in ((renamed, f"{kind}+rename"), (text, kind)):
            if candidate and judge.passes(
                target.module, _module_with(library, target, candidate, original), target.nodes
            ):
                target.right, target.right_kind = candidate, label
                break
        if target.right:
            break
    doc = add_doc_line(target.text)
    if doc and judge.passes(target.module, _module_with(library, target, doc, original), target.nodes):
        target.doc_right = doc
    return bool(target.right and target.doc_right)


def select_targets(library: Library, judge: Judge, count: int, seed: int) -> list[Target]:
    """``count`` qualifying targets, mixing methods and functions, with and without examples (seeded)."""
    rng = random.Random(f"{seed}:{library.spec}")
    pool = _candidates(library)
    rng.shuffle(pool)
    strata: dict[tuple[bool, bool], list[Target]] = {}
    for target in pool:
        strata.setdefault((target.is_method, target.has_examples), []).append(target)
    order: list[Target] = []
    queues = [strata[key] for key in sorted(strata)]
    while any(queues):
        for queue in queues:
            if queue:
                order.append(queue.pop(0))
    originals = {m: (library.judge / m).read_text(encoding="utf-8") for m in library.modules}
    chosen: list[Target] = []
    for target in order[: 4 * count]:
        if _verify(library, judge, target, rng, originals):
            chosen.append(target)
            _log(
                f"[realcode] {library.spec}: {target.module}:{target.qualname} "
                f"({'method' if target.is_method else 'function'}, {'examples' if target.has_examples else 'no examples'};"
                f" wrong: {', '.join(target.wrong_kinds[:3])}; right: {target.right_kind})"
            )
            if len(chosen) == count:
                break
    judge.save()
    return chosen


# -- asking, as a user does ---------------------------------------------------------------------------------------


@dataclass
class Record:
    library: str
    target: str
    kind: str  # function | method
    has_examples: bool
    variant: str
    cell: str
    ran: bool = False
    offered: bool = False
    right: bool | None = None  # the offered edit passes the library's tests (None: nothing offered)
    confidence: float | None = None
    not_checked: bool = False
    wall_s: float = 0.0  # the command, start to exit
    engine_s: float | None = None  # Result.wall_s
    method: str = ""
    interpreter: str | None = None  # where the run's project interpreter came from (request.context.project)
    no_edit: str | None = None
    rejected: list[str] = field(default_factory=list)  # each answer group's reason for not being offered
    notes: list[str] = field(default_factory=list)
    error: str | None = None


def _fence(code: str) -> str:
    return f"Here is the code:\n\n```python\n{code.rstrip()}\n```\n"


def _request_plan(target: Target, cell: str) -> tuple[str, str, list[str]]:
    """(task, the user's function, the three answers) of a cell, as shipped (examples kept)."""
    w = target.wrong
    if cell == "improve-wrong":
        return "improve", target.text, [w[0], w[1], w[2]]
    if cell == "improve-mixed":
        return "improve", target.text, [w[0], w[1], target.right]
    if cell == "fix":
        return "fix", w[0], [target.text, w[1], w[2]]
    docs = [add_doc_line(w[0]) or w[0], add_doc_line(w[1]) or w[1]]
    return "docstring", target.text, [target.doc_right, *docs]


def cli_module(engine: Path) -> str:
    """The module that is the ``codeconductor`` command in the checkout ``engine``: ``codeconductor.cli``, or
    ``codeconductor.ensemble`` in a checkout from before the command line left the engine (for before/after runs)."""
    return "codeconductor.cli" if (engine / "cli" / "__main__.py").is_file() else "codeconductor.ensemble"


class Asker:
    """Runs ``codeconductor ask`` in a library's project against the loopback answer server."""

    def __init__(self, home: Path, engine: Path = ROOT) -> None:
        from tests.support.fault_server import FakeModel, FaultServer

        self.engine = engine
        self._fake = FakeModel
        self.server = FaultServer([FakeModel(name, family=family) for name, family in MODELS], apis=("openai",)).start()
        self.home = home
        config = home / "config" / "codeconductor"
        config.mkdir(parents=True, exist_ok=True)
        (config / "codeconductor.toml").write_text(
            'probe_local = false\nembedded = "off"\nhistory = false\n'
            f'\n[[endpoints]]\nurl = "{self.server.url}"\nkind = "openai"\nname = "bench"\n'
        )

    def close(self) -> None:
        self.server.stop()

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
        return env | {
            "PYTHONPATH": str(self.engine),
            "XDG_CONFIG_HOME": str(self.home / "config"),
            "XDG_DATA_HOME": str(self.home / "data"),
            "XDG_CACHE_HOME": str(self.home / "cache"),
            "COLUMNS": "200",
        }

    def ask(
        self,
        library: Library,
        module: str,
        span: tuple[int, int],
        *,
        task: str,
        user_module: str,
        answers: Sequence[str],
        rng: random.Random,
    ) -> tuple[dict[str, Any] | None, float, str | None]:
        """The Result of one request about lines ``span`` (0-based, end exclusive) of ``module`` while the file
        holds ``user_module`` and the three models answer ``answers`` (in a random order); with the command's
        wall time and an error when no Result came back."""
        start, end = span
        order = list(answers)
        rng.shuffle(order)
        self.server.set_models(
            [
                self._fake(name, family=family, text=_fence(text))
                for (name, family), text in zip(MODELS, order, strict=True)
            ]
        )
        path = library.project / module
        shipped = path.read_text(encoding="utf-8")
        path.write_text(user_module, encoding="utf-8")
        _forget_bytecode(path)
        started = time.perf_counter()
        try:
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    cli_module(self.engine),
                    "ask",
                    "--json",
                    "--quiet",
                    "--file",
                    module,
                    "--lines",
                    f"{start + 1}-{end}",
                    "--task",
                    task,
                    INSTRUCTIONS[task],
                ],
                cwd=library.project,
                env=self._env(),
                capture_output=True,
                text=True,
                timeout=REQUEST_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return None, time.perf_counter() - started, f"no result in {REQUEST_TIMEOUT_S:.0f} s"
        finally:
            path.write_text(shipped, encoding="utf-8")
            _forget_bytecode(path)
        wall = time.perf_counter() - started
        try:
            return json.loads(done.stdout), wall, None
        except ValueError:
            return None, wall, f"exit {done.returncode}: {done.stderr.strip()[-300:]}"


def _measure(library: Library, judge: Judge, asker: Asker, target: Target, rng: random.Random) -> list[Record]:
    original = (library.judge / target.module).read_text(encoding="utf-8")
    records: list[Record] = []
    for cell in CELLS:
        task, user, answers = _request_plan(target, cell)
        done: Record | None = None
        for variant in VARIANTS:
            base = Record(
                library=library.spec,
                target=f"{target.module}:{target.qualname}",
                kind="method" if target.is_method else "function",
                has_examples=target.has_examples,
                variant=variant,
                cell=cell,
            )
            if variant == "no-examples":
                stripped_user = strip_function_examples(user)
                if done is not None and stripped_user == user:
                    records.append(dataclasses.replace(done, variant=variant))  # the same request: measured once
                    continue
                user, answers = stripped_user, [strip_function_examples(a) for a in answers]
            user_module = _module_with(library, target, user, original)
            end = target.start + len(user.splitlines())  # the user's function: shorter without its examples
            result, wall, error = asker.ask(
                library,
                target.module,
                (target.start, end),
                task=task,
                user_module=user_module,
                answers=answers,
                rng=rng,
            )
            record = dataclasses.replace(base, wall_s=round(wall, 3), error=error)
            if result is not None:
                c = result.get("consensus") or {}
                record.ran = code_ran(result)
                record.offered = offers_edit(result)
                record.method = str(c.get("method", ""))
                project = ((result.get("request") or {}).get("context") or {}).get("project") or {}
                record.interpreter = project.get("python_source")
                record.no_edit = c.get("no_edit")
                record.rejected = [str(k.get("rejected")) for k in c.get("clusters") or [] if k.get("rejected")]
                record.notes = [*(result.get("notes") or []), *(c.get("notes") or [])]
                record.engine_s = result.get("wall_s")
                if record.offered:
                    from codeconductor.ensemble.edits import replace_span

                    record.confidence = float(c.get("confidence", 0.0))
                    record.not_checked = not_checked(result)
                    edited = replace_span(user_module, target.start, end, str(c["pick"]))
                    # The user's file differs from the shipped module only in the span: the edit is judged in place.
                    record.right = judge.passes(target.module, edited, target.nodes)
            records.append(record)
            done = record
    judge.save()
    return records


# -- the report ---------------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def reliability_bins(
    pairs: Sequence[tuple[float, bool]], edges: Sequence[float] = (0.0, 0.3, 0.5, 0.7, 0.9, 1.0001)
) -> list[dict[str, Any]]:
    """Confidence bins of offered edits: how many, mean confidence, share right."""
    out = []
    for lo, hi in itertools.pairwise(edges):
        inside = [(c, ok) for c, ok in pairs if lo <= c < hi]
        if inside:
            out.append(
                {
                    "bin": f"{lo:.1f}-{min(hi, 1.0):.1f}",
                    "n": len(inside),
                    "confidence": round(statistics.fmean(c for c, _ in inside), 3),
                    "right": round(sum(ok for _, ok in inside) / len(inside), 3),
                }
            )
    return out


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f} %" if whole else "-"


def summarize(records: Sequence[Record]) -> list[dict[str, Any]]:
    rows = []
    for cell in CELLS:
        for variant in VARIANTS:
            rs = [r for r in records if r.cell == cell and r.variant == variant]
            if not rs:
                continue
            offered = [r for r in rs if r.offered]
            walls = [r.wall_s for r in rs if r.error is None]
            rows.append(
                {
                    "cell": cell,
                    "variant": variant,
                    "requests": len(rs),
                    "errors": sum(r.error is not None for r in rs),
                    "ran": sum(r.ran for r in rs),
                    "offered": len(offered),
                    "right": sum(bool(r.right) for r in offered),
                    "wrong": sum(r.right is False for r in offered),
                    "wrong_ge_0_5": sum(r.right is False and (r.confidence or 0) >= 0.5 for r in offered),
                    "not_checked": sum(r.not_checked for r in offered),
                    "p50_s": percentile(walls, 0.5),
                    "p90_s": percentile(walls, 0.9),
                }
            )
    return rows


def render(records: Sequence[Record], size_line: str) -> str:
    rows = summarize(records)
    out = [size_line, ""]
    out.append(
        "| cell | examples | requests | user's code ran | edits offered | right offered | wrong offered "
        "(any / conf >= 0.5) | offered not checked | s/request p50 / p90 |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        n = row["requests"]
        right = "-" if row["cell"] == "improve-wrong" else f"{row['right']} ({_pct(row['right'], n)})"
        err = f" ({row['errors']} errors)" if row["errors"] else ""
        p50 = f"{row['p50_s']:.1f}" if row["p50_s"] is not None else "-"
        p90 = f"{row['p90_s']:.1f}" if row["p90_s"] is not None else "-"
        out.append(
            f"| {row['cell']} | {'yes' if row['variant'] == 'examples' else 'no'} | {n}{err} | {_pct(row['ran'], n)} "
            f"| {row['offered']} | {right} | {row['wrong']} / {row['wrong_ge_0_5']} "
            f"| {row['not_checked']} of {row['offered']} | {p50} / {p90} |"
        )
    out += ["", "By target kind (all cells, both variants):", ""]
    out.append("| kind | requests | user's code ran | edits offered | right | wrong |")
    out.append("|---|---|---|---|---|---|")
    for kind in ("function", "method"):
        rs = [r for r in records if r.kind == kind]
        if rs:
            out.append(
                f"| {kind} | {len(rs)} | {_pct(sum(r.ran for r in rs), len(rs))} | {sum(r.offered for r in rs)} "
                f"| {sum(bool(r.right) for r in rs)} | {sum(r.right is False for r in rs)} |"
            )
    sources = Counter(r.interpreter or "none" for r in records if r.error is None)
    out += [
        "",
        "Project interpreter used (request.context.project.python_source): "
        + ", ".join(f"{name} {count}" for name, count in sources.most_common()),
    ]
    pairs = [(r.confidence or 0.0, bool(r.right)) for r in records if r.offered]
    out += ["", f"Reliability of offered edits ({len(pairs)}): confidence bin vs share right", ""]
    out.append("| confidence | edits | mean confidence | right |")
    out.append("|---|---|---|---|")
    for b in reliability_bins(pairs):
        out.append(f"| {b['bin']} | {b['n']} | {b['confidence']:.2f} | {100 * b['right']:.0f} % |")
    return "\n".join(out)


# -- main ---------------------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.realcode", description=__doc__.split("\n\n")[0])
    parser.add_argument("--libraries", help=f"comma-separated NAME==VERSION (default: {','.join(DEFAULT_LIBRARIES)})")
    parser.add_argument("--held-out", action="store_true", help=f"run on {', '.join(HELD_OUT)} (not developed against)")
    parser.add_argument("--functions", type=int, default=4, help="functions and methods per library (default 4)")
    parser.add_argument(
        "--max-minutes", type=float, default=20.0, help="ask about no new function after this long (default 20)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write every record and the summary here")
    parser.add_argument(
        "--engine",
        type=Path,
        default=ROOT,
        help="the CodeConductor checkout whose `python -m codeconductor.cli` is asked",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    specs = (
        HELD_OUT
        if args.held_out
        else tuple(s.strip() for s in (args.libraries or ",".join(DEFAULT_LIBRARIES)).split(","))
    )
    started = time.perf_counter()
    home = Path(tempfile.mkdtemp(prefix="realcode-"))
    asker = Asker(home, args.engine.resolve())
    records: list[Record] = []
    measured: list[Target] = []
    judges: list[Judge] = []
    stopped = ""
    try:
        plans: list[list[tuple[Library, Judge, Target]]] = []
        for spec in (s for s in specs if s):
            library = prepare(spec)
            judge = Judge(library)
            judges.append(judge)
            chosen = select_targets(library, judge, args.functions, args.seed)
            if len(chosen) < args.functions:
                _log(f"[realcode] {spec}: only {len(chosen)} of {args.functions} functions qualify")
            plans.append([(library, judge, t) for t in chosen])
        # Round robin over the libraries, so a run stopped by the time bound still covers each of them.
        queue = [step for round_ in itertools.zip_longest(*plans) for step in round_ if step is not None]
        rngs = {spec: random.Random(f"{args.seed}:answers:{spec}") for spec in specs}
        for index, (library, judge, target) in enumerate(queue):
            if time.perf_counter() - started > args.max_minutes * 60:
                stopped = (
                    f"; stopped at the {args.max_minutes:g}-minute bound: {index} of {len(queue)} functions measured"
                )
                break
            records += _measure(library, judge, asker, target, rngs[library.spec])
            measured.append(target)
            _log(f"[realcode] {library.spec}: {target.qualname} measured ({len(records)} requests so far)")
    finally:
        asker.close()
        shutil.rmtree(home, ignore_errors=True)
    elapsed = time.perf_counter() - started
    targets = measured
    size = (
        f"{len(specs)} libraries ({', '.join(specs)}), {len(targets)} functions "
        f"({sum(t.is_method for t in targets)} methods, {sum(t.has_examples for t in targets)} with examples), "
        f"{len(records)} requests (seed {args.seed}); {sum(j.runs for j in judges)} test runs of the libraries "
        f"({sum(j.seconds for j in judges) / 60:.1f} min); {elapsed / 60:.1f} min in all{stopped}"
    )
    print(render(records, size))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "size": size,
                    "summary": summarize(records),
                    "reliability": reliability_bins(
                        [(r.confidence or 0.0, bool(r.right)) for r in records if r.offered]
                    ),
                    "targets": [
                        {k: v for k, v in asdict(t).items() if k not in ("text", "wrong", "right", "doc_right")}
                        for t in targets
                    ],
                    "records": [asdict(r) for r in records],
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
