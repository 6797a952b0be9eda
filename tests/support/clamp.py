"""The sample project of the fix-loop tests (the engine's, the CLI's and the language server's): a ``clamp`` with
a bug, the right fix and a wrong one, as code and as a model answers them, and the package they are tested in."""

from __future__ import annotations

from pathlib import Path

BUGGY = "def clamp(x, lo, hi):\n    if x < lo:\n        return hi\n    return x\n"
RIGHT = "def clamp(x, lo, hi):\n    return max(lo, min(x, hi))\n"
WRONG = "def clamp(x, lo, hi):\n    return x\n"


# The language server's variant: the module and its tests side by side in one folder, and a function no test
# mentions.
MODULE = BUGGY + "\n\ndef other():\n    return 1\n"
MODULE_TESTS = (
    "from util import clamp\n\n\ndef test_low():\n    assert clamp(-5, 0, 10) == 0\n\n\n"
    "def test_high():\n    assert clamp(50, 0, 10) == 10\n\n\ndef test_unrelated():\n    assert True\n"
)


def answer(code: str) -> str:
    """``code`` as a model's answer: one fenced block (what the fault server's fixed-answer models send)."""
    return f"```python\n{code}```"


def write_package(root: Path, util: str, tests: str) -> Path:
    """Under ``root``: package ``pkg`` whose ``util.py`` holds ``util``, and ``tests/test_util.py`` holding
    ``tests``; ``root``."""
    (root / "pkg").mkdir()
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "util.py").write_text(util)
    (root / "tests").mkdir()
    (root / "tests" / "test_util.py").write_text(tests)
    return root


def write_module(folder: Path) -> Path:
    """``folder`` (made) with ``util.py`` holding :data:`MODULE` and ``test_util.py`` holding :data:`MODULE_TESTS`
    (pytest puts the test's folder on sys.path, so ``from util import clamp`` works there); ``folder``."""
    folder.mkdir(parents=True)
    (folder / "util.py").write_text(MODULE)
    (folder / "test_util.py").write_text(MODULE_TESTS)
    return folder
