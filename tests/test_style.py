"""The code stays formatted: `ruff format` (pyproject.toml) changes nothing."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_ruff_format_leaves_the_code_unchanged():
  result = subprocess.run(
    [sys.executable, "-m", "ruff", "format", "--check", "--diff", "."],
    cwd=ROOT,
    capture_output=True,
    text=True,
    check=False,
  )
  assert result.returncode == 0, (
    f"run `ruff format` on:\n{result.stdout[-4000:]}"
  )
