"""Run Rust code where it lives: ``cargo test --offline`` in the crate of the selection, with the crate's own tests
that call the function (``#[test]`` functions in ``src/`` and ``tests/``) and the examples of its doc comment
(doc tests) as the oracle.

Every job is a fresh sandbox (bubblewrap only: cargo starts rustc, the linker and the tests) that sees the crate
(its workspace root, when it is a member) and the toolchain's sysroot read-only at their own paths; nothing of
the user's is written. Inside, :mod:`codeconductor.ensemble.verify._harness` mirrors the crate into the scratch (folders made,
files linked to the read-only originals, ``target/`` left out, ``Cargo.lock`` copied) with the text under test
(the user's buffer, or a candidate put in place of the target) as the file's one real copy; ``CARGO_HOME`` and
``CARGO_TARGET_DIR`` are in the scratch, so every job compiles from nothing (a shared target directory would be
written by one candidate and read by the next: see docs/reliability.md). Offline: crates with no dependencies
from a registry, or with vendored ones (``.cargo/config.toml`` source replacement with a ``directory``); a crate
that needs crates.io says so and runs nothing. Compile time: ``bench`` figures in docs/benchmarks.md.

Verdicts. libtest's own output is printed by the process the candidate runs in, so it is never taken on its
word. The harness builds the test binaries once (``cargo test --no-run --message-format=json``: cargo's messages,
which carry compiler text only as escaped JSON strings), then runs each selected test in its own process
(``--exact NAME --test-threads=1``; a doc test with ``cargo test --doc -- --exact NAME``, its name taken from
``--list``, which compiles and runs nothing of the crate's); a test passes only when that process exits 0 AND
libtest's ``test NAME ... ok`` line for it appears exactly once (``--exact`` with a name that matched nothing
exits 0 too). A forged line next to the real one makes two (an error); ending the process early with status 0
after a forged line takes ``std::process::exit``, ``exec``, ``unsafe`` code or code run before ``main``
(``link_section``): a candidate naming any of those more often than the user's file is refused unrun
(:data:`BYPASS`). The harness reports each verdict on a line signed with a per-job key the code under test
never sees (:mod:`codeconductor.ensemble.verify._project_base`).

Doc tests are keyed by the text of the example, not its line: a candidate that rewrites the user's examples in
the selection loses them (never run, an error), so it cannot pass by changing the oracle.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..consensus.behaviour import Behaviour, ProjectProbe
from ..languages import Function, language_for
from ..languages._treesitter import TreeSitterLanguage
from ..languages.rust import RustToolchain, cargo_toml, rust_toolchain
from ._project_base import (
    CompiledProjectRunner,
    bounded_files,
    callers_of,
)

__all__ = ["BYPASS", "RustProjectRunner", "RustTest", "cargo_problem", "doc_examples", "rust_tests_of"]

# Ways to end a test's process with status 0 after a forged result line, or to run code before the test runner.
BYPASS = re.compile(
    r"\b(_?exit\w*|exec\w*|Command\w*|unsafe|extern|asm|global_asm|naked_asm|link_section|no_mangle|export_name|"
    r"link_name|libc|syscall)\b"
)
_SKIP = ("target", ".git", "node_modules")
_DOC_LANGS = frozenset(
    {"", "rust", "should_panic", "no_run", "compile_fail", "ignore", "test_harness", "edition2015", "edition2018",
     "edition2021", "edition2024"}
)  # fmt: skip
_WORK = "/tmp/w"  # the crate's mirror in the scratch


@dataclass(frozen=True)
class RustTest:
    """One ``#[test]`` function: the file it is in (relative to the package), the binary that holds it (``lib``,
    ``bin:NAME`` or ``test:NAME``) and its libtest name (module path and function)."""

    file: str
    target: str
    name: str

    @property
    def id(self) -> str:
        return f"{self.file}::{self.name}"


def _module_path(relative: str) -> tuple[str, str] | None:
    """The binary and module path of a source file of the package (``src/a/b.rs`` -> ``("lib", "a::b")``);
    None for files no test target holds."""
    parts = relative.split("/")
    if parts[0] == "tests":
        if len(parts) == 2:
            return f"test:{parts[1].removesuffix('.rs')}", ""
        if len(parts) == 3 and parts[2] == "main.rs":
            return f"test:{parts[1]}", ""
        return None
    if parts[0] != "src" or (len(parts) > 2 and parts[1] in ("bin", "examples")):
        return None
    inner = [p.removesuffix(".rs") for p in parts[1:]]
    if inner[-1] == "mod" or (len(inner) == 1 and inner[0] in ("lib", "main")):
        inner = inner[:-1]
    return "lib", "::".join(inner)


def _text(node: Any) -> str:
    return bytes(node.text or b"").decode("utf-8", "replace")


def _is_test(node: Any) -> bool:
    """Whether the attributes just above a ``function_item`` node include ``#[test]``."""
    sibling = node.prev_named_sibling
    while sibling is not None and sibling.type in ("attribute_item", "line_comment", "block_comment"):
        if sibling.type == "attribute_item" and _text(sibling).replace(" ", "") == "#[test]":
            return True
        sibling = sibling.prev_named_sibling
    return False


