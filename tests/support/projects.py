"""Real Python projects for tests of running the user's code where it lives (``codeconductor.ensemble.verify.project``).

:func:`make_shop` writes a package with relative imports, module globals, a class, a module its ``__init__``
re-exports, pytest and unittest tests (one calling through an alias of the package), plus a tiny local
dependency (``tinymoney``) that is ``pip install --no-index``-ed into the project's own virtual environment made
with ``python -m venv``: nothing is faked. The environment reaches pytest through a ``.pth`` line naming this
interpreter's site-packages (the project's tests need pytest; installing it offline is not possible here).
``with_dependency=False`` leaves the dependency out: the interpreter lacks it.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

__all__ = ["PRICING", "STATS", "make_shop", "make_venv"]

UTIL = """\
RATE = 2


def scale(x):
    return x * RATE
"""

PRICING = """\
import tinymoney

from .util import scale

TAX = 0.25


def total(items):
    s = 0
    for price, qty in items:
        s += scale(price) * qty
    return tinymoney.round2(s * (1 + TAX))


def normalise(names):
    out = []
    for name in names:
        name = name.strip().lower()
        if name and name not in out:
            out.append(name)
    return out


def halve_all(values):
    for i in range(len(values)):
        values[i] = values[i] // 2


class Cart:
    def __init__(self, owner):
        self.owner = owner
        self.items = []

    def add(self, price, qty=1):
        if qty <= 0:
            raise ValueError("qty")
        self.items.append((price, qty))
        return len(self.items)

    def total(self):
        return total(self.items)

    def clear(self):
        self.items = []
"""

STATS = """\
def spread(values):
    if len(values) < 2:
        return 0
    return max(values) - min(values)


def double(x):
    return x * 2
"""

# unittest style, the package imported under an alias: what finds these tests is the class (a TestCase whatever
# its name) and ``sh.spread``; the package re-exports the function (``from .stats import *``).
STATS_TESTS = """\
from unittest import TestCase

import shop as sh


class SpreadTests(TestCase):
    def test_spread(self):
        self.assertEqual(sh.spread([3, 1, 4]), 3)

    def test_single(self):
        self.assertEqual(sh.spread([5]), 0)
"""

TESTS = """\
import pytest

from shop.pricing import Cart, halve_all, normalise, total


def test_total():
    assert total([(1, 2), (3, 1)]) == 12.5


def test_total_empty():
    assert total([]) == 0


def test_normalise():
    # Deliberately weak (it checks only how many names come back): the calls it makes still say what is right.
    assert len(normalise([" Ann", "bob", "ann ", ""])) == 2


def test_halve_all():
    values = [4, 5, 10]
    halve_all(values)
    assert values == [2, 2, 5]


def test_cart():
    cart = Cart("me")
    assert cart.add(2) == 1
    assert cart.add(3, qty=2) == 2
    assert cart.total() == 20.0
    with pytest.raises(ValueError):
        cart.add(1, qty=0)
"""

TINYMONEY_SETUP = """\
from setuptools import setup

setup(name="tinymoney", version="1.0", py_modules=["tinymoney"])
"""

TINYMONEY = """\
def round2(x):
    return round(x, 2)
"""


def make_venv(folder: Path, *, with_dependency: Path | None = None) -> Path:
    """A virtual environment at ``folder`` (this interpreter's version), with ``with_dependency`` (a source
    folder) installed from disk only; its python's path."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, capture_output=True)
    python = folder / "bin" / "python"
    site_dir = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # pytest for the project's tests, from this interpreter's environment.
    (site_dir / "_test_tools.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    if with_dependency is not None:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--no-index",
                "--no-build-isolation",
                "--no-deps",
                "--quiet",
                "--target",
                str(site_dir),
                str(with_dependency),
            ],
            check=True,
            capture_output=True,
        )
    return python


def make_shop(root: Path, *, with_dependency: bool = True) -> Path:
    """The ``shop`` project under ``root`` (made if missing); returns the module file ``shop/pricing.py``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text('[project]\nname = "shop"\nversion = "0"\n', encoding="utf-8")
    package = root / "shop"
    package.mkdir()
    (package / "__init__.py").write_text("from .stats import *\n", encoding="utf-8")
    (package / "stats.py").write_text(STATS, encoding="utf-8")
    (package / "util.py").write_text(UTIL, encoding="utf-8")
    (package / "pricing.py").write_text(PRICING, encoding="utf-8")
    (root / "tests").mkdir()
    (root / "tests" / "test_pricing.py").write_text(TESTS, encoding="utf-8")
    (root / "tests" / "test_stats.py").write_text(STATS_TESTS, encoding="utf-8")
    dep = root.parent / f"{root.name}-tinymoney"
    dep.mkdir()
    (dep / "setup.py").write_text(TINYMONEY_SETUP, encoding="utf-8")
    (dep / "tinymoney.py").write_text(textwrap.dedent(TINYMONEY), encoding="utf-8")
    make_venv(root / ".venv", with_dependency=dep if with_dependency else None)
    return package / "pricing.py"
