"""The driver :mod:`codeconductor.ensemble.verify.project` runs inside the sandbox, with the PROJECT's interpreter, to run the
user's code where it lives. Standard library only (pytest when tests are run), no CodeConductor imports: its
source is copied into the sandbox's scratch directory and run as a script, reading its job from
``__cc_project__.json`` beside it. Importing this module does nothing.

Modes:

* ``info``: the interpreter's ``sys.path``, prefixes and version;
* ``record``: import the module (its text from the job: the editor's buffer), wrap the target (a function,
  wherever a loaded module re-exports it too, or ``Class.method`` on its class) with a recorder, run the selected
  tests, and report the distinct argument tuples the target was called with as pickles (bounded in count and
  size) and the tests it was called from. The pickles are opaque to the parent: it hands them, unread, to the next
  sandbox job;
* ``observe``: import the module with the candidate in place of the target, evaluate the call expressions
  (docstring examples, generated inputs) in the module's namespace, replay the recorded calls, run the selected
  tests, and report canonical values (return value and the arguments after the call, so in-place changes count),
  exception type names and per-test outcomes. ``random`` is seeded the same before every call and before the
  tests, so the original and each candidate (separate processes) draw the same numbers.

The module is imported by its package name through a finder placed first on ``sys.meta_path`` that serves the
job's text under the original file name, so relative imports, module globals and ``__file__`` behave as in the
project, and the user's file is never read for it. Output: one line ``{"codeconductor_project": 1, ...}``, a tab
and the line's HMAC-SHA256 under a per-job key, on the process's original stdout (the user's code prints to
/dev/null). The key comes in the job's settings file, which the driver deletes before anything of the project
loads; the writer holds it in a closure. The job's stdout is a file in the sandbox's scratch that code running
here can append to: an unsigned line is not read, two signed lines are not trusted, and the driver's exit
status must be 0 (:mod:`codeconductor.ensemble.verify.project`). Code that runs in this process can still find
the key in memory or patch what the driver reports (the tests run where the candidate is imported): see
docs/reliability.md, 6b.

Audit. An audit hook (installed before the module is imported) records, without refusing anything (bubblewrap
contains it; the project runs as it does at home), which of the events the job names in ``watch`` happened
(connections, process starts, signals) and whether anything opened a file for writing outside the scratch
directory (``write``). The report's ``audit`` lists them; the parent names a candidate hostile only for what its
run adds to the original's (:mod:`codeconductor.ensemble.verify.project`), so the user's own tests are never
blamed on a candidate.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import importlib.abc
import importlib.util
import itertools
import json
import math
import os
import pickle
import re
import signal
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType, ModuleType

CONFIG_NAME = "__cc_project__.json"
MARKER = "codeconductor_project"
VALUE_LIMIT = 2000
ITEMS_LIMIT = 500  # items read from an iterator a call returns
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


class CallTimeout(BaseException):
    """BaseException, so the user's or a candidate's ``except Exception`` cannot swallow it."""


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise CallTimeout()


class CopyLoader(importlib.abc.SourceLoader):
    """Serves the job's text for the module's own file; every other file is read from the disk."""

    def __init__(self, source: str, filename: str) -> None:
        self.source, self.filename = source, filename

    def get_filename(self, fullname: str) -> str:
        return self.filename

    def get_data(self, path: str) -> bytes:
        if path == self.filename:
            return self.source.encode("utf-8")
        with open(path, "rb") as handle:
            return handle.read()


class CopyFinder(importlib.abc.MetaPathFinder):
    """Finds exactly one module name, the module under test, and gives it the job's text."""

    def __init__(self, name: str, source: str, filename: str) -> None:
        self.name, self.loader, self.filename = name, CopyLoader(source, filename), filename

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        is_package = os.path.basename(self.filename) == "__init__.py"
        search = [os.path.dirname(self.filename)] if is_package else None
        return importlib.util.spec_from_file_location(
            fullname, self.filename, loader=self.loader, submodule_search_locations=search
        )


