"""``python -m codeconductor.ensemble``: the same as the ``codeconductor`` command (useful without installing the package)."""

from __future__ import annotations

import sys

from .cli import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
