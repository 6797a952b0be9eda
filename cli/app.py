"""The ``codeconductor`` command: ask the ensemble from a terminal, list the models it would use, start the server.

A front end of the engine, like the language server: it talks to :mod:`codeconductor.ensemble` through its public
modules, and starts the server (``serve``) by calling :func:`codeconductor.server.serve`.

Commands::

    codeconductor models [--refresh] [--json]          models found, and what happened at each endpoint
    codeconductor ask [--file F] [--lines A-B] [--task T] [--samples N] [--timeout S] [--quorum K] [--json] TEXT
                      [--python PY] [--root DIR]        ask every model (code from the file/lines, else stdin);
                                                        answers are run in the file's project with its interpreter
    codeconductor serve [--tcp HOST:PORT]               the language server (same as ``python -m codeconductor.server``)
    codeconductor demo [--json]                         ``ask`` on a bundled example (embedded models if no server;
                                                        per-model timeout at least 120 s unless --timeout is given)

Settings come from the user's config file (``<user config dir>/codeconductor/codeconductor.toml``) and
``codeconductor.toml`` (or ``pyproject.toml [tool.codeconductor]``) in the current folder or the nearest parent;
the project's file may not choose where code and keys go unless the workspace is trusted (``--trust-workspace``
or ``trusted_workspaces`` in the user's file; see :func:`codeconductor.ensemble.settings.load_settings`). Progress
goes to stderr, results to stdout (with ``--json``: only the JSON document).

Exit codes: 0 success; 1 error (no models, server missing, other failure); 2 usage error or invalid settings
(the message names the field); 3 the run finished but no model answered; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import difflib
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.syntax import Syntax
from rich.table import Table

import codeconductor.ensemble
from codeconductor.ensemble.context import build_context, language_from_path
from codeconductor.ensemble.edits import fit_code
from codeconductor.ensemble.errors import CodeConductorError, SettingsError
from codeconductor.ensemble.history import open_history
from codeconductor.ensemble.languages import is_python
from codeconductor.ensemble.pipeline import Pipeline
from codeconductor.ensemble.project import project_for, runs_in_project
from codeconductor.ensemble.settings import Settings
from codeconductor.ensemble.types import AnswerStatus, CodeContext, ProgressEvent, Request, Result, TaskKind

from ._common import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_NO_ANSWER, EXIT_OK, EXIT_USAGE, command_settings
from .fix import add_fix_subcommand, run_fix, run_gen_tests
from .stats import add_stats_subcommand, run_stats

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_NO_ANSWER", "EXIT_OK", "EXIT_USAGE", "example_path", "main"]

DEMO_TIMEOUT_S = 120.0
DEMO_SAMPLE_BUDGET_S = 60.0

_TASKS = ("fix", "improve", "implement", "docstring", "review", "ask", "tests")
_STATUS_STYLE = {
    "answered": "green",
    "timeout": "yellow",
    "failed": "red",
    "cancelled": "dim",
    "skipped": "dim",
    "queued": "dim",
    "loading": "cyan",
    "started": "cyan",
}


class _Usage(Exception):
    """A usage error with a message for the user (exit code 2)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codeconductor", description="An ensemble of local LLMs: consensus, confidence and disagreement."
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug)")
    parser.add_argument(
        "--trust-workspace",
        action="store_true",
        help="let this project's settings file set endpoints, allow_remote, api_key_env and history_path",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    models = sub.add_parser("models", help="list the models found and each endpoint's status")
    models.add_argument("--refresh", action="store_true", help="probe again (ignore the cache)")
    models.add_argument("--json", action="store_true", help="print JSON")

    ask = sub.add_parser("ask", help="ask the ensemble about code")
    ask.add_argument("instruction", nargs="?", default="", help="what to do or ask")
    ask.add_argument("--file", "-f", type=Path, help="source file (default: read code from stdin)")
    ask.add_argument("--lines", "-l", help="1-based inclusive line range A-B of --file (default: whole file)")
    ask.add_argument("--task", "-t", choices=_TASKS, default="improve", help="kind of request (default: improve)")
    ask.add_argument(
        "--python",
        help="the project's Python interpreter, which runs your code and its tests when answers are checked "
        "(default: the project_python setting, .venv/venv in the project, $VIRTUAL_ENV, else this one)",
    )
    ask.add_argument(
        "--root",
        type=Path,
        help="the project's root folder (default: the nearest folder above --file with "
        "pyproject.toml, setup.py, setup.cfg or .git)",
    )
    _run_options(ask)

    serve = sub.add_parser("serve", help="start the language server (stdio, or TCP)")
    serve.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP instead of stdio")

    demo = sub.add_parser("demo", help="improve a bundled example function")
    _run_options(demo)

    add_stats_subcommand(sub)
    add_fix_subcommand(sub)  # fix, gen-tests
    return parser


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--samples", "-n", type=int, help="samples per model")
    parser.add_argument("--timeout", type=float, help="per-model timeout in seconds")
    parser.add_argument("--quorum", "-k", type=int, help="stop once this many answers agree")
    parser.add_argument("--json", action="store_true", help="print the Result as JSON")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress display")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code.

    The result is flushed to stdout before returning, so a full pipe or disk is reported here, with a message
    and exit code 1, instead of being lost at interpreter exit; a reader that closed the pipe early
    (``| head``) is not an error."""
    try:
        code = _main(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python's documented recipe: point stdout at /dev/null so the exit-time flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:
        Console(stderr=True).print(f"[red]error:[/] cannot write the result: {escape(str(exc))}")
        return EXIT_ERROR
    return code


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    err = Console(stderr=True)
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.command == "stats":
            return run_stats(args)
        if args.command == "fix":
            return run_fix(args)
        if args.command == "gen-tests":
            return run_gen_tests(args)
        if args.command == "serve":
            return _serve(args.tcp, err)
        demo = args.command == "demo"
        settings = command_settings(args, adjust=(lambda loaded: _demo_settings(loaded, args)) if demo else None)
        if args.command == "models":
            return asyncio.run(_models(settings, refresh=args.refresh, as_json=args.json))
        request = _demo_request(args) if demo else _ask_request(args, settings)
        return asyncio.run(_ask(settings, request, args, err))
    except SettingsError as exc:
        err.print(f"[red]invalid settings:[/] {escape(str(exc))}")
        for field, message in exc.errors:
            err.print(f"  [bold]{escape(field)}[/]: {escape(message)}")
        return EXIT_USAGE
    except _Usage as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        return EXIT_USAGE
    except CodeConductorError as exc:  # every command's run (asyncio.run) ends here when the engine gives up
        err.print(f"[red]error:[/] {escape(str(exc))}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        # asyncio.run has already cancelled the run, which closed every model connection.
        err.print("[yellow]cancelled[/]")
        return EXIT_INTERRUPTED


def _demo_settings(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """What ``demo`` changes in the loaded settings."""
    overrides: dict[str, Any] = {}
    if args.timeout is None:
        # The demo often runs the in-process models on a laptop CPU: give them time rather than fail the first try.
        overrides["timeout_s"] = max(settings.timeout_s, DEMO_TIMEOUT_S)
        overrides["deadline_s"] = max(settings.deadline_s, DEMO_TIMEOUT_S + 30)
    if "sample_budget_s" not in settings.model_fields_set:
        # The demo is there to show several answers and their disagreement, also on a busy machine.
        overrides["sample_budget_s"] = max(settings.sample_budget_s, DEMO_SAMPLE_BUDGET_S)
    return overrides


# -- models ----------------------------------------------------------------------------------------------------


async def _models(settings: Settings, *, refresh: bool, as_json: bool) -> int:
    async with Pipeline(settings, history=open_history(settings)) as pipeline:
        models = await pipeline.models(refresh=refresh)
        endpoints = await pipeline.endpoints()
        notes = pipeline.discovery.notes
    sandbox_line = await asyncio.to_thread(_sandbox_line)
    # Piped output is read by grep and people alike: do not cut model names at 80 columns.
    out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
    if as_json:
        document = {
            "models": [m.model_dump(mode="json") | {"id": m.id} for m in models],
            "endpoints": [e.model_dump(mode="json") for e in endpoints],
            "notes": notes,
            "sandbox": sandbox_line,
        }
        print(json.dumps(document, indent=2))
        return EXIT_OK
    table = Table(title=f"{len(models)} model(s)")
    for column in ("model", "provider", "endpoint", "size", "family", "quantization", "loaded"):
        table.add_column(column)
    for m in models:
        size = m.parameter_size or (_human_bytes(m.size_bytes) if m.size_bytes else "")
        loaded = "" if m.loaded is None else ("yes" if m.loaded else "no")
        # A model served by several replicas is one member: every replica's endpoint is listed (codeconductor.ensemble.replicas).
        where = "\n".join(r.endpoint for r in m.replicas) if m.replicas else m.endpoint
        if m.server == "litellm" and m.deployments:
            where += f" ({m.deployments} deployments)"
        table.add_row(m.name, m.provider.value, where, size, m.family or "", m.quantization or "", loaded)
    out.print(table)
    for e in endpoints:
        style = {"up": "green", "down": "dim", "error": "red"}.get(e.state, "yellow")
        api = f" ({e.api.value})" if e.api else ""
        detail = f" - {e.detail}" if e.detail else ""
        out.print(
            f"[{style}]{e.state:>14}[/] {escape(e.name)} {escape(e.url)}{api}: {e.models} model(s){escape(detail)}"
        )
    for note in notes:
        out.print(f"[yellow]note:[/] {escape(note)}")
    off = sandbox_line.startswith("OFF")
    out.print(f"[{'red' if off else 'green'}]sandbox:[/] {escape(sandbox_line)}")
    return EXIT_OK


def _sandbox_line() -> str:
    """How candidates are contained here, for ``models``: the full sandbox, or why nothing runs (and the fix)."""
    from codeconductor.ensemble.verify.sandbox import containment_line

    return containment_line()


def _human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024:
            return f"{value:.0f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


# -- ask -------------------------------------------------------------------------------------------------------


def _parse_lines(spec: str, total: int) -> tuple[int, int]:
    """``A-B`` (1-based, inclusive; ``A`` alone is one line) -> 0-based ``[start, end)``."""
    try:
        first, _, last = spec.partition("-")
        start, end = int(first), int(last or first)
    except ValueError:
        raise _Usage(f"--lines must look like 10-20, got {spec!r}") from None
    if not 1 <= start <= end or start > max(total, 1):
        raise _Usage(f"--lines {spec} is outside the file (it has {total} lines)")
    return start - 1, min(end, total)


def _ask_request(args: argparse.Namespace, settings: Settings) -> Request:
    if args.file is not None:
        try:
            text = args.file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise _Usage(f"cannot read {args.file}: {exc}") from exc
        total = len(text.splitlines())
        start, end = _parse_lines(args.lines, total) if args.lines else (0, total)
        path = str(args.file)
    else:
        if args.lines:
            raise _Usage("--lines needs --file")
        text = "" if sys.stdin.isatty() else sys.stdin.read()
        start, end, path = 0, len(text.splitlines()), None
    if not text.strip() and not args.instruction:
        raise _Usage("nothing to ask: give code (--file or stdin) and/or an instruction")
    context = build_context(text, start, end, language=language_from_path(path), path=path)
    if args.root is not None and not args.root.is_dir():
        raise _Usage(f"--root {args.root} is not a folder")
    if args.file is not None and runs_in_project(context.language):
        # The code is checked where it lives: its project, its interpreter (Go: its module), its tests.
        if args.python and not is_python(context.language):
            raise _Usage("--python needs a Python --file")
        context.project = project_for(
            args.file, text, root=args.root, python_setting=args.python or settings.project_python
        )
    elif args.python or args.root:
        raise _Usage("--python and --root need a Python (or Go) --file")
    return Request(task=TaskKind(args.task), context=context, instruction=args.instruction)


def example_path() -> Path:
    """The bundled example used by ``codeconductor demo``: a function whose docstring shows its bug (the engine's
    package data)."""
    return Path(codeconductor.ensemble.__file__ or "").with_name("examples") / "average.py"


def _demo_request(args: argparse.Namespace) -> Request:
    path = example_path()
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("def "))
    context = build_context(text, start, len(lines), path=str(path))
    return Request(
        task=TaskKind.FIX,
        context=context,
        instruction="average([]) raises ZeroDivisionError; it should return 0.0 as the docstring says.",
    )


class _ProgressView:
    """One live line per model (and sample) on stderr."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.rows: dict[tuple[str, int], TaskID] = {}

    def __call__(self, event: ProgressEvent) -> None:
        key = (event.model_id, event.sample)
        label = event.model_id if event.sample == 0 else f"{event.model_id} #{event.sample}"
        style = _STATUS_STYLE.get(event.status, "")
        status = f"[{style}]{event.status}[/]" + (f" ({escape(event.detail)})" if event.detail else "")
        final = event.status in ("answered", "timeout", "failed", "cancelled", "skipped")
        if key not in self.rows:
            self.rows[key] = self.progress.add_task(escape(label), total=1, status=status)
        self.progress.update(self.rows[key], status=status, completed=1 if final else 0)
        if final:
            self.progress.stop_task(self.rows[key])


async def _ask(settings: Settings, request: Request, args: argparse.Namespace, err: Console) -> int:
    view = None if args.quiet else _ProgressView(err)
    async with Pipeline(settings, history=open_history(settings)) as pipeline:
        if view is None:
            result = await pipeline.run(request)
        else:
            with view.progress:
                result = await pipeline.run(request, on_progress=view)
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        _print_result(result)
    answered = any(a.status is AnswerStatus.ANSWERED for a in result.answers)
    return EXIT_OK if answered else EXIT_NO_ANSWER


def _print_result(result: Result) -> None:
    out = Console(soft_wrap=True)
    language = result.request.context.language
    for answer in result.answers:
        label = answer.model_id + (f" #{answer.sample}" if answer.sample else "")
        style = _STATUS_STYLE.get(answer.status.value, "")
        timing = f"{answer.latency_s:.2f} s" if answer.latency_s is not None else "-"
        if answer.load_s:
            timing += f" (+{answer.load_s:.2f} s load)"
        tokens = f", {answer.tokens_out} tokens" if answer.tokens_out else ""
        out.rule(f"{escape(label)}  [{style}]{answer.status.value}[/]  {timing}{tokens}", align="left")
        if answer.status is AnswerStatus.ANSWERED:
            out.print(escape(answer.text.strip()))
        else:
            out.print(f"[{style}]{escape(answer.error or answer.reason or '')}[/]")
    c = result.consensus
    out.rule("[bold]consensus[/]", align="left")
    answered = sum(a.status is AnswerStatus.ANSWERED for a in result.answers)
    total_vote = sum(cluster.support for cluster in c.clusters)
    if c.no_edit:
        out.print(f"[bold yellow]no edit:[/] {escape(c.no_edit)}")
    elif not c.pick:
        out.print("[red]no usable answer[/]")
    else:
        edit = _edit_diff(result.request.context, c.pick) if c.kind == "code" else ""
        if edit:
            out.print("[bold]the edit[/] (your code -> the pick):")
            out.print(Syntax(edit, "diff", word_wrap=True))
        else:
            out.print(Syntax(c.pick, language if c.kind == "code" else "text", word_wrap=True))
        pick_cluster = c.clusters[0] if c.clusters else None
        if pick_cluster is not None and pick_cluster.passes_examples:
            out.print("[green]verified:[/] it passes every example in your docstring")
        agree = len(pick_cluster.members) if pick_cluster is not None else c.agree
        vote = (
            f" (weighted by each model's reliability: {pick_cluster.support:.1f} of {total_vote:.1f})"
            if pick_cluster is not None and len(c.clusters) > 1
            else ""
        )
        out.print(
            f"[bold]confidence {c.confidence:.2f}[/]: {_confidence_words(c.confidence)}; "
            f"{agree} of {answered} answers agree on it{vote} - from {escape(', '.join(_models_of(c.pick_models)))}"
        )
        if c.unchecked:
            out.print(f"[bold yellow]not checked:[/] {escape(c.unchecked)}")
    for cluster in c.clusters[0 if c.no_edit else 1 :]:
        verdict = f" - [red]refused:[/] {escape(cluster.rejected)}" if cluster.rejected else ""
        share = f"weighted vote {cluster.support:.1f} of {total_vote:.1f}" if total_vote else "no vote"
        count = len(cluster.members)
        out.print(
            f"[yellow]disagree:[/] {count} answer{'s' if count != 1 else ''} "
            f"({escape(', '.join(cluster.members))}; {share}){verdict}"
        )
        diff = cluster.diff or "\n".join(
            difflib.unified_diff(
                c.pick.splitlines(), cluster.representative.splitlines(), "pick", "theirs", lineterm=""
            )
        )
        if diff:
            out.print(Syntax(diff, "diff", word_wrap=True))
    for note in [*result.notes, *c.notes]:
        out.print(f"[yellow]note:[/] {escape(note)}")
    out.print(f"[dim]{result.wall_s:.2f} s, run {result.id}[/]")


def _edit_diff(context: CodeContext, pick: str) -> str:
    """The edit as a unified diff of the user's selection, as it would be put there (:func:`fit_code`: imports
    the file already has are not repeated); "" when nothing changes."""
    before = context.selection
    file_text = before
    if context.path:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            file_text = Path(context.path).read_text(encoding="utf-8")
    after = fit_code(pick, before, file_text)
    return "\n".join(
        difflib.unified_diff(before.splitlines(), after.splitlines(), "your code", "the edit", lineterm="")
    )


def _confidence_words(confidence: float) -> str:
    """What a calibrated confidence means, in words (its calibration: docs/benchmarks.md, "Trust")."""
    return f"about {round(confidence * 100)} in 100 edits offered at this confidence were right on the benchmarks"


def _models_of(labels: Sequence[str]) -> list[str]:
    """Model ids without their ``#sample`` suffixes, once each, in order."""
    return list(dict.fromkeys(label.split("#", 1)[0] for label in labels))


# -- serve -----------------------------------------------------------------------------------------------------


def _serve(tcp: str | None, err: Console) -> int:
    """Run the language server as ``python -m codeconductor.server [--tcp HOST:PORT]`` would.

    The server is the other front end; it is imported only here, so ``codeconductor ask`` starts fast.
    """
    try:
        from codeconductor.server import serve
    except ImportError:
        err.print("[red]error:[/] the language server is not installed (no module codeconductor.server)")
        return EXIT_ERROR
    try:
        serve(tcp)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_ERROR)
    return EXIT_OK