def rust_tests_of(package: Path, target: str, *, has_lib: bool, package_name: str) -> tuple[list[RustTest], int]:
    """The package's ``#[test]`` functions that name ``target`` or a function of the package that calls it
    (directly or through others: a test of ``jaro`` tests the ``generic_jaro`` it calls), those naming the
    target first; and how many tests there are in all. Files in ``src/`` belong to the library (to the binary
    when there is no ``lib.rs``)."""
    language = language_for("rust")
    assert isinstance(language, TreeSitterLanguage)
    parsed: list[tuple[str, str, str, Any]] = []  # relative path, binary, module path, tree root
    bodies: dict[str, list[str]] = {}
    tests: list[tuple[RustTest, str]] = []
    files = [*bounded_files(package / "src", ".rs", skip=_SKIP), *bounded_files(package / "tests", ".rs", skip=_SKIP)]
    for path in files:
        relative = path.relative_to(package).as_posix()
        where = _module_path(relative)
        if where is None:
            continue
        binary, module = where
        if binary == "lib" and not has_lib:
            binary = f"bin:{package_name}"
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        parsed.append((relative, binary, module, language.tree(text).root_node))
    for relative, binary, module, root in parsed:
        stack = [root]
        while stack:
            node = stack.pop()
            stack.extend(reversed(node.named_children))
            if node.type != "function_item":
                continue
            body = node.child_by_field_name("body")
            name_node = node.child_by_field_name("name")
            if body is None or name_node is None:
                continue
            if not _is_test(node):
                bodies.setdefault(_text(name_node), []).append(_text(body))
                continue
            mods: list[str] = []
            parent = node.parent
            while parent is not None:
                mod_name = parent.child_by_field_name("name") if parent.type == "mod_item" else None
                if mod_name is not None:
                    mods.insert(0, _text(mod_name))
                parent = parent.parent
            name = "::".join([p for p in (module, *mods) if p] + [_text(name_node)])
            tests.append((RustTest(relative, binary, name), _text(body)))
    names = callers_of(bodies, target.rsplit(".", 1)[-1])
    found: list[tuple[int, RustTest]] = []
    for test, body in tests:
        rank = next((i for i, n in enumerate(names) if re.search(rf"\b{re.escape(n)}\b", body)), None)
        if rank is not None:
            found.append((rank, test))
    found.sort(key=lambda pair: pair[0])  # stable: the target's own tests first, in file order
    return [test for _, test in found], len(tests)


