"""CK+ (extended Cohn-Kanade) as a test set for models trained on DISFA+.

Layout under `root`:

  FACS/S###/###/S###_###_########_facs.txt   "AU intensity" float lines
  cohn-kanade-images/S###/###/S###_###_########.png
  Landmarks/S###/###/S###_###_########_landmarks.txt   68 lines "x y"

FACS codes only the last (peak) frame of a sequence; that frame, named by its
FACS file, is the one example of each coded sequence. An AU is +1 when the
FACS file codes it (at any intensity) and -1 otherwise, for the 12 DISFA+
AUs. The face is the square around the 68 landmarks, widened by `margin` of
its side on every side, resized to 200x200 (antialiased); parts beyond the
frame are black. Grayscale frames become RGB.

Examples carry no intensity (`intensity=None`: the built records hold
UNKNOWN_INTENSITY, -1, for every AU). A FACS file lists only the AUs coded
at the peak, each followed by an intensity code written as a float: 1..5
for the FACS grades A..E, and 0 where the coders scored no intensity for an
AU they did code as present. That 0 is not the 0 of DISFA+'s or BP4D's 0..5
scale (absent), so the codes are not that scale, and translating them would
invent values: they are not used, and the labels say only present (+1) or
absent (-1).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from data_pipeline.labels import from_zero_one
from data_pipeline.sources.base import (
  DISFA_PLUS_AUS,
  IMAGE_SIZE,
  BadInputs,
  DataError,
  Example,
  read_rgb,
)

FACS_SUFFIX = "_facs.txt"
LANDMARKS_SUFFIX = "_landmarks.txt"
NUM_LANDMARKS = 68


def _float_lines(path: Path, what: str) -> list[tuple[int, list[float]]]:
  """(line number, two floats) for each non-blank line of a text file."""
  try:
    text = path.read_text(errors="replace")  # bad bytes fail as a bad line
  except FileNotFoundError:
    raise DataError(
      f"{path}: {what} file missing; restore it from the CK+ archive"
    ) from None
  rows = []
  for number, line in enumerate(text.splitlines(), 1):
    if not line.strip():
      continue
    try:
      values = [float(field) for field in line.split()]
    except ValueError:
      values = []
    if len(values) != 2:
      raise DataError(
        f"{path}:{number}: expected two numbers, got"
        f" {line.strip()!r}; restore the file from the CK+"
        " archive"
      )
    rows.append((number, values))
  return rows


def read_facs(path: Path) -> set[int]:
  """The AU numbers a FACS file codes."""
  coded = set()
  for number, (au, _) in _float_lines(path, "FACS"):
    if not au.is_integer() or au < 1:
      raise DataError(
        f"{path}:{number}: {au!r} is not an AU number; restore"
        " the file from the CK+ archive"
      )
    coded.add(int(au))
  return coded


def read_landmarks(path: Path) -> np.ndarray:
  """(68, 2) landmark x, y in pixels."""
  rows = _float_lines(path, "landmarks")
  if len(rows) != NUM_LANDMARKS:
    raise DataError(
      f"{path}: {len(rows)} landmark lines, expected"
      f" {NUM_LANDMARKS}; restore the file from the CK+ archive"
    )
  return np.array([values for _, values in rows])


def crop_face(
  image: np.ndarray, landmarks: np.ndarray, margin: float
) -> np.ndarray:
  """The square around `landmarks`, `margin` wider per side, at 200x200."""
  low, high = landmarks.min(axis=0), landmarks.max(axis=0)
  side = max(high - low) * (1 + 2 * margin)
  left, top = np.round((low + high) / 2 - side / 2).astype(int)
  size = max(int(round(side)), 1)
  face = Image.fromarray(image).crop((left, top, left + size, top + size))
  face = face.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS)
  return np.asarray(face)


class CKPlus:
  """CK+ peak frames with the 12 DISFA+ AUs (see the module docstring)."""

  name = "ck_plus"
  aus = DISFA_PLUS_AUS
  splits = ("test",)

  def __init__(
    self, root: os.PathLike, *, margin: float = 0.2, skip_bad: bool = False
  ):
    self.root = Path(root)
    self.margin = margin
    self.skip_bad = skip_bad
    if not self.root.is_dir():
      raise DataError(
        f"{self.root}: CK+ root not found; pass the folder that"
        " holds FACS/, cohn-kanade-images/ and Landmarks/"
      )
    if not (self.root / "FACS").is_dir():
      raise DataError(
        f"{self.root / 'FACS'}: folder not found; pass the CK+"
        " root, the folder that holds it"
      )

  def facs_files(self, split: str = "test") -> list[Path]:
    """Every FACS/S###/###/*_facs.txt, sorted by subject and sequence.

    Every image sequence is FACS coded: a sequence folder of
    cohn-kanade-images/ without its FACS file is a DataError naming it.
    """
    if split not in self.splits:
      raise ValueError(
        f"unknown split {split!r}; {self.name} has {self.splits}"
      )
    found = sorted((self.root / "FACS").glob(f"*/*/*{FACS_SUFFIX}"))
    coded = {(f.parent.parent.name, f.parent.name) for f in found}
    for sequence in sorted((self.root / "cohn-kanade-images").glob("*/*")):
      if (
        sequence.is_dir() and (sequence.parent.name, sequence.name) not in coded
      ):
        raise DataError(
          f"{self.root / 'FACS' / sequence.parent.name / sequence.name}: no"
          f" *{FACS_SUFFIX} for the sequence {sequence}; restore it from the"
          " CK+ archive"
        )
    if not found:
      raise DataError(
        f"{self.root / 'FACS'}: no *{FACS_SUFFIX} file in it;"
        " pass the CK+ root with its FACS/ folder restored"
      )
    return found

  def num_examples(self, split: str = "test") -> int:
    """One example per FACS file."""
    return len(self.facs_files(split))

  def examples(self, split: str = "test") -> Iterator[Example]:
    """The peak frame of each coded sequence, by subject and sequence."""
    bad = BadInputs(f"{self.name} {split}", self.skip_bad)
    try:
      for facs in self.facs_files(split):
        try:
          yield self._example(facs)
        except DataError as error:
          bad(error)
    finally:
      bad.report()

  def _example(self, facs: Path) -> Example:
    subject, sequence = facs.parent.parent.name, facs.parent.name
    stem = facs.name[: -len(FACS_SUFFIX)]
    coded = read_facs(facs)
    labels = from_zero_one(
      np.isin(self.aus, sorted(coded)).astype(np.int8), source=str(facs)
    )
    landmarks = read_landmarks(
      self.root / "Landmarks" / subject / sequence / f"{stem}{LANDMARKS_SUFFIX}"
    )
    image = read_rgb(
      self.root / "cohn-kanade-images" / subject / sequence / f"{stem}.png"
    )
    return Example(
      image=crop_face(image, landmarks, self.margin),
      labels=labels,
      subject=subject,
      frame_id=f"{subject}/{sequence}/{stem}",
      intensity=None,  # not DISFA+'s scale: see the module docstring
    )