def canonical(value: Any, depth: int = 0) -> Any:
    """A comparable, address-free form of ``value``: containers recursively, floats to 9 digits, iterators by what
    they yield, plain objects by their type and attributes (their default repr holds a memory address)."""
    if depth > 12:
        return "<deep>"
    kind = type(value)
    if value is None or kind in (bool, int, str, bytes):
        return value
    if kind is float:
        return value if math.isnan(value) or math.isinf(value) else float(format(value, ".9g"))
    if isinstance(value, (list, tuple)):
        items = [canonical(v, depth + 1) for v in list(value)[:500]]
        return items if isinstance(value, list) else ("<" + kind.__name__ + ">", items)
    if isinstance(value, (set, frozenset)):
        return ("<set>", sorted(repr(canonical(v, depth + 1)) for v in list(value)[:500]))
    if isinstance(value, dict):
        pairs = [(repr(canonical(k, depth + 1)), canonical(v, depth + 1)) for k, v in list(value.items())[:500]]
        return ("<" + kind.__name__ + ">", sorted(pairs, key=repr))
    if isinstance(value, Iterator):
        # A generator (map, zip, ...) says nothing by its repr: what it yields is the value, read up to a bound
        # (under the call's timer); an error while reading is part of it. The kind of iterator is not.
        yielded: list[Any] = []
        try:
            for item in itertools.islice(value, ITEMS_LIMIT):
                yielded.append(canonical(item, depth + 1))
        except Exception as exc:
            yielded.append("!" + error_name(exc))
        return ("<iterator>", yielded)
    if getattr(kind, "__repr__", None) is object.__repr__:
        state: Any = getattr(value, "__dict__", None)
        if state is None and hasattr(kind, "__slots__"):
            state = {s: getattr(value, s, None) for s in kind.__slots__ if isinstance(s, str)}
        return ("<" + kind.__qualname__ + ">", canonical(state, depth + 1) if state is not None else None)
    try:
        text = repr(value)
    except Exception:
        text = "?"
    return "<" + kind.__qualname__ + " " + _ADDRESS.sub("", text)[:300] + ">"


def value_text(value: Any) -> str:
    try:
        text = repr(canonical(value))
    except Exception as exc:  # a value whose parts cannot be read
        text = "<unreadable " + type(exc).__name__ + ">"
    if len(text) > VALUE_LIMIT:
        import hashlib

        text = text[:VALUE_LIMIT] + "...#" + hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]
    return text


def error_name(exc: BaseException) -> str:
    return "Timeout" if isinstance(exc, CallTimeout) else type(exc).__name__[:100]


def load_module(cfg: dict[str, Any]) -> ModuleType:
    for entry in reversed(cfg.get("sys_path", [])):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    sys.meta_path.insert(0, CopyFinder(cfg["module"], cfg["source"], cfg["filename"]))
    return importlib.import_module(cfg["module"])


def owner_of(module: ModuleType, target: str) -> tuple[Any, str]:
    owner: Any = module
    *outer, name = target.split(".")
    for part in outer:
        owner = getattr(owner, part)
    return owner, name


def callable_of(module: ModuleType, target: str) -> Callable[..., Any]:
    """What a recorded call is replayed on: the function as the class holds it (so ``self`` is an argument)."""
    owner, name = owner_of(module, target)
    raw = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
    func = raw.__func__ if isinstance(raw, (staticmethod, classmethod)) else raw
    if not callable(func):
        raise TypeError(f"{target} is not callable")
    return func


def current_test() -> str | None:
    """The test running now, as pytest names it in ``PYTEST_CURRENT_TEST`` (``path::Class::test (call)``), its
    parameters left out (they may hold any character; the test runs with all of them); None outside a test."""
    value = os.environ.get("PYTEST_CURRENT_TEST")
    if not value:
        return None
    node = value.rsplit(" (", 1)[0]
    return node.split("[", 1)[0] or None


