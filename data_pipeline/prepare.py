"""Turns datasets into the folders the readers read fastest.

  python -m data_pipeline.prepare disfa_plus --src DISFA_PLUS_ROOT [--out DIR]
      extracts the FaceLandmarks .mat face crops to DIR/<SN>/<trial>/<NNN>.png;
      DIR defaults to DISFA_PLUS_ROOT/FaceImages, where training, evaluation
      and preview read them instead of the .mat files (the same pixels).
  python -m data_pipeline.prepare synthetic --out DIR [--seed N ...]
      generates the synthetic dataset (see data_pipeline.synthetic).

Extraction is safe to interrupt and rerun: each PNG is written under a
temporary name and renamed when complete, existing PNGs are kept, and a
trial whose PNGs are all written is marked done and not read again (delete
its folder to extract it anew).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from data_pipeline import errors, synthetic
from data_pipeline.sources import disfa_plus
from data_pipeline.sources.base import DataError, check_face

DONE_MARKER = ".done"


def write_png(image: np.ndarray, path: Path) -> None:
  """Writes `image` to `path` atomically: a reader never sees half a file."""
  partial = path.with_name(path.name + ".partial")
  Image.fromarray(image).save(partial, format="PNG")
  os.replace(partial, path)


def extract_disfa_plus(
  src: os.PathLike, out: os.PathLike, progress: bool = True
) -> int:
  """Extracts every DISFA+ face crop to PNG; returns how many it wrote."""
  out = Path(out)
  written = 0
  for subject, trial, path in tqdm(
    disfa_plus.face_files(Path(src)),
    desc="disfa_plus",
    unit="trial",
    disable=not progress,
  ):
    trial_dir = out / subject / trial
    if (trial_dir / DONE_MARKER).exists():
      continue
    trial_dir.mkdir(parents=True, exist_ok=True)
    for frame, image in disfa_plus.read_faces(path):
      target = trial_dir / f"{frame}.png"
      if not target.exists():
        write_png(check_face(image, f"{path} frame {frame}"), target)
        written += 1
    (trial_dir / DONE_MARKER).touch()
  return written


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
    prog="python -m data_pipeline.prepare",
    description=__doc__,
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  commands = parser.add_subparsers(dest="dataset", required=True)
  disfa = commands.add_parser("disfa_plus", help="extract DISFA+ face crops")
  disfa.add_argument("--src", required=True, help="the DISFA+ root")
  disfa.add_argument(
    "--out",
    default=None,
    help=f"where the PNGs go (default: SRC/{disfa_plus.EXTRACTED_DIR})",
  )
  synth = commands.add_parser("synthetic", help="generate synthetic data")
  synth.add_argument("--out", required=True, help="the dataset root to make")
  synth.add_argument("--seed", type=int, default=0)
  synth.add_argument("--train-subjects", type=int, default=12)
  synth.add_argument("--test-subjects", type=int, default=4)
  synth.add_argument(
    "--frames-per-subject", type=int, default=synthetic.FRAMES_PER_SUBJECT
  )
  args = parser.parse_args(argv)
  try:
    if args.dataset == "disfa_plus":
      out = args.out or os.path.join(args.src, disfa_plus.EXTRACTED_DIR)
      written = extract_disfa_plus(args.src, out)
      print(f"wrote {written} images under {out}")
    else:
      root = synthetic.generate(
        args.out,
        seed=args.seed,
        num_train_subjects=args.train_subjects,
        num_test_subjects=args.test_subjects,
        frames_per_subject=args.frames_per_subject,
      )
      print(synthetic.source(root).describe())
  except (DataError, ValueError, OSError) as error:  # bad input: one line
    print(f"error: {errors.first_line(error)}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
