"""``python -m codeconductor.cli``: the same as the ``codeconductor`` command (useful without installing the package)."""

from __future__ import annotations

import sys

from .app import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
