"""An interpreter that runs this checkout the way an installed copy runs.

A virtual environment (no pip) whose site-packages holds a ``.pth`` file naming the repository root and the
development environment's site-packages, plus a ``bin/codeconductor`` console script like the one pip writes. So
``python -I -m codeconductor.server`` (what the VS Code extension starts: ``-I`` ignores PYTHONPATH) and
``codeconductor serve`` (what the README's Neovim configuration starts) import this checkout's ``codeconductor``,
not the copy the development environment was installed from (which may be another worktree), and neither has the
working directory on ``sys.path``. The development environment's own ``.pth`` finder is not activated: its folder
is added as a plain path.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

__all__ = ["checkout_venv"]

ROOT = Path(__file__).resolve().parents[2]

_CONSOLE_SCRIPT = """#!{python}
import sys
from codeconductor.cli import main
if __name__ == "__main__":
    sys.exit(main())
"""


def checkout_venv(folder: Path) -> Path:
    """Create the environment in ``folder`` (once) and return its ``bin`` directory (``python``, ``codeconductor``)."""
    bin_dir = folder / "bin"
    if (bin_dir / "codeconductor").exists():
        return bin_dir
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    folder.chmod(0o755)  # as a venv made with the usual umask: pytest's temporary folders are 0700
    purelib = subprocess.run(
        [str(bin_dir / "python"), "-I", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    Path(purelib, "codeconductor_checkout.pth").write_text(f"{ROOT}\n{sysconfig.get_path('purelib')}\n")
    script = bin_dir / "codeconductor"
    script.write_text(_CONSOLE_SCRIPT.format(python=bin_dir / "python"))
    script.chmod(0o755)
    return bin_dir