def install_recorder(
    module: ModuleType,
    target: str,
    cfg: dict[str, Any],
    records: list[bytes],
    calls: list[int],
    *,
    callers: list[str] | None = None,
) -> None:
    owner, name = owner_of(module, target)
    raw = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
    wrapper_kind = type(raw) if isinstance(raw, (staticmethod, classmethod)) else None
    func = raw.__func__ if wrapper_kind is not None else raw
    seen: set[bytes] = set()
    limit, size = int(cfg.get("max_calls", 30)), int(cfg.get("max_pickle", 16384))
    busy = [False]

    def recorder(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if callers is not None and len(callers) < 500:
            test = current_test()
            if test is not None and test not in callers:
                callers.append(test)
        if len(records) < limit and not busy[0]:
            busy[0] = True  # the pickling itself may call user code: it is not recorded
            try:
                data = pickle.dumps((args, kwargs), protocol=4)
                if len(data) <= size and data not in seen:
                    seen.add(data)
                    records.append(data)
            except Exception:
                pass
            finally:
                busy[0] = False
        return func(*args, **kwargs)

    import functools

    functools.update_wrapper(recorder, func)
    replacement: Any = wrapper_kind(recorder) if wrapper_kind is not None else recorder
    setattr(owner, name, replacement)
    if not isinstance(owner, type):
        reexport(func, recorder)


def reexport(func: Any, replacement: Any) -> None:
    """Put ``replacement`` wherever a loaded module holds ``func`` itself: a package that re-exports it
    (``from .more import *`` in ``__init__``) hands the tests that object, not the module's attribute."""
    for loaded in list(sys.modules.values()):
        names = getattr(loaded, "__dict__", None)
        if not isinstance(names, dict):
            continue
        for key, value in list(names.items()):
            if value is func:
                try:
                    setattr(loaded, key, replacement)
                except Exception:
                    continue


def run_tests(cfg: dict[str, Any]) -> tuple[dict[str, str], list[str], str | None]:
    """Per-test outcomes, collection errors, and why no test ran (None when pytest ran)."""
    tests = cfg.get("tests") or []
    if not tests:
        return {}, [], None
    reseed()
    try:
        import pytest
    except ImportError:
        return {}, [], "pytest"
    sys.path.insert(0, os.getcwd())
    import __cc_pytest__  # type: ignore[import-not-found]  # the pytest driver's collector, copied beside this file

    try:
        pytest.hookimpl(wrapper=True)(__cc_pytest__.Collect.pytest_runtest_call)
    except TypeError:  # pytest before 8: the old-style wrapper runs the same generator
        pytest.hookimpl(hookwrapper=True)(__cc_pytest__.Collect.pytest_runtest_call)
    collect = __cc_pytest__.Collect(float(cfg.get("per_test_timeout_s", 5.0)), 300)
    root = cfg["root"]
    args = ["-q", "-p", "no:cacheprovider", "-o", "addopts=", "--tb=no", "--rootdir", root]
    for plugin in cfg.get("plugins", []):  # autoloading is off: the plugins the tests use, when installed
        try:
            importlib.import_module(str(plugin))
        except Exception:
            continue
        args += ["-p", str(plugin)]
    budget = Budget(float(cfg.get("tests_budget_s", 15.0)), pytest.skip)
    try:
        pytest.main(args + [os.path.join(root, t) for t in tests], plugins=[collect, budget])
    except BaseException as exc:
        collect.errors.append(f"pytest crashed: {type(exc).__name__}")
    outcomes = {n: collect.results[n][0] for n in collect.order}
    return outcomes, [e[:300] for e in collect.errors], None


class Budget:
    """Tests not started within the job's budget are skipped (a skip constrains no candidate): the job reports
    the tests that ran instead of running out of time with nothing to show."""

    def __init__(self, seconds: float, skip: Callable[[str], Any]) -> None:
        import time

        self.deadline, self.now, self.skip = time.monotonic() + seconds, time.monotonic, skip

    def pytest_runtest_setup(self, item: Any) -> None:
        if self.now() > self.deadline:
            self.skip("codeconductor: over the time budget for the project's tests")


def _import_failure(exc: BaseException) -> dict[str, Any]:
    found: dict[str, Any] = {"load_error": error_name(exc)}
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        found["missing"] = exc.name
    if isinstance(exc, SyntaxError):
        found["line"] = exc.lineno
        found["detail"] = (exc.msg or "")[:200]
    else:
        found["detail"] = str(exc)[:200]
    return found


def _ignore_putenv(key: object, value: object) -> None:
    pass


def _ignore_unsetenv(key: object) -> None:
    pass


def report_signer(key: bytes) -> Callable[[str], str]:
    """The one function that signs the report: the key bound here, before the project loads."""
    import hashlib
    import hmac

    def sign(text: str) -> str:
        return text + "\t" + hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()

    return sign


def watch(names: list[str], scratch: str, seen: set[str]) -> None:
    """Record the audit events in ``names`` that happen, and ``write`` for a file opened for writing (or removed,
    renamed...) outside ``scratch``; never refuse anything. At most a few distinct names: nothing grows."""
    watched, realpath, fsdecode = frozenset(names), os.path.realpath, os.fsdecode
    scratch = realpath(scratch)
    write_flags = os.O_WRONLY | (os.O_RDWR & ~os.O_RDONLY) | os.O_CREAT
    writes = frozenset({"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.truncate", "os.chmod", "os.chown"})

    def outside(path: Any) -> bool:
        if isinstance(path, int):
            return False
        try:
            real = realpath(fsdecode(path))
        except Exception:
            return True
        return not (real == scratch or real.startswith(scratch + os.sep) or real == os.devnull)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event in watched:
            seen.add(event)
        elif event == "open" and args and "write" not in seen:
            mode = str(args[1]) if len(args) > 1 and args[1] is not None else ""
            flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
            if (any(c in mode for c in "wax+") or flags & write_flags) and outside(args[0]):
                seen.add("write")
        elif event in writes and args and "write" not in seen and outside(args[0]):
            seen.add("write")

    sys.addaudithook(hook)


def main() -> None:
    out = os.dup(1)
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)  # what the user's code (or a candidate) prints never reaches the report
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    os.putenv = _ignore_putenv  # the sandbox's audit hook refuses it; pytest reads os.environ only
    os.unsetenv = _ignore_unsetenv
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    sys.dont_write_bytecode = True  # a module only a candidate imports must not look like a write of its own
    with open(CONFIG_NAME, encoding="utf-8") as handle:
        cfg: dict[str, Any] = json.load(handle)
    os.remove(CONFIG_NAME)  # the report key is in no file the code under test can read
    sign = report_signer(bytes.fromhex(str(cfg.pop("report_key", ""))))
    report: dict[str, Any] = {MARKER: 1}
    seen: set[str] = set()
    if cfg.get("watch"):
        watch([str(n) for n in cfg["watch"]], os.getcwd(), seen)
    try:
        report.update(_run(cfg))
    except BaseException as exc:  # the driver's own failure: reported, never a pass
        report["driver_error"] = error_name(exc)
    report["audit"] = sorted(seen)
    os.write(out, ("\n" + sign(json.dumps(report, separators=(",", ":"))) + "\n").encode())
    os._exit(0)  # no interpreter teardown: the user's atexit handlers and threads have nothing to add


