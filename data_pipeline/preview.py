"""Writes a grid of a dataset's faces with their active AUs, to check by eye.

  python -m data_pipeline.preview synthetic
  python -m data_pipeline.preview disfa_plus --manual-dir DISFA_PLUS_ROOT \
      --split test --n 25 --out disfa_plus_test.png
  python -m data_pipeline.preview bp4d --fold 1 --manual-dir BP4D_LISTS_ROOT

Datasets go by the names training and evaluation use. Builds the dataset
first if needed (see data_pipeline.registry.build) and shows the first
examples of the split as stored, before any preprocessing.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np
from matplotlib.figure import Figure

from data_pipeline import registry
from data_pipeline.builders import check_split
from data_pipeline.tf_cpu import tfds


def caption(frame_id: str, labels: np.ndarray, aus) -> str:
  """The frame, its active AUs, and the AUs whose label is unknown."""
  active = [f"{au}" for au, label in zip(aus, labels) if label > 0]
  unknown = [f"{au}" for au, label in zip(aus, labels) if label == 0]
  text = f"{frame_id}\nAU " + (" ".join(active) if active else "none")
  return text + (f" (? {' '.join(unknown)})" if unknown else "")


def write_grid(examples: list[dict], aus, out: str) -> None:
  """Saves the faces of `examples` (numpy records) as a PNG grid."""
  columns = math.ceil(math.sqrt(len(examples)))
  rows = math.ceil(len(examples) / columns)
  figure = Figure(figsize=(2.2 * columns, 2.6 * rows))
  for i, example in enumerate(examples):
    axes = figure.add_subplot(rows, columns, i + 1)
    axes.imshow(example["image"])
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_xlabel(
      caption(example["frame_id"].decode(), example["labels"], aus), fontsize=7
    )
  figure.tight_layout()
  figure.savefig(out, dpi=100)


def _positive(text: str) -> int:
  if not text.isdigit() or int(text) == 0:
    raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
  return int(text)


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(
    prog="python -m data_pipeline.preview",
    description=__doc__,
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  folded = [
    name for name, dataset in registry.DATASETS.items() if dataset.folds
  ]
  parser.add_argument("dataset", help=", ".join(registry.names()))
  parser.add_argument(
    "--fold", type=int, default=0, help="the fold of " + " or ".join(folded)
  )
  parser.add_argument(
    "--config", default="", help="the builder config, if not the default"
  )
  parser.add_argument("--split", default="train")
  parser.add_argument("--n", type=_positive, default=16, help="faces to show")
  parser.add_argument("--out", default="preview.png")
  parser.add_argument(
    "--data-dir",
    default="",
    help="default: $DRML_DATA_DIR or ~/.cache/drml/tensorflow_datasets",
  )
  parser.add_argument(
    "--manual-dir",
    default="",
    help="the dataset as"
    " distributed, for the first build of a licensed"
    " dataset",
  )
  args = parser.parse_args(argv)
  out_dir = os.path.dirname(os.path.abspath(args.out))
  if not os.path.isdir(out_dir):
    sys.exit(
      f"error: --out {args.out}: folder {out_dir} does not exist; create it"
      " or choose another path"
    )
  try:
    builder = registry.build(
      args.dataset,
      fold=args.fold,
      dataset_config=args.config,
      data_dir=args.data_dir,
      manual_dir=args.manual_dir,
    )
    check_split(builder, args.split)
  except ValueError as error:  # DataError included: bad input, one line
    sys.exit(f"error: {error}")
  examples = list(tfds.as_numpy(builder.as_dataset(args.split).take(args.n)))
  write_grid(examples, registry.aus(builder), args.out)
  print(
    f"wrote {len(examples)} {args.dataset} {args.split} faces to {args.out}"
  )


if __name__ == "__main__":
  main()
