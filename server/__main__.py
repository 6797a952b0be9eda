"""``python -m codeconductor.server [--tcp HOST:PORT]``: run the CodeConductor language server (stdio by default).

``--handshake`` prints one JSON object instead (:func:`handshake`) and exits: the editor extensions run it, with
``python -I``, to check that an interpreter runs this server (not a user's own module that happens to have the same
name) and which version.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys

from codeconductor import __version__

from . import serve

DISTRIBUTION = "codeconductor"


def handshake() -> dict[str, str]:
    """Who answers: the distribution's name and version, the Python version, and the interpreter's absolute path
    (what an extension that found ``python3`` on PATH then starts)."""
    return {
        "name": DISTRIBUTION,
        "version": __version__,
        "python": platform.python_version(),
        "executable": sys.executable,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m codeconductor.server", description="CodeConductor language server")
    parser.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP instead of stdio")
    parser.add_argument("--stdio", action="store_true", help="use stdio (the default; accepted for editors)")
    parser.add_argument("--handshake", action="store_true", help="print the name and version as JSON and exit")
    args = parser.parse_args(argv)
    if args.handshake:
        sys.stdout.write(json.dumps(handshake()) + "\n")
        return
    serve(args.tcp)


if __name__ == "__main__":
    main()