def _run(cfg: dict[str, Any]) -> dict[str, Any]:
    mode = cfg["mode"]
    if mode == "info":
        return {
            "sys_path": [p for p in sys.path if p],
            "prefix": sys.prefix,
            "base_prefix": sys.base_prefix,
            "executable": sys.executable,
            "version": list(sys.version_info[:3]),
        }
    signal.signal(signal.SIGALRM, _on_alarm)
    try:
        module = load_module(cfg)
    except BaseException as exc:
        return _import_failure(exc)
    target = cfg["target"]
    if mode == "record":
        records: list[bytes] = []
        calls = [0]
        callers: list[str] = []
        try:
            install_recorder(module, target, cfg, records, calls, callers=callers)
        except BaseException as exc:
            return {"load_error": "target:" + error_name(exc)}
        outcomes, errors, missing = run_tests(cfg)
        return {
            "recordings": [base64.b64encode(r).decode("ascii") for r in records],
            "seeds": _seeds(target, records),
            "calls": calls[0],
            "callers": callers,
            "tests": outcomes,
            "errors": errors,
            "no_pytest": missing is not None,
            "sys_path": [p for p in sys.path if isinstance(p, str) and p],
        }
    per_call = float(cfg.get("per_call_s", 1.0))
    keys: list[str] = []
    namespace = module.__dict__
    for expr in cfg.get("calls", []):
        keys.append(_call(_evaluator(str(expr), namespace), per_call))
    try:
        func: Callable[..., Any] | None = callable_of(module, target)
    except BaseException:
        func = None
    for line in cfg.get("recordings", []):
        keys.append(_replay(func, line, per_call))
    outcomes, errors, missing = run_tests(cfg)
    return {"keys": keys, "tests": outcomes, "errors": errors, "no_pytest": missing is not None}


