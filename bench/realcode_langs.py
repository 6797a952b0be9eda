"""Benchmark: CodeConductor on real JavaScript, Go and Rust code, inside the projects that ship it with their tests
(issue 26), the same cells and signals as :mod:`bench.realcode` (read its docstring).

Projects, fetched at benchmark time and cached under ``$CODECONDUCTOR_BENCH_CACHE`` (default
``~/.cache/codeconductor-bench``):

* npm: ``fast-content-type-parse@4.0.1`` (``npm pack``; CommonJS, no dependencies, ``node --test`` tests in the
  tarball);
* npm: ``hashids@2.3.0`` (``npm pack``; TypeScript, Jest tests in ``src/tests``): its Jest setup is not in the
  tarball, so the benchmark installs ``jest``, ``ts-jest`` and ``typescript`` (pinned, :data:`JEST_TOOLS`) into a
  folder beside it, links them into its ``node_modules`` and writes a ``jest.config.js`` (ts-jest, transpile
  only); CodeConductor finds Jest from that config and runs it from the package's ``node_modules``;
* Go: ``github.com/pmezard/go-difflib`` 1.0.0, from Debian's ``golang-github-pmezard-go-difflib-dev``
  (``apt-get download``): the Go module proxy is not reachable from this machine (``go mod download`` fails on
  DNS), so the module's source and tests come through apt; it predates modules, so a ``go.mod`` is written.
* Rust: the crate ``strsim`` 0.10.0 from Debian's ``librust-strsim-dev`` (``apt-get download``: crates.io is not
  reachable from this machine; Debian ships the crate as published, ``tests/`` and doc examples included); no
  dependencies, so ``cargo test --offline`` builds it.

Java is not measured here: no Java project with dependency-free tests (a ``main`` that checks) ships through
apt or PyPI/npm, and Maven Central is not reachable (tests/integration/test_java_project.py covers the rules).

Targets: the functions of the main file that the tests name and for which one-token mutants (an operator or a
literal swapped) are killed by the project's tests, run directly (``node --test``, ``go test``; outside the
sandbox: the answers are ours, not a model's). Right answers are mirrored comparisons (``a < b`` -> ``b > a``)
that the tests pass. Each request goes through the public path::

    cd <project> && codeconductor ask --json --quiet --file FILE --lines A-B --task improve|fix TEXT

with three loopback "models" (``tests/support/fault_server.py``) serving the chosen answers. Cells:
``improve-wrong`` (3 mutants), ``improve-mixed`` (2 mutants + 1 rewrite), ``fix`` (the user's file holds a
mutant; answers: the original and 2 other mutants). Every offered edit is put into the file and judged by the
project's own tests.

    python -m bench.realcode_langs                   # the three projects, 4 functions each
    python -m bench.realcode_langs --functions 2 --only go --json out.json
    python -m bench.realcode_langs --functions 2 --only jest --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.realcode import Asker, code_ran, not_checked, offers_edit
from codeconductor.ensemble.edits import replace_span
from codeconductor.ensemble.languages import language_for

__all__ = ["main"]

NPM_PACKAGE = "fast-content-type-parse@4.0.1"
JEST_PACKAGE = "hashids@2.3.0"
JEST_TOOLS = ("jest@30.2.0", "ts-jest@29.4.15", "typescript@5.9.3")
_JEST_CONFIG = """module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/src"],
  testMatch: ["**/*.test.ts"],
  // requiring.test.ts loads the built cjs/ copy, which is not the file under test.
  testPathIgnorePatterns: ["/node_modules/", "/tests-mjs/", "requiring"],
  transform: { "^.+\\\\.ts$": ["ts-jest", { isolatedModules: true, diagnostics: false }] },
};
"""
GO_DEB = "golang-github-pmezard-go-difflib-dev"
RUST_DEB = "librust-strsim-dev"
CELLS = ("improve-wrong", "improve-mixed", "fix")
# One-token swaps (the mutants); each pattern is tried at each place it matches in the function's body.
_SWAPS = (
    (r"===", "!=="), (r"!==", "==="), (r"(?<![=!])==(?!=)", "!="), (r"!=(?!=)", "=="), (r"<=", "<"), (r">=", ">"),
    (r"(?<![<=-])<(?![<=-])", "<="), (r"(?<![>=-])>(?![>=])", ">="), (r"&&", "||"), (r"\|\|", "&&"),
    (r"\+\+", "--"), (r"(?<![+=])\+(?![+=])", "-"), (r"\btrue\b", "false"), (r"\bfalse\b", "true"),
    (r"\b0\b", "1"), (r"\b1\b", "0"),
)  # fmt: skip
_MIRROR = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "===": "===", "!==": "!==", "==": "==", "!=": "!="}
_COMPARE = re.compile(r"\b([A-Za-z_][\w.]*|\d+) (<=|>=|===|!==|==|!=|<|>) ([A-Za-z_][\w.]*|\d+)\b")
MUTANTS_TRIED = 10


@dataclass
class Project:
    name: str
    language: str  # javascript | typescript | go | rust
    root: Path
    file: str  # relative path of the file whose functions are asked about
    test_cmd: list[str]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def project(self) -> Path:  # what bench.realcode.Asker runs in
        return self.root


@dataclass
class Target:
    name: str
    start: int
    end: int
    text: str
    wrong: list[str]
    right: str


@dataclass
class Record:
    project: str
    target: str
    cell: str
    ran: bool = False
    offered: bool = False
    right: bool | None = None
    confidence: float | None = None
    not_checked: bool = False
    wall_s: float = 0.0
    method: str = ""
    no_edit: str | None = None
    rejected: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    pick: str | None = None  # the offered edit
    answers: list[str] = field(default_factory=list)  # what the three models answered, the user's code first


def _cache() -> Path:
    root = Path(os.environ.get("CODECONDUCTOR_BENCH_CACHE", Path.home() / ".cache" / "codeconductor-bench"))
    path = root / "langs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prepare_npm(cache: Path) -> Project:
    folder = cache / "npm"
    package = folder / "package"
    if not (package / "package.json").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["npm", "pack", NPM_PACKAGE, "--silent"], cwd=folder, capture_output=True, text=True, check=True
        )
        with tarfile.open(folder / done.stdout.strip().splitlines()[-1]) as tar:
            tar.extractall(folder, filter="data")
    node = shutil.which("node") or "node"
    return Project(NPM_PACKAGE, "javascript", package, "index.js", [node, "--test", "test/"])


def prepare_jest(cache: Path) -> Project:
    folder = cache / "jest"
    package = folder / "package"
    tools = folder / "tools"
    if not (package / "jest.config.js").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["npm", "pack", JEST_PACKAGE, "--silent"], cwd=folder, capture_output=True, text=True, check=True
        )
        with tarfile.open(folder / done.stdout.strip().splitlines()[-1]) as tar:
            tar.extractall(folder, filter="data")
        tools.mkdir(exist_ok=True)
        (tools / "package.json").write_text('{"private": true}\n', encoding="utf-8")
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", *JEST_TOOLS],
            cwd=tools,
            capture_output=True,
            check=True,
        )
        (package / "node_modules").mkdir(exist_ok=True)
        for name in ("jest", "ts-jest", "typescript"):
            (package / "node_modules" / name).symlink_to(tools / "node_modules" / name)
        (package / "jest.config.js").write_text(_JEST_CONFIG, encoding="utf-8")
    node = shutil.which("node") or "node"
    jest = [node, str(package / "node_modules" / "jest" / "bin" / "jest.js"), "--ci", "--cache=false"]
    return Project(JEST_PACKAGE, "typescript", package, "src/hashids.ts", jest)


def prepare_go(cache: Path) -> Project:
    folder = cache / "go"
    module = folder / "go-difflib"
    if not (module / "go.mod").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", GO_DEB], cwd=folder, capture_output=True, check=True)
        deb = next(folder.glob(f"{GO_DEB}_*.deb"))
        subprocess.run(["dpkg", "-x", str(deb), str(folder / "x")], check=True)
        source = folder / "x" / "usr" / "share" / "gocode" / "src" / "github.com" / "pmezard" / "go-difflib"
        shutil.copytree(source, module, dirs_exist_ok=True)
        (module / "go.mod").write_text("module github.com/pmezard/go-difflib\n\ngo 1.19\n", encoding="utf-8")
    env = {"GOPROXY": "off", "GOFLAGS": "-mod=mod", "GOCACHE": str(folder / "gocache"), "CGO_ENABLED": "0"}
    go = shutil.which("go") or "go"
    return Project("github.com/pmezard/go-difflib@1.0.0", "go", module, "difflib/difflib.go",
                   [go, "test", "-count=1", "./difflib/"], env)  # fmt: skip


def prepare_rust(cache: Path) -> Project:
    folder = cache / "rust"
    crate = folder / "strsim"
    if not (crate / "Cargo.toml").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", RUST_DEB], cwd=folder, capture_output=True, check=True)
        deb = next(folder.glob(f"{RUST_DEB}_*.deb"))
        subprocess.run(["dpkg", "-x", str(deb), str(folder / "x")], check=True)
        source = next((folder / "x" / "usr" / "share" / "cargo" / "registry").glob("strsim-*"))
        shutil.copytree(source, crate, dirs_exist_ok=True)
        for debian in crate.glob(".cargo*.json"):  # Debian's and cargo's metadata: not part of the crate's code
            debian.unlink()
    env = {"CARGO_TARGET_DIR": str(folder / "target"), "CARGO_NET_OFFLINE": "true"}
    cargo = shutil.which("cargo") or "cargo"
    return Project("strsim@0.10.0 (crate)", "rust", crate, "src/lib.rs", [cargo, "test", "--offline", "-q"], env)


class Judge:
    """The project's own tests on a copy of it, per module text (cached)."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.copy = Path(tempfile.mkdtemp(prefix="cc-langs-judge-"))
        shutil.copytree(project.root, self.copy, dirs_exist_ok=True, symlinks=True)
        self._seen: dict[str, bool] = {}

    def passes(self, module_text: str) -> bool:
        if module_text in self._seen:
            return self._seen[module_text]
        path = self.copy / self.project.file
        shipped = path.read_text(encoding="utf-8")
        path.write_text(module_text, encoding="utf-8")
        try:
            done = subprocess.run(
                self.project.test_cmd,
                cwd=self.copy,
                env={**os.environ, **self.project.env},
                capture_output=True,
                timeout=300,
                check=False,
            )
            ok = done.returncode == 0
        except subprocess.TimeoutExpired:
            ok = False
        finally:
            path.write_text(shipped, encoding="utf-8")
        self._seen[module_text] = ok
        return ok

    def close(self) -> None:
        shutil.rmtree(self.copy, ignore_errors=True)


