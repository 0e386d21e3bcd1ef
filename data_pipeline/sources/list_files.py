"""Datasets in the list-file layout of public AU repositories.

Under `root`:

  img/<relative path>                              the face images
  list/<PREFIX>_<split>_img_path[_fold<k>].txt     one relative path a line
  list/<PREFIX>_<split>_label[_fold<k>].txt        the labels, same order

with PREFIX `BP4D`, `DISFA` or `DISFA_plus` (see `PREFIXES`) and split
`train` or `test`. Labels are space-separated {0, 1}, one column per AU of
the dataset (`BP4D_AUS`, `DISFA_AUS`, `DISFA_PLUS_AUS`); 0 is a negative.
BP4D's code 9 (unknown) becomes 0, "ignore". Examples keep the lists' order;
an example's subject is the first folder of its path. Images must be
200x200 unless `resize=True`, which resizes them (antialiased).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from data_pipeline.labels import convert_rows, from_zero_one
from data_pipeline.sources.base import (
  BP4D_AUS,
  DISFA_AUS,
  DISFA_PLUS_AUS,
  IMAGE_SIZE,
  BadInputs,
  DataError,
  Example,
  check_face,
  read_rgb,
)

PREFIXES = {"bp4d": "BP4D", "disfa": "DISFA", "disfa_plus": "DISFA_plus"}
DATASET_AUS = {
  "bp4d": BP4D_AUS,
  "disfa": DISFA_AUS,
  "disfa_plus": DISFA_PLUS_AUS,
}
UNKNOWN_CODES = {"bp4d": 9}


def _lines(path: Path) -> list[tuple[int, str]]:
  """(line number, text) of each non-blank line."""
  try:
    text = path.read_text(errors="replace")  # bad bytes fail as a bad line
  except FileNotFoundError:
    raise DataError(
      f"{path}: list file missing; check the dataset name,"
      " the split and the fold"
    ) from None
  return [
    (number, line.strip())
    for number, line in enumerate(text.splitlines(), 1)
    if line.strip()
  ]


class ListFiles:
  """One dataset (and fold) of the list-file layout."""

  splits = ("train", "test")

  def __init__(
    self,
    root: os.PathLike,
    dataset: str,
    *,
    fold: int | None = None,
    skip_bad: bool = False,
    resize: bool = False,
  ):
    if dataset not in PREFIXES:
      raise ValueError(
        f"unknown dataset {dataset!r}; one of {sorted(PREFIXES)}"
      )
    self.root = Path(root)
    self.dataset = dataset
    self.fold = fold
    self.skip_bad = skip_bad
    self.resize = resize
    self.name = f"{dataset}_list" + (f"_fold{fold}" if fold is not None else "")
    self.aus = DATASET_AUS[dataset]
    if not (self.root / "list").is_dir() or not (self.root / "img").is_dir():
      raise DataError(
        f"{self.root}: no list/ and img/ folders here; pass the"
        " folder that holds both"
      )

  def list_path(self, split: str, kind: str) -> Path:
    """list/<PREFIX>_<split>_<kind>[_fold<k>].txt, kind img_path or label."""
    if split not in self.splits:
      raise ValueError(
        f"unknown split {split!r}; {self.name} has {self.splits}"
      )
    stem = f"{PREFIXES[self.dataset]}_{split}_{kind}"
    fold = f"_fold{self.fold}" if self.fold is not None else ""
    path = self.root / "list" / f"{stem}{fold}.txt"
    if not path.is_file():
      folds = sorted(
        p.stem.rsplit("_fold", 1)[1]
        for p in (self.root / "list").glob(f"{stem}_fold*.txt")
      )
      hint = f"; folds found: {', '.join(folds)}" if folds else ""
      raise DataError(
        f"{path}: list file missing; check the dataset name and the fold{hint}"
      )
    return path

  def _rows(self, split: str) -> tuple[list[tuple[int, str]], np.ndarray]:
    """The image lines and the converted labels, checked against each other."""
    paths_file = self.list_path(split, "img_path")
    labels_file = self.list_path(split, "label")
    paths, label_lines = _lines(paths_file), _lines(labels_file)
    if len(paths) != len(label_lines):
      raise DataError(
        f"{labels_file}: {len(label_lines)} label lines but"
        f" {paths_file.name} has {len(paths)} images; the two"
        " lists must match line for line"
      )
    values = []
    for number, line in label_lines:
      fields = line.split()
      try:
        if len(fields) != len(self.aus):
          raise ValueError
        values.append([float(field) for field in fields])
      except ValueError:
        raise DataError(
          f"{labels_file}:{number}: expected {len(self.aus)} numbers (AUs"
          f" {' '.join(map(str, self.aus))}), got {line!r}; check the"
          " dataset name"
        ) from None
    labels = convert_rows(
      from_zero_one,
      np.array(values).reshape(-1, len(self.aus)),
      [number for number, _ in label_lines],
      labels_file,
      unknown=UNKNOWN_CODES.get(self.dataset),
    )
    return paths, labels

  def num_examples(self, split: str) -> int:
    """Lines of the split's image list."""
    return len(_lines(self.list_path(split, "img_path")))

  def examples(self, split: str) -> Iterator[Example]:
    """The split's examples in the lists' order."""
    bad = BadInputs(f"{self.name} {split}", self.skip_bad)
    paths_file = self.list_path(split, "img_path")
    try:
      for (number, relative), labels in zip(*self._rows(split)):
        try:
          image = self._image(self.root / "img" / relative)
        except DataError as error:
          bad(DataError(f"{paths_file}:{number}: {error}"))
          continue
        yield Example(
          image=image,
          labels=labels,
          subject=Path(relative).parts[0],
          frame_id=relative,
        )
    finally:
      bad.report()

  def _image(self, path: Path) -> np.ndarray:
    image = read_rgb(path)
    if self.resize and image.shape[:2] != (IMAGE_SIZE, IMAGE_SIZE):
      image = np.asarray(
        Image.fromarray(image).resize(
          (IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS
        )
      )
    return check_face(image, str(path))
