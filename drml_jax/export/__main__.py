"""Exports a trained DRML for other runtimes: ONNX, or a StableHLO archive.

  python -m drml_jax.export --workdir workdirs/quick --format onnx --out drml.onnx
  python -m drml_jax.export --checkpoint model.pth --format stablehlo --out drml.zip

The model is read as `python -m drml_jax.predict` reads it (a work
directory's best checkpoint, an orbax checkpoint directory or a PyTorch
DRML .pth; --aus names a bare checkpoint's AUs). The file takes the
network's own input, (N, S, S, 3) float32 NHWC after evaluation's
preprocessing (S = 170 for the paper's model), and gives (N, C) logits,
then (N, C) intensities in [0, 5] for a model with the intensity head
(--intensity refuses a model without it); it carries the AUs, the per-AU thresholds and the preprocessing (with the
training split's mean image for bgr_mean) as metadata. docs/predict.md
(Export) lists its keys. `python -m drml_jax.predict --onnx FILE` predicts
with an ONNX file.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from drml_jax import cli
from drml_jax.export import files


def parse_args(argv=None) -> argparse.Namespace:
  parser = cli.parser("python -m drml_jax.export", __doc__)
  cli.add_model_flags(parser)
  parser.add_argument(
    "--format",
    required=True,
    choices=sorted(files.FORMATS),
    help="onnx: one .onnx file; stablehlo: a zip of jax.export's program, "
    "its weights and the metadata",
  )
  parser.add_argument(
    "--out", required=True, help="the file to write (.onnx, or a .zip)"
  )
  parser.add_argument(
    "--overwrite", action="store_true", help="replace an existing --out"
  )
  return parser.parse_args(argv)


def check_folder(path: str) -> None:
  """ValueError in one line unless `path`'s folder exists and is writable."""
  folder = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(folder):
    raise ValueError(
      f"{folder} is not a folder: create it, or pass another --out"
    )
  if not os.access(folder, os.W_OK | os.X_OK):
    raise ValueError(
      f"{folder} is not writable: pass an --out in a folder you can write"
    )


def run(args: argparse.Namespace) -> int:
  """Reads the model, writes the file; returns the exit status."""
  cli.check_free(args.out, args.overwrite)
  check_folder(args.out)
  start = time.perf_counter()
  inputs = files.write(
    args.format,
    args.out,
    workdir=args.workdir,
    checkpoint=args.checkpoint,
    aus=args.aus,
    intensity=args.intensity,
  )
  print(
    f"wrote {args.out}: {args.format}, {inputs.input_size}x"
    f"{inputs.input_size} inputs, AUs {' '.join(map(str, inputs.aus))}, "
    f"{os.path.getsize(args.out) / 1e6:.1f} MB in "
    f"{time.perf_counter() - start:.1f} s"
  )
  return 0


@cli.command
def main(argv: list[str]) -> int:
  return run(parse_args(argv))


if __name__ == "__main__":
  sys.exit(main())