def _mutants(text: str, rng: random.Random) -> list[str]:
    lines = text.splitlines(keepends=True)
    head, body = lines[0], "".join(lines[1:])  # the signature stays: a mutant must still be the same function
    found: list[str] = []
    for pattern, new in _SWAPS:
        for match in re.finditer(pattern, body):
            mutated = body[: match.start()] + new + body[match.end() :]
            found.append(head + mutated)
    unique = sorted(set(found) - {text})  # one token swapped two ways can give the same text
    rng.shuffle(unique)
    return unique


def _mirror(text: str) -> str | None:
    lines = text.splitlines(keepends=True)
    body = "".join(lines[1:])
    for match in _COMPARE.finditer(body):
        left, op, right = match.groups()
        mirrored = f"{right} {_MIRROR[op]} {left}"
        return lines[0] + body[: match.start()] + mirrored + body[match.end() :]
    return None


def select_targets(project: Project, judge: Judge, count: int, rng: random.Random) -> list[Target]:
    source = (project.root / project.file).read_text(encoding="utf-8")
    language = language_for(project.language)
    tests_text = "\n".join(
        text
        for p in project.root.rglob("*")
        if p.is_file()
        and "node_modules" not in p.parts
        and "target" not in p.relative_to(project.root).parts
        and (p.name.endswith("_test.go") or re.search(r"\.test\.[cm]?[jt]s$", p.name) or p.suffix == ".rs")
        for text in [p.read_text(encoding="utf-8", errors="replace")]
        # Rust keeps unit tests next to the code (#[cfg(test)] modules): only what follows the first #[test] counts.
        if p.suffix != ".rs" or "#[test]" in text
        for text in [text if p.suffix != ".rs" else text[text.index("#[test]") :]]
    )
    every = language.functions(source)
    top = [f for f in every if not any(o.start_line < f.start_line < o.end_line for o in every)]
    functions = [f for f in top if re.search(rf"\b{re.escape(f.name)}\b", tests_text)]
    rng.shuffle(functions)
    targets: list[Target] = []
    for function in functions:
        if len(targets) >= count:
            break
        lines = source.splitlines(keepends=True)
        text = "".join(lines[function.start_line : function.end_line])
        right = _mirror(text)
        if right is None or not judge.passes(replace_span(source, function.start_line, function.end_line, right)):
            continue
        killed: list[str] = []
        for mutant in _mutants(text, rng)[:MUTANTS_TRIED]:
            if not judge.passes(replace_span(source, function.start_line, function.end_line, mutant)):
                killed.append(mutant)
            if len(killed) == 3:
                break
        if len(killed) < 3:
            continue
        targets.append(Target(function.name, function.start_line, function.end_line, text, killed, right))
        _log(f"{project.name}: {function.name} (3 killed mutants, a mirrored rewrite)")
    return targets


