"""``codeconductor fix`` and ``codeconductor gen-tests``: make a function pass the user's pytest tests with the
ensemble, or have the ensemble write tests for it, from a terminal.

Commands::

    codeconductor fix [--tests tests/test_x.py::test_y ...] [--rounds 3] [--time-limit S] [--root DIR]
                      [--apply] [--json] [--quiet] path/to/file.py:function
    codeconductor gen-tests [--code-correct] [--min-agree 2] [--out PATH] [--write] [--root DIR] [--json]
                      path/to/file.py:function

Paths and test ids are relative to ``--root`` (default: the current folder). Without ``--tests``, ``fix`` uses the
project's tests that mention the function, found as the editor finds them. Nothing is written unless
``--apply`` / ``--write`` is given; by default the change is printed as a diff. Exit codes: 0 the tests pass (or
tests were kept), 1 error, 2 usage error, 3 no candidate passed (or no test was kept).
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax

from codeconductor.ensemble import find_project_tests
from codeconductor.ensemble.errors import SettingsError
from codeconductor.ensemble.fixloop import FixOutcome, FixProgress, FixTarget, fix_with_tests
from codeconductor.ensemble.pipeline import Pipeline
from codeconductor.ensemble.settings import Settings
from codeconductor.ensemble.testgen import TestGenOutcome, generate_tests
from codeconductor.ensemble.types import ProgressEvent

from ._common import EXIT_ERROR, EXIT_NO_ANSWER, EXIT_OK, EXIT_USAGE, command_settings

__all__ = ["add_fix_subcommand", "add_gen_tests_subcommand", "run_fix", "run_gen_tests"]

EXIT_NOT_GREEN = EXIT_NO_ANSWER  # no candidate passed the tests, or no generated test was kept


def add_fix_subcommand(subparsers: Any) -> None:
    """Add ``fix`` (and ``gen-tests``) to the ``codeconductor`` sub-command parsers."""
    fix = subparsers.add_parser("fix", help="make a function pass your pytest tests with the ensemble")
    fix.add_argument("target", help="path/to/file.py:function (or Class.method)")
    fix.add_argument(
        "--tests",
        "-T",
        action="append",
        help="pytest node id or path (repeatable), e.g. t.py::t (default: the tests that mention the function)",
    )
    fix.add_argument("--rounds", type=int, default=3, help="at most this many rounds of model answers (default 3)")
    fix.add_argument("--time-limit", type=float, default=600.0, help="stop starting rounds after S seconds")
    _common(fix)
    fix.add_argument("--apply", action="store_true", help="write the passing edit into the file")
    add_gen_tests_subcommand(subparsers)


def add_gen_tests_subcommand(subparsers: Any) -> None:
    gen = subparsers.add_parser("gen-tests", help="have the ensemble write pytest tests for a function")
    gen.add_argument("target", help="path/to/file.py:function")
    gen.add_argument("--code-correct", action="store_true", help="the current code is right: keep tests it passes")
    gen.add_argument("--min-agree", type=int, default=2, help="models that must agree on a test (default 2)")
    gen.add_argument("--out", help="test file to create (default tests/test_<function>_generated.py)")
    _common(gen)
    gen.add_argument("--write", action="store_true", help="write the test file")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", type=Path, default=None, help="project root (default: current folder)")
    parser.add_argument("--timeout", type=float, help="per-model timeout in seconds")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress lines")


def _split_target(spec: str) -> tuple[str, str]:
    path, sep, function = spec.rpartition(":")
    if not sep or not path or not function:
        raise ValueError(f"expected path/to/file.py:function, got {spec!r}")
    return path, function


def _resolve(args: argparse.Namespace) -> tuple[Path, str, str, Settings]:
    """The project root, the file relative to it, the function and the settings named by the command line."""
    path, function = _split_target(args.target)
    root = (args.root or Path.cwd()).resolve()
    return root, _relative(root, path), function, command_settings(args, root=root)


def _usage_error(err: Console, exc: SettingsError | ValueError) -> int:
    if isinstance(exc, SettingsError):
        err.print(f"[red]invalid settings:[/] {escape(str(exc))}")
    else:
        err.print(f"[red]error:[/] {escape(str(exc))}")
    return EXIT_USAGE


def _relative(root: Path, path: str) -> str:
    candidate = Path(path)
    if candidate.is_absolute():
        return candidate.resolve().relative_to(root.resolve()).as_posix()
    return candidate.as_posix()


def run_fix(args: argparse.Namespace) -> int:
    """``codeconductor fix``; returns the exit code. The engine's errors and Ctrl-C reach the caller
    (:func:`codeconductor.cli.app.main` turns them into a message and an exit code)."""
    err = Console(stderr=True)
    try:
        if args.rounds < 1:
            raise ValueError("--rounds must be at least 1")
        root, rel, function, settings = _resolve(args)
        tests = args.tests or asyncio.run(find_project_tests(root, function))
        if not tests:
            raise ValueError(
                f"no test in the project mentions {function}; pass test ids (e.g. --tests tests/test_x.py::test_y)"
            )
        target = FixTarget(root=str(root), path=rel, function=function, tests=tests)
    except (SettingsError, ValueError) as exc:
        return _usage_error(err, exc)

    def show(event: FixProgress) -> None:
        # Model events: only their final states, not every queued/started step.
        if not args.quiet and (event.phase != "model" or event.detail in ("answered", "failed", "timeout")):
            err.print(f"[dim]{escape(event.message)}[/]")

    async def go() -> FixOutcome:
        async with Pipeline(settings) as pipeline:
            return await fix_with_tests(
                pipeline.run, target, rounds=args.rounds, time_limit_s=args.time_limit, on_progress=show
            )

    outcome = asyncio.run(go())
    file_path = root / rel
    if args.json:
        print(outcome.model_dump_json(indent=2))
    else:
        _print_fix(outcome, file_path)
    if outcome.status == "passed" and args.apply:
        file_path.write_text(outcome.new_text, encoding="utf-8")
        err.print(f"[green]applied to {escape(str(file_path))}[/]")
    return EXIT_OK if outcome.status in ("passed", "already_passing") else EXIT_NOT_GREEN


def _print_fix(outcome: FixOutcome, file_path: Path) -> None:
    out = Console(soft_wrap=True)
    style = {"passed": "green", "already_passing": "green", "failed": "red"}[outcome.status]
    out.print(f"[{style}]{escape(outcome.message)}[/]")
    for report in outcome.rounds:
        out.print(
            f"round {report.round}: {report.answered} model(s) answered, {len(report.candidates)} distinct "
            f"candidate(s), {report.passing} pass ({report.wall_s:.1f} s)"
        )
    if outcome.status == "passed":
        old = file_path.read_text(encoding="utf-8")
        diff = "".join(
            difflib.unified_diff(
                old.splitlines(True), outcome.new_text.splitlines(True), str(file_path), str(file_path)
            )
        )
        out.print(Syntax(diff, "diff", word_wrap=True))
        out.print(f"picked from {escape(', '.join(outcome.pick_models))}")
    elif outcome.best is not None:
        out.print(f"best attempt ({escape(outcome.best.summary)}):")
        out.print(Syntax(outcome.best.code, "python", word_wrap=True))
        out.print(escape(outcome.best.failures))
    for note in outcome.notes:
        out.print(f"[yellow]note:[/] {escape(note)}")


def run_gen_tests(args: argparse.Namespace) -> int:
    """``codeconductor gen-tests``; returns the exit code (the engine's errors and Ctrl-C: as :func:`run_fix`)."""
    err = Console(stderr=True)
    try:
        root, rel, function, settings = _resolve(args)
    except (SettingsError, ValueError) as exc:
        return _usage_error(err, exc)

    def show(event: ProgressEvent) -> None:
        if not args.quiet and event.status in ("answered", "failed", "timeout"):
            err.print(f"[dim]{escape(event.model_id)}: {event.status}[/]")

    async def go() -> TestGenOutcome:
        async with Pipeline(settings) as pipeline:
            return await generate_tests(
                pipeline.run,
                root=root,
                path=rel,
                function=function,
                code_correct=args.code_correct,
                min_agree=args.min_agree,
                out_path=args.out,
                on_progress=show,
            )

    outcome = asyncio.run(go())
    if args.json:
        print(json.dumps(outcome.model_dump(mode="json"), indent=2))
    else:
        out = Console(soft_wrap=True)
        out.print(escape(outcome.message))
        for test in outcome.tests:
            mark = "[green]kept[/]" if test.kept else "[dim]dropped[/]"
            out.print(f"{mark} {escape(test.name)} ({test.outcome}, support {test.support}): {escape(test.reason)}")
        if outcome.content:
            out.print(Syntax(outcome.content, "python", word_wrap=True))
    if outcome.content and args.write:
        dest = root / outcome.path
        if dest.exists():
            err.print(f"[red]error:[/] {escape(str(dest))} exists; choose another --out")
            return EXIT_ERROR
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(outcome.content, encoding="utf-8")
        err.print(f"[green]wrote {escape(str(dest))}[/]")
    return EXIT_OK if outcome.kept else EXIT_NOT_GREEN