def _evaluator(expr: str, namespace: dict[str, Any]) -> Callable[[], tuple[Any, tuple[Any, ...], dict[str, Any]]]:
    def thunk() -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
        return eval(expr, namespace), (), {}

    return thunk


def _seeds(target: str, records: list[bytes]) -> list[str]:
    """The recorded calls whose arguments are all plain literals, as call expressions: what the parent's input
    generator takes the argument types from (a function's, not a method's: ``self`` is no literal)."""
    if "." in target:
        return []
    import ast

    out: list[str] = []
    for data in records:
        try:
            args, kwargs = pickle.loads(data)
            texts = [repr(a) for a in args]
            if kwargs or any(ast.literal_eval(t) != a for t, a in zip(texts, args, strict=True)):
                continue
        except Exception:
            continue
        call = target + "(" + ", ".join(texts) + ")"
        if len(call) < 2000:
            out.append(call)
    return out


def reseed() -> None:
    """The same random numbers for the original and every candidate (each runs in its own process): code that
    draws them (``random.sample``) is compared on what it does with them, not on the draw."""
    import random

    random.seed(0)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        with contextlib.suppress(Exception):
            numpy.random.seed(0)


def _call(thunk: Callable[[], tuple[Any, tuple[Any, ...], dict[str, Any]]], per_call: float) -> str:
    reseed()
    try:
        signal.setitimer(signal.ITIMER_REAL, per_call)
        value, args, kwargs = thunk()
        text = value_text((value, list(args), kwargs) if args or kwargs else value)  # under the timer: repr
        signal.setitimer(signal.ITIMER_REAL, 0)
        return "=" + text
    except BaseException as exc:
        signal.setitimer(signal.ITIMER_REAL, 0)
        return "!" + error_name(exc)


def _replay(func: Callable[..., Any] | None, line: str, per_call: float) -> str:
    if func is None:
        return "!load:target"
    try:
        args, kwargs = pickle.loads(base64.b64decode(line))
    except BaseException:
        return "!Unreplayable"

    def thunk() -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
        value = func(*args, **kwargs)
        return value, tuple(args), dict(kwargs)

    # The arguments after the call are part of what was observed: an in-place change is a behaviour.
    return _call(thunk, per_call)


if __name__ == "__main__":
    main()
