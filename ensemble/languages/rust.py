"""Rust: syntax, extraction, functions, comment examples and normalisation with tree-sitter.

Executed only inside its crate (``runs_in_project``): ``cargo test --offline`` runs the crate's own tests that
call the function and the examples of its doc comment (doc tests) on the user's code and on each candidate
(:mod:`codeconductor.ensemble.verify.rust_project`). A Rust function on its own is not run (``can_execute`` is False: the
consensus caps its confidence, labelled "not executed")."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._base import RunsInProject
from ._treesitter import TreeSitterLanguage

__all__ = ["Rust", "RustToolchain", "cargo_toml", "rust_toolchain"]


@dataclass(frozen=True)
class RustToolchain:
    """The toolchain's real paths: ``cargo``, ``rustc`` and ``rustdoc`` are called directly (not through
    rustup's proxies, which need the user's rustup home), and ``sysroot`` (its standard library) is shown
    read-only in the sandbox."""

    cargo: str
    rustc: str
    rustdoc: str
    sysroot: str


def cargo_toml(path: Path) -> dict[str, Any]:
    """A cargo file (``Cargo.toml``, ``.cargo/config.toml``) read as TOML; empty when it cannot be read."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


@functools.cache
def rust_toolchain() -> RustToolchain | None:
    """The Rust toolchain ``rustc`` on PATH belongs to (rustup's or the system's); None without cargo and rustc."""
    rustc = shutil.which("rustc")
    if rustc is None or shutil.which("cargo") is None:
        return None
    try:
        done = subprocess.run([rustc, "--print", "sysroot"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    sysroot = os.path.realpath(done.stdout.strip()) if done.returncode == 0 else ""
    tools = [os.path.join(sysroot, "bin", name) for name in ("cargo", "rustc", "rustdoc")]
    if not sysroot or not all(os.path.isfile(t) and os.access(t, os.X_OK) for t in tools):
        return None
    cargo, rustc_, rustdoc = (os.path.realpath(t) for t in tools)
    return RustToolchain(cargo, rustc_, rustdoc, sysroot)


class Rust(RunsInProject, TreeSitterLanguage):
    name = "rust"
    ids = ("rust", "rs")
    extensions = (".rs",)
    grammar = "rust"
    function_types = frozenset({"function_item"})
    comment_types = frozenset({"line_comment", "block_comment", "doc_comment"})
    identifier_types = frozenset({"identifier"})
    globals = frozenset({"Some", "None", "Ok", "Err", "Vec", "String", "Box", "Option", "Result", "self", "Self"})
    code_markers = frozenset(
        {"use_declaration", "struct_item", "enum_item", "impl_item", "trait_item", "let_declaration",
         "call_expression", "macro_invocation", "assignment_expression", "return_expression", "mod_item", "block"}
    )  # fmt: skip

    def is_expression(self, text: str) -> bool:
        return bool(text.strip()) and self.parses(f"const _X: () = {{ let _ = {text}; }};\n")

    no_toolchain_note = "rust: not executed (no cargo and rustc here: install Rust to have answers run with cargo test)"
    in_project_note = "rust: not executed (Rust runs only inside its crate, with cargo test on the crate's own tests)"

    def has_toolchain(self) -> bool:
        return rust_toolchain() is not None
