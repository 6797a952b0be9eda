"""``codeconductor stats``: how each of the user's models has done — a table, an HTML dashboard, export, reset.

What the user gets: per model, success rate, agreement with the ensemble, example/test pass rate, how often they
applied its suggestion, p50/p95 latency and the learned weight; ``--html`` writes a self-contained dashboard with
plots (the history's own :func:`~codeconductor.ensemble.history.render_report`, which the editor shows too),
``--export`` writes the whole history as JSON or CSV, ``--reset`` forgets it.

The CLI wires it with :func:`add_stats_subcommand` and dispatches to :func:`run_stats`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from codeconductor.ensemble.errors import CodeConductorError, HistoryCorruptError, HistoryDatabaseError
from codeconductor.ensemble.history import (
    History,
    ModelStats,
    default_history_path,
    move_aside,
    render_report,
)
from codeconductor.ensemble.types import TaskKind

from ._common import command_settings

__all__ = ["add_stats_subcommand", "run_stats", "stats_table"]


def add_stats_subcommand(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``stats`` to the CLI's subcommands; the parsed args carry ``func=run_stats``."""
    p = subparsers.add_parser(
        "stats",
        help="per-model performance history: table, HTML dashboard, export, reset",
        description="Show how each model has done in your runs (from the local history database).",
    )
    p.add_argument("--html", metavar="PATH", help="write a self-contained HTML dashboard with plots to PATH")
    p.add_argument("--json", action="store_true", help="print the statistics as one JSON object")
    p.add_argument("--export", metavar="FILE", help="export the whole history to FILE (.json or .csv)")
    p.add_argument("--reset", action="store_true", help="delete the recorded history (asks unless --yes)")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask before --reset")
    p.add_argument("--task", choices=[str(t) for t in TaskKind], help="only runs of this task kind")
    p.add_argument("--since-days", type=float, metavar="DAYS", help="only runs of the last DAYS days")
    p.add_argument("--db", metavar="PATH", help="history database (default: settings.history_path)")
    p.add_argument(
        "--move-aside",
        action="store_true",
        help="rename a damaged history database to <name>.corrupt-<time> (a new one starts on the next run)",
    )
    p.set_defaults(func=run_stats)


def _fmt_pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def _fmt_s(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}s"


def stats_table(stats: list[ModelStats], title: str = "Model history") -> Table:
    """The rich table ``codeconductor stats`` prints."""
    table = Table(title=title)
    table.add_column("model", style="bold", no_wrap=True)
    for col in ("runs", "success", "agreement", "examples", "tests", "applied", "p50", "p95", "weight"):
        table.add_column(col, justify="right")
    for s in stats:
        table.add_row(
            s.name,
            str(s.attempts),
            _fmt_pct(s.success_rate),
            _fmt_pct(s.agreement_rate),
            _fmt_pct(s.examples_pass_rate),
            _fmt_pct(s.tests_pass_rate),
            _fmt_pct(s.applied_rate),
            _fmt_s(s.latency_p50_s),
            _fmt_s(s.latency_p95_s),
            f"{s.weight:.2f} ± {s.weight_sd:.2f}",
        )
    return table


def run_stats(args: argparse.Namespace) -> int:
    """Run ``codeconductor stats``; returns the exit status (0 ok, 1 history unusable, 2 refused)."""
    out = Console()
    err = Console(stderr=True)
    try:
        settings = command_settings(args)
        path = Path(args.db or settings.history_path or default_history_path()).expanduser()
        if not path.exists() and not args.reset:
            if args.json:
                print(json.dumps({"path": str(path), "runs": 0, "models": []}))
            else:
                out.print(f"No history recorded yet ({path}).")
            return 0
        if args.move_aside:
            moved = move_aside(path)
            out.print(f"Moved {path} aside to {moved}; the next run starts a new history.")
            return 0
        since = time.time() - args.since_days * 86400 if args.since_days is not None else None
        with History(path, settings=settings) as history:
            if args.reset:
                if not args.yes:
                    if not sys.stdin.isatty():
                        err.print("Refusing to reset the history without --yes (stdin is not a terminal).")
                        return 2
                    answer = input(f"Delete all {history.run_count()} recorded runs in {path}? [y/N] ")
                    if answer.strip().lower() not in ("y", "yes"):
                        err.print("History kept.")
                        return 2
                history.reset()
                out.print(f"History reset ({path}).")
                return 0
            if args.export:
                count = history.export(args.export)
                err.print(
                    f"Exported {count} {'answers' if str(args.export).endswith('.csv') else 'runs'} to {args.export}."
                )
            if args.html:
                Path(args.html).write_text(render_report(history, task=args.task, since=since), encoding="utf-8")
                err.print(f"Wrote {args.html}.")
            stats = history.model_stats(task=args.task, since=since)
            if args.json:
                doc = {"path": str(path), "runs": history.run_count(), "models": [s.as_dict() for s in stats]}
                print(json.dumps(doc, indent=1))
            elif not (args.export or args.html):
                if stats:
                    out.print(stats_table(stats, title=f"Model history ({history.run_count()} runs, {path})"))
                else:
                    out.print(f"No runs recorded yet ({path}).")
            return 0
    except HistoryCorruptError as exc:  # at opening, or a page that does not read back past the check there
        err.print(f"codeconductor stats: {exc}", markup=False, soft_wrap=True)
        return 1
    except HistoryDatabaseError as exc:
        err.print(f"codeconductor stats: cannot read the history: {exc}", markup=False)
        return 1
    except (CodeConductorError, OSError) as exc:
        err.print(f"codeconductor stats: {exc}", markup=False)
        return 1