def _plan(target: Target, cell: str) -> tuple[str, str, list[str]]:
    w = target.wrong
    if cell == "improve-wrong":
        return "improve", target.text, [w[0], w[1], w[2]]
    if cell == "improve-mixed":
        return "improve", target.text, [w[0], w[1], target.right]
    return "fix", w[0], [target.text, w[1], w[2]]


def measure(project: Project, judge: Judge, asker: Asker, target: Target, rng: random.Random) -> list[Record]:
    source = (project.root / project.file).read_text(encoding="utf-8")
    records = []
    for cell in CELLS:
        task, user, answers = _plan(target, cell)
        user_module = replace_span(source, target.start, target.end, user)
        span = (target.start, target.start + len(user.splitlines()))
        record = Record(project.name, target.name, cell, answers=[user, *answers])
        result, wall, error = asker.ask(
            project,  # type: ignore[arg-type]  # duck-typed: Asker reads .project only
            project.file,
            span,
            task=task,
            user_module=user_module,
            answers=answers,
            rng=rng,
        )
        record.wall_s = round(wall, 2)
        if result is None:
            record.error = error
            records.append(record)
            continue
        consensus = result.get("consensus") or {}
        record.ran = code_ran(result)
        record.offered = offers_edit(result)
        record.not_checked = not_checked(result)
        record.method = str(consensus.get("method", ""))
        record.no_edit = consensus.get("no_edit")
        record.rejected = [str(c.get("rejected")) for c in consensus.get("clusters", []) if c.get("rejected")]
        record.notes = [str(n) for n in consensus.get("notes", [])]
        if record.offered:
            record.confidence = consensus.get("confidence")
            record.pick = str(consensus["pick"])
            edited = replace_span(user_module, span[0], span[1], str(consensus["pick"]))
            record.right = judge.passes(edited)
        records.append(record)
        _log(f"  {cell}: ran={record.ran} offered={record.offered} right={record.right} ({wall:.0f} s)")
    return records


