"""When a sandbox test may skip: only where bubblewrap is genuinely not installed and this is not CI.

Where ``scripts/setup.sh`` installed bubblewrap (``bwrap`` is on PATH; CI runs setup) or ``CI`` is set, a test that
needs the sandbox and cannot have it FAILS with the reason - a suite run from an odd place (a clone under /tmp, a
private home) must not pass by skipping every sandbox test. ``tests/conftest.py`` applies the same rule to any test
that meets :class:`~codeconductor.ensemble.errors.SandboxUnavailable`.
"""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest

from codeconductor.ensemble.verify import _bwrap


def sandbox_must_run() -> bool:
    """Whether a sandbox that cannot run is a failure here (bubblewrap installed, or CI)."""
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return ci or shutil.which("bwrap") is not None


def require_sandbox() -> None:
    """Return when the real sandbox runs here; else fail (bubblewrap installed, or CI) or skip, with the reason."""
    support = _bwrap.support()
    if support.usable:
        return
    if sandbox_must_run():
        pytest.fail(f"the sandbox cannot run although bubblewrap is installed (or CI is set): {support.reason}")
    pytest.skip(f"no sandbox here (bubblewrap not installed, not CI): {support.reason}")


def wasm_sandbox_must_run() -> bool:
    """Whether a WebAssembly sandbox that cannot run is a failure here: its packages are installed (setup installs
    them, CI runs setup) or CI is set."""
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return ci or importlib.util.find_spec("wasmtime") is not None


def require_wasm_sandbox() -> None:
    """Return once the WebAssembly sandbox is ready (compiling it here when setup did not); else fail where it must
    run, or skip, with the reason."""
    from codeconductor.ensemble.verify import _wasm

    state = _wasm.prepare(timeout_s=900)
    if state.usable:
        return
    if wasm_sandbox_must_run():
        pytest.fail(f"the WebAssembly sandbox cannot run although wasmtime is installed (or CI is set): {state.reason}")
    pytest.skip(f"no WebAssembly sandbox here (wasmtime not installed, not CI): {state.reason}")
