"""What every ``codeconductor`` command shares: the exit codes and the settings a command line asks for."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from codeconductor.ensemble.settings import Settings, load_settings, parse_settings

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_NO_ANSWER",
    "EXIT_OK",
    "EXIT_USAGE",
    "command_settings",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NO_ANSWER = 3  # the run finished but no model answered (fix, gen-tests: no candidate passed, no test kept)
EXIT_INTERRUPTED = 130

# Command-line flags that override a setting (a command that has no such flag leaves the setting alone).
_FLAG_FIELDS = {"samples": "samples_per_model", "timeout": "timeout_s", "quorum": "quorum"}


def command_settings(
    args: argparse.Namespace,
    *,
    root: Path | None = None,
    adjust: Callable[[Settings], Mapping[str, Any]] | None = None,
) -> Settings:
    """The settings of one command: ``args.settings`` when a caller put them there, else the user's and the project's
    files (the project's found from ``root``, default the current folder; ``--trust-workspace`` honoured), with the
    command line's flags and what ``adjust`` asks of the loaded settings on top, validated like a file (so a bad
    flag is reported by its field name too)."""
    given = getattr(args, "settings", None)
    if isinstance(given, Settings):
        settings = given
    else:
        settings = load_settings(root, trust_workspace=getattr(args, "trust_workspace", False))
    overrides: dict[str, Any] = {
        field: value for flag, field in _FLAG_FIELDS.items() if (value := getattr(args, flag, None)) is not None
    }
    if adjust is not None:
        overrides.update(adjust(settings))
    if not overrides:
        return settings
    return parse_settings({**settings.model_dump(), **overrides}, source="command line")
