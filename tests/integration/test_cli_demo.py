"""``codeconductor demo`` for real: the embedded default model fixes the bundled example, and what the user reads is
a verified edit with the answers' agreement in words - never a pick that fails an example, never a bare number."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from codeconductor.ensemble.weights import default_embedded_models

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_demo_shows_a_verified_edit_with_its_agreement(tmp_path: Path) -> None:
    assert default_embedded_models(), "the embedded weights are installed by scripts/setup.sh"
    tmp_path.joinpath("codeconductor.toml").write_text('probe_local = false\nembedded = "on"\nhistory = false\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "codeconductor.cli", "demo"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, done.stderr
    assert "no edit:" not in out, out
    assert "verified: it passes every example in your docstring" in out, out
    assert "+++ the edit" in out  # the edit as a diff of the user's code
    # The fix the docstring asks for: an added line that gives 0.0 (``return 0.0``, or ``... if values else 0.0``).
    assert re.search(r"^\+(?!\+\+ ).*\b0\.0\b", out, re.MULTILINE), out
    # The agreement in words: how many answers, and what the weighted number is.
    assert re.search(r"confidence 0\.\d\d: about \d+ in 100 edits", out), out
    assert re.search(r"\d+ of \d+ answers agree on it", out), out
    assert "support " not in out  # no bare weighted vote