def summarize(records: Sequence[Record]) -> list[dict[str, Any]]:
    rows = []
    for name in sorted({r.project for r in records}):
        mine = [r for r in records if r.project == name]
        improve = [r for r in mine if r.cell.startswith("improve")]
        mixed = [r for r in mine if r.cell == "improve-mixed"]
        fix = [r for r in mine if r.cell == "fix"]
        rows.append(
            {
                "project": name,
                "requests": len(mine),
                "ran": f"{sum(r.ran for r in mine)}/{len(mine)}",
                "improve broken offered": f"{sum(r.offered and r.right is False for r in improve)}/{len(improve)}",
                "improve right offered (mixed)": f"{sum(r.right is True for r in mixed)}/{len(mixed)}",
                "fix right": f"{sum(r.right is True for r in fix)}/{len(fix)}",
                "fix wrong offered": f"{sum(r.right is False for r in fix)}/{len(fix)}",
                "offered not checked": sum(r.not_checked for r in mine),
                "errors": sum(r.error is not None for r in mine),
                "median wall s": sorted(r.wall_s for r in mine)[len(mine) // 2] if mine else None,
            }
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--functions", type=int, default=4, help="functions per project")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=("javascript", "jest", "go", "rust"), help="one project only")
    parser.add_argument("--json", type=Path, help="write the records and the summary here")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    cache = _cache()
    projects = []
    if args.only in (None, "javascript"):
        projects.append(prepare_npm(cache))
    if args.only in (None, "jest"):
        projects.append(prepare_jest(cache))
    if args.only in (None, "go"):
        projects.append(prepare_go(cache))
    if args.only in (None, "rust"):
        projects.append(prepare_rust(cache))
    home = Path(tempfile.mkdtemp(prefix="cc-langs-home-"))
    asker = Asker(home)
    records: list[Record] = []
    started = time.perf_counter()
    try:
        for project in projects:
            judge = Judge(project)
            try:
                if not judge.passes((project.root / project.file).read_text(encoding="utf-8")):
                    _log(f"{project.name}: its own tests fail as shipped here: skipped")
                    continue
                for target in select_targets(project, judge, args.functions, rng):
                    records.extend(measure(project, judge, asker, target, rng))
            finally:
                judge.close()
    finally:
        asker.close()
        shutil.rmtree(home, ignore_errors=True)
    rows = summarize(records)
    print(f"realcode_langs: {len(records)} requests in {time.perf_counter() - started:.0f} s (seed {args.seed})")
    for row in rows:
        print(json.dumps(row))
    if args.json is not None:
        args.json.write_text(json.dumps({"summary": rows, "records": [asdict(r) for r in records]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