def doc_examples(text: str, function_start: int) -> dict[int, str]:
    """The doc tests of the function starting at line ``function_start`` (0-based) of ``text``: the 1-based line
    of each example's opening fence (the line rustdoc names it by) -> a key made of the example's own text."""
    lines = text.splitlines()
    top = function_start
    while top > 0 and (lines[top - 1].strip().startswith(("///", "#[", "#!["))):
        top -= 1
    found: dict[int, str] = {}
    fence: tuple[int, str] | None = None
    body: list[str] = []
    for number in range(top, function_start):
        stripped = lines[number].strip()
        if not stripped.startswith("///"):
            continue
        content = stripped[3:].removeprefix(" ")
        if content.startswith(("```", "~~~")):
            if fence is None:
                info = content.strip("`~ ").lower()
                if all(tag.strip() in _DOC_LANGS for tag in info.split(",")):
                    fence = (number + 1, content[:3])
                    body = []
                else:
                    fence = (-1, content[:3])
            elif content.startswith(fence[1]):
                if fence[0] > 0:
                    digest = hashlib.sha256("\n".join(body).encode("utf-8")).hexdigest()[:12]
                    key = f"doc example {digest}"
                    found[fence[0]] = key if key not in found.values() else f"{key} ({fence[0]})"
                fence = None
        elif fence is not None:
            body.append(content)
    return found


def _dependencies(manifest: dict[str, Any]) -> list[tuple[str, Any]]:
    tables = [manifest.get(k) for k in ("dependencies", "dev-dependencies", "build-dependencies")]
    for target in (manifest.get("target") or {}).values():
        if isinstance(target, dict):
            tables += [target.get(k) for k in ("dependencies", "dev-dependencies", "build-dependencies")]
    return [(name, spec) for table in tables if isinstance(table, dict) for name, spec in table.items()]


def _vendored(root: Path, package: Path) -> bool:
    """Whether a cargo config between the package and the root replaces crates.io with a directory source."""
    for folder in [package, *package.parents]:
        for name in ("config.toml", "config"):
            config = cargo_toml(folder / ".cargo" / name)
            sources = config.get("source") or {}
            replaced = (sources.get("crates-io") or {}).get("replace-with")
            if (
                isinstance(replaced, str)
                and isinstance(sources.get(replaced), dict)
                and "directory" in sources[replaced]
            ):
                return True
        if folder == root:
            break
    return False


def cargo_problem(root: Path, package: Path) -> str | None:
    """Why the crate cannot be built offline here, in words that say what to do; None when it can."""
    manifest = cargo_toml(package / "Cargo.toml")
    if not manifest:
        return "its Cargo.toml cannot be read"
    registry = []
    for name, spec in _dependencies(manifest):
        path = spec.get("path") if isinstance(spec, dict) else None
        if isinstance(path, str):
            if not (package / path).resolve().is_relative_to(root):
                return f"it depends on {name} at {path}, outside the crate's folder: not run"
        elif not (isinstance(spec, dict) and spec.get("workspace") is True and _vendored(root, package)):
            registry.append(name)
    if registry and not _vendored(root, package):
        shown = ", ".join(sorted(registry)[:3]) + (" ..." if len(registry) > 3 else "")
        return (
            f"it depends on crates from a registry ({shown}) that it does not vendor, and cargo runs offline here "
            "(run `cargo vendor` and add the source replacement it prints to .cargo/config.toml)"
        )
    return None


def _package_name(package: Path) -> str:
    name = (cargo_toml(package / "Cargo.toml").get("package") or {}).get("name")
    return name if isinstance(name, str) else package.name


