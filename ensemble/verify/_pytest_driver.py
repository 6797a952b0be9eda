"""The driver :class:`~codeconductor.ensemble.verify.pytest_runner.PytestRunner` runs inside the sandbox: it runs the chosen
tests with pytest and prints one report line, ``REPORT_MARKER KEY {"exit_code", "tests", "errors"}``.

``KEY`` is a per-run random key the runner puts in the settings file; the driver reads it, deletes the file and
keeps the key in a closure before pytest imports any of the project, so a candidate that prints a report of its
own (or an old one) does not know it, and the runner trusts exactly one keyed line. What code the tests import can
still do in this interpreter (find the key in memory, change pytest's outcomes) is in docs/reliability.md.

Standard library and pytest only, no CodeConductor imports: its source is copied into the sandbox's scratch
directory next to the project's files and run there as a script (``__main__``), reading its settings from the
JSON file the runner writes beside it. Importing this module does nothing.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Generator
    from types import FrameType

    import pytest

CONFIG_NAME = "__codeconductor_pytest__.json"
REPORT_MARKER = "codeconductor-pytest-report"
# The worst outcome of setup/call/teardown wins.
_RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3, "timeout": 4}


def trim(text: str | None, limit: int) -> str:
    text = (text or "").strip()
    if len(text) <= limit:
        return text
    head = limit // 5
    return text[:head] + "\n[...]\n" + text[-(limit - head) :]


class TestTimeout(BaseException):
    """BaseException, so a candidate's `except Exception` cannot swallow it."""


class Collect:
    """The pytest plugin that keeps one outcome (and trimmed message) per test, and the collection errors."""

    def __init__(self, per_test_timeout_s: float, message_limit: int) -> None:
        self.per_test_timeout_s = per_test_timeout_s
        self.message_limit = message_limit
        self.results: dict[str, tuple[str, str]] = {}
        self.order: list[str] = []
        self.errors: list[str] = []

    def trim(self, text: str | None) -> str:
        return trim(text, self.message_limit)

    def put(self, nodeid: str, outcome: str, message: str = "") -> None:
        if nodeid not in self.results:
            self.order.append(nodeid)
        previous = self.results.get(nodeid)
        if previous is None or _RANK[outcome] > _RANK[previous[0]]:
            self.results[nodeid] = (outcome, self.trim(message))

    def on_alarm(self, signum: int, frame: FrameType | None) -> None:
        raise TestTimeout(f"test exceeded {self.per_test_timeout_s} s")

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.errors.append(self.trim(f"{report.nodeid or 'collection'}: {report.longreprtext}"))

    # Marked a hook wrapper by main(): pytest can be imported only once the project's paths are set up.
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        signal.signal(signal.SIGALRM, self.on_alarm)
        signal.setitimer(signal.ITIMER_REAL, self.per_test_timeout_s)
        try:
            return (yield)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        text = report.longreprtext if report.outcome != "passed" else ""
        if report.when == "call":
            outcome: str = report.outcome
            if outcome == "failed" and "TestTimeout" in text:
                outcome = "timeout"
            self.put(report.nodeid, outcome, text)
        elif report.outcome == "failed":
            self.put(report.nodeid, "error", text)
        elif report.outcome == "skipped":
            self.put(report.nodeid, "skipped", text)


def _ignore_putenv(key: object, value: object) -> None:
    pass


def _ignore_unsetenv(key: object) -> None:
    pass


def _report_writer(
    key: str, write: Callable[[int, bytes], int], dumps: Callable[[Any], str]
) -> Callable[[dict[str, Any]], None]:
    """The one function that writes the report: the key and the writers are bound here, before the project loads
    (a test that patches ``os.write`` or ``json.dumps`` changes nothing written)."""

    def report_line(report: dict[str, Any]) -> None:
        data = ("\n" + REPORT_MARKER + " " + key + " " + dumps(report) + "\n").encode()
        while data:
            data = data[write(1, data) :]

    return report_line


def main() -> None:
    # The sandbox's audit hook refuses os.putenv (a candidate must not change the environment of processes it
    # cannot start anyway); pytest sets a few variables for itself, which it reads back through os.environ only.
    os.putenv = _ignore_putenv
    os.unsetenv = _ignore_unsetenv
    with open(CONFIG_NAME, encoding="utf-8") as handle:
        cfg: dict[str, Any] = json.load(handle)
    os.remove(CONFIG_NAME)  # the report key is in no file the tests can read
    report_line = _report_writer(str(cfg.pop("report_key")), os.write, json.dumps)
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # the user's tests get only the plugins asked for: faster
    for entry in reversed(cfg["sys_path"]):
        sys.path.insert(0, os.path.abspath(entry))
    if cfg["site_dirs"]:
        import site

        for entry in cfg["site_dirs"]:
            site.addsitedir(entry)
    import pytest

    pytest.hookimpl(wrapper=True)(Collect.pytest_runtest_call)
    collect = Collect(cfg["per_test_timeout_s"], cfg["message_limit"])
    sys.stdout.flush()
    real_stdout = os.dup(1)
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)  # pytest's own report would crowd out ours under the sandbox's output cap
    args = ["-q", "-p", "no:cacheprovider", "-o", "addopts=", "--tb=short", "--rootdir", "."]
    for plugin in cfg["plugins"]:
        args += ["-p", plugin]
    try:
        code = int(pytest.main(args + cfg["tests"], plugins=[collect]))
    except BaseException as exc:
        code = 99
        collect.errors.append(collect.trim(f"pytest crashed: {type(exc).__name__}: {exc}"))
    sys.stdout.flush()
    os.dup2(real_stdout, 1)
    report = {
        "exit_code": code,
        "tests": [
            {"nodeid": n, "outcome": collect.results[n][0], "message": collect.results[n][1]} for n in collect.order
        ],
        "errors": collect.errors,
    }
    report_line(report)


if __name__ == "__main__":
    main()
