"""Writes a training work directory's report.html: one self-contained page.

  python -m drml_jax.report workdirs/quick
  python -m drml_jax.report workdirs/quick --out quick.html

The page shows the run's test scores per AU beside the constant predictor's
(and the published ones), how its epoch was chosen, its per-AU thresholds,
its loss and F1 curves, its per-AU tables and its config. A run still
training, or interrupted, shows what it has logged so far. Training writes
the same page when it ends; this remakes it, for any work directory (for
--fold all, one of its fold<k> folders).
"""

from __future__ import annotations

import sys

from drml_jax import cli
from drml_jax.rendering import run_page


@cli.command
def main(argv: list[str]) -> int:
  parser = cli.parser("python -m drml_jax.report", __doc__)
  parser.add_argument("workdir", help="a drml_jax.train work directory")
  parser.add_argument(
    "--out", help="the HTML file (default: <workdir>/report.html)"
  )
  args = parser.parse_args(argv)
  print(f"wrote {run_page.write(args.workdir, args.out)}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
