"""A project folder whose own modules take the names CodeConductor and its dependencies import: ``server.py`` and
``server/``, ``ensemble/``, ``cli/``, ``codeconductor.py`` and ``codeconductor/`` (with ``server``, ``ensemble`` and
``cli`` subpackages and ``__main__`` modules), ``pygls``, ``httpx``... Importing any of them prints ``SHADOW <name>
imported`` (stdout and stderr) and exits 17, so a front end that runs one of them instead of ours is caught."""

from __future__ import annotations

from pathlib import Path

__all__ = ["SHADOW_EXIT", "SHADOW_MODULES", "write_shadowing_modules"]

SHADOW_EXIT = 17
SHADOW_MODULES = ("server", "ensemble", "cli", "codeconductor", "pygls", "lsprotocol", "httpx", "pydantic", "rich")


def write_shadowing_modules(folder: Path) -> Path:
    """Write the shadowing modules into ``folder`` (created if needed) and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in SHADOW_MODULES:
        body = (
            f"import sys\nprint('SHADOW {name} imported')\nsys.stderr.write('SHADOW {name} imported\\n')\n"
            f"sys.exit({SHADOW_EXIT})\n"
        )
        for sub in ("", "server", "ensemble", "cli"):
            package = folder / name / sub
            package.mkdir(parents=True, exist_ok=True)
            (package / "__init__.py").write_text(body)
            (package / "__main__.py").write_text(body)
        # A module next to the package of the same name (the package wins where both are importable).
        (folder / f"{name}.py").write_text(body)
    return folder
