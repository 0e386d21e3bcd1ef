"""Datasets in the list-file layout of public AU repositories.

Under `root`:

  img/<relative path>                              the face images
  list/<PREFIX>_<split>_img_path[_fold<k>].txt     one relative path a line
  list/<PREFIX>_<split>_label[_fold<k>].txt        the labels, same order
  list/<PREFIX>_<split>_intensity[_fold<k>].txt    optional: intensities

with PREFIX `BP4D`, `DISFA` or `DISFA_plus` (see `PREFIXES`) and split
`train` or `test`. Labels are space-separated {0, 1}, one column per AU of
the dataset (`BP4D_AUS`, `DISFA_AUS`, `DISFA_PLUS_AUS`); 0 is a negative.
BP4D's code 9 (unknown) becomes 0, "ignore". Examples keep the lists' order;
an example's subject is the first folder of its path. Images must be
200x200 unless `resize=True`, which resizes them (antialiased).

The intensity file, where there is one, has a line per line of the label
file, in the same order: whitespace-separated integers 0..5, one per AU in
the label columns' order, with 9 (BP4D's code for an uncoded intensity) for
unknown, which becomes UNKNOWN_INTENSITY (-1). Without one, examples carry
no intensity (`None`; the built records hold -1). Its occurrence labels stay
the label file's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from data_pipeline.labels import convert_rows, from_zero_one, intensity_values
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
UNKNOWN_INTENSITY_CODE = 9  # in every intensity file: BP4D's own code


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

  def list_path(
    self, split: str, kind: str, *, optional: bool = False
  ) -> Path | None:
    """list/<PREFIX>_<split>_<kind>[_fold<k>].txt, kind img_path, label or
    intensity; a missing file is a DataError, or None when `optional`."""
    if split not in self.splits:
      raise ValueError(
        f"unknown split {split!r}; {self.name} has {self.splits}"
      )
    stem = f"{PREFIXES[self.dataset]}_{split}_{kind}"
    fold = f"_fold{self.fold}" if self.fold is not None else ""
    path = self.root / "list" / f"{stem}{fold}.txt"
    if optional and not path.exists():
      return None
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

  def _rows(
    self, split: str
  ) -> tuple[list[tuple[int, str]], np.ndarray, np.ndarray | None]:
    """The image lines, the converted labels and the intensities (None
    without an intensity file), checked against each other."""
    paths_file = self.list_path(split, "img_path")
    labels_file = self.list_path(split, "label")
    paths, label_lines = _lines(paths_file), _lines(labels_file)
    if len(paths) != len(label_lines):
      raise DataError(
        f"{labels_file}: {len(label_lines)} label lines but"
        f" {paths_file.name} has {len(paths)} images; the two"
        " lists must match line for line"
      )
    labels = self._converted(
      labels_file,
      label_lines,
      from_zero_one,
      "numbers",
      unknown=UNKNOWN_CODES.get(self.dataset),
    )
    intensity_file = self.list_path(split, "intensity", optional=True)
    if intensity_file is None:
      return paths, labels, None
    intensity_lines = _lines(intensity_file)
    if len(intensity_lines) != len(label_lines):
      raise DataError(
        f"{intensity_file}: {len(intensity_lines)} intensity lines but"
        f" {labels_file.name} has {len(label_lines)} label lines; the two"
        " must match line for line (or remove the intensity file)"
      )
    intensities = self._converted(
      intensity_file,
      intensity_lines,
      intensity_values,
      "integers 0..5 or 9",
      unknown=UNKNOWN_INTENSITY_CODE,
    )
    return paths, labels, intensities

  def _converted(
    self, path: Path, lines: list[tuple[int, str]], convert, what: str, **kwargs
  ) -> np.ndarray:
    """`convert` (a data_pipeline.labels function, given `kwargs`) of a label
    or intensity file's lines, a bad line or value named with its number."""
    return convert_rows(
      convert,
      self._numbers(path, lines, what),
      [number for number, _ in lines],
      path,
      **kwargs,
    )

  def _numbers(
    self, path: Path, lines: list[tuple[int, str]], what: str
  ) -> np.ndarray:
    """(lines, C) floats of a label or intensity file; a line without C
    numbers is a DataError naming it."""
    values = []
    for number, line in lines:
      fields = line.split()
      try:
        if len(fields) != len(self.aus):
          raise ValueError
        values.append([float(field) for field in fields])
      except ValueError:
        raise DataError(
          f"{path}:{number}: expected {len(self.aus)} {what} (AUs"
          f" {' '.join(map(str, self.aus))}), got {line!r}; check the"
          " dataset name"
        ) from None
    return np.array(values).reshape(-1, len(self.aus))

  def num_examples(self, split: str) -> int:
    """Lines of the split's image list."""
    return len(_lines(self.list_path(split, "img_path")))

  def examples(self, split: str) -> Iterator[Example]:
    """The split's examples in the lists' order."""
    bad = BadInputs(f"{self.name} {split}", self.skip_bad)
    paths_file = self.list_path(split, "img_path")
    try:
      paths, labels, intensities = self._rows(split)
      if intensities is None:
        intensities = [None] * len(paths)
      for (number, relative), label, intensity in zip(
        paths, labels, intensities
      ):
        try:
          image = self._image(self.root / "img" / relative)
        except DataError as error:
          bad(DataError(f"{paths_file}:{number}: {error}"))
          continue
        yield Example(
          image=image,
          labels=label,
          subject=Path(relative).parts[0],
          frame_id=relative,
          intensity=intensity,
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
