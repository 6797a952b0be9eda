"""``python -m server [--tcp HOST:PORT]``: run the CodeConductor language server (stdio by default)."""

from __future__ import annotations

import argparse

from .app import start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m server", description="CodeConductor language server")
    parser.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP instead of stdio")
    parser.add_argument("--stdio", action="store_true", help="use stdio (the default; accepted for editors)")
    args = parser.parse_args(argv)
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        start((host or "127.0.0.1", int(port)))
    else:
        start()


if __name__ == "__main__":
    main()