class RustProjectRunner(CompiledProjectRunner):
    """Runs the user's Rust code and candidates with ``cargo test`` inside the user's crate; ``workers`` jobs at
    a time."""

    language = "rust"
    language_shown = "Rust"
    no_toolchain = "there is no Rust toolchain here (install cargo and rustc)"
    comments = ("//", "/*", "*", "#[")
    _bypass = BYPASS
    build_timeout_s = 180.0
    memory_mb = 4096  # address space: rustc and LLVM reserve far more than they touch

    async def _select_tests(
        self, plain: ProjectProbe, found: Function
    ) -> tuple[tuple[str, ...], str | None, tuple[str, ...]]:
        """The crate's tests and the selected function's doc tests."""
        package = Path(plain.import_root)
        problem = await asyncio.to_thread(cargo_problem, Path(plain.root), package)
        if problem is not None:
            return (), problem, ()
        relative = Path(plain.path).relative_to(package).as_posix()
        has_lib = (package / "src" / "lib.rs").is_file()
        tests, total = await asyncio.to_thread(
            rust_tests_of, package, found.name, has_lib=has_lib, package_name=plain.module
        )
        docs = doc_examples(plain.module_text, found.start_line) if has_lib else {}
        named = (*(t.id for t in tests), *(f"{relative}::{found.name} {key}" for key in docs.values()))
        named = named[: self.max_tests]
        if not named:
            problem = (
                f"no test in crate {plain.module} calls {found.name} ({total} tests there): add a #[test] "
                "function that calls it, or an example in its doc comment"
            )
            return (), problem, ()
        how = f"rust: executed with cargo test in crate {plain.module} ({len(named)} tests of {found.name})"
        return named, None, (how,)

    async def _run(self, project: ProjectProbe, source: str) -> tuple[Behaviour, bool]:
        toolchain = rust_toolchain()
        assert toolchain is not None
        job = await asyncio.to_thread(self._job, project, source, toolchain)
        timeout = self.build_timeout_s * (2 if job["doc_lines"] else 1) + self.per_test_timeout_s * len(project.tests)
        mirrored = f"{_WORK}/{Path(project.path).relative_to(project.root).as_posix()}"
        return await self._run_job(
            project,
            job,
            ro_paths=[project.root, toolchain.sysroot],
            timeout_s=timeout,
            shown_path=(mirrored, os.path.basename(project.path)),
        )

    def _job(self, project: ProjectProbe, source: str, toolchain: RustToolchain) -> dict[str, Any]:
        package = Path(project.import_root)
        has_lib = (package / "src" / "lib.rs").is_file()
        relative = Path(project.path).relative_to(package).as_posix()
        tests: list[dict[str, Any]] = []
        for test_id in project.tests:
            file, _, name = test_id.partition("::")
            if file == relative and name.startswith(f"{project.target} doc example"):
                continue
            where = _module_path(file)
            binary = where[0] if where is not None else "lib"
            if binary == "lib" and not has_lib:
                binary = f"bin:{project.module}"
            escaped = re.escape(name)
            patterns = {v: rf"^test {escaped}(?: - should panic)? \.\.\. {v}$" for v in ("ok", "FAILED", "ignored")}
            tests.append({"id": test_id, "target": binary, "name": name, "patterns": patterns})
        doc_lines: dict[str, str] = {}
        found = language_for("rust").find_function(source, project.target)
        if found is not None and has_lib:
            for line, key in doc_examples(source, found.start_line).items():
                test_id = f"{relative}::{project.target} {key}"
                if test_id in project.tests:
                    doc_lines[str(line)] = test_id
        scratch = self.sandbox.scratch_dir or "/tmp"
        env = {
            "PATH": f"{os.path.dirname(toolchain.cargo)}:/usr/bin:/bin",
            "HOME": scratch,
            "TMPDIR": scratch,
            "CARGO_HOME": f"{scratch}/.cargo-home",
            "CARGO_TARGET_DIR": f"{scratch}/target",
            "CARGO_NET_OFFLINE": "true",
            "CARGO_INCREMENTAL": "0",
            "CARGO_TERM_COLOR": "never",
            "CARGO_PROFILE_DEV_DEBUG": "0",
            "CARGO_PROFILE_TEST_DEBUG": "0",
            "RUSTC": toolchain.rustc,
            "RUSTDOC": toolchain.rustdoc,
            # Debug info of the standard library makes every test binary (doc tests too) tens of megabytes. A
            # profile setting, not RUSTFLAGS, which would replace the crate's own build.rustflags.
            "CARGO_PROFILE_DEV_STRIP": "debuginfo",
            "CARGO_PROFILE_TEST_STRIP": "debuginfo",
            "RUSTDOCFLAGS": "-C strip=debuginfo",
            "RUST_BACKTRACE": "0",
            "LANG": "C.UTF-8",
        }
        return {
            "kind": "rust",
            "root": project.root,
            "path": project.path,
            "package": os.path.relpath(project.import_root, project.root),
            "source": source,
            "work": _WORK,
            "cargo": toolchain.cargo,
            "env": env,
            "tests": tests,
            "doc_lines": doc_lines,
            "doc_file": os.path.relpath(project.path, project.root),
            "build_timeout": self.build_timeout_s,
            "per_test": self.per_test_timeout_s,
        }
