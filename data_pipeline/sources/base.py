"""The contract every dataset source honours.

A source reads one dataset from disk and yields `Example`s for a split in a
sorted, deterministic order. Labels are always in the internal convention:
int8 in {-1, 0, +1}, where 0 means "ignore this AU for this image".
Intensities, where the dataset codes them, are int8 FACS intensities 0..5 in
the labels' AU order, `UNKNOWN_INTENSITY` (-1) where one is unknown; a source
whose dataset codes none gives `intensity=None`, which the builders write as
all -1.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Iterator, Protocol

import numpy as np
from PIL import Image

from data_pipeline import errors

IMAGE_SIZE = 200  # Every source yields 200x200x3 uint8 RGB faces.

DISFA_PLUS_AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)
BP4D_AUS = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)
DISFA_AUS = (1, 2, 4, 6, 9, 12, 25, 26)

UNKNOWN_INTENSITY = -1  # An intensity not coded: masked, never a guess.


class DataError(ValueError):
  """A bad input, with a one-line message naming the file and what to do."""


@dataclasses.dataclass(frozen=True)
class Example:
  image: np.ndarray  # (200, 200, 3) uint8 RGB
  labels: np.ndarray  # (C,) int8 in {-1, 0, +1}
  subject: str  # e.g. "SN001"
  frame_id: str  # unique within the dataset, e.g. "SN001/A1_AU1_TrailNo_1/000"
  # (C,) int8 in 0..5 or UNKNOWN_INTENSITY, the labels' AU order; None: the
  # dataset codes no intensity.
  intensity: np.ndarray | None = None


class Source(Protocol):
  """A dataset on disk."""

  name: str
  aus: tuple[int, ...]  # AU numbers, in label order
  splits: tuple[str, ...]

  def examples(self, split: str) -> Iterator[Example]:
    """Yields the split's examples in a sorted, deterministic order."""
    ...


def read_rgb(path: os.PathLike) -> np.ndarray:
  """Decodes an image file to (H, W, 3) uint8 RGB, or raises `DataError`."""
  try:
    with Image.open(path) as image:
      return np.asarray(image.convert("RGB"))
  except FileNotFoundError:
    raise DataError(
      f"{path}: image missing; restore the file or rerun the"
      " step that extracts it"
    ) from None
  except (OSError, ValueError, Image.DecompressionBombError) as error:
    reason = errors.first_line(error)
    raise DataError(
      f"{path}: cannot decode the image ({reason}); replace the"
      " file or extract it again"
    ) from None


def check_face(image: np.ndarray, where: str) -> np.ndarray:
  """`image` itself if it is a 200x200x3 uint8 face, else `DataError`."""
  if image.shape != (IMAGE_SIZE, IMAGE_SIZE, 3) or image.dtype != np.uint8:
    raise DataError(
      f"{where}: image is {'x'.join(map(str, image.shape))} {image.dtype},"
      f" expected a {IMAGE_SIZE}x{IMAGE_SIZE}x3 uint8 face crop; use the"
      " dataset's aligned crops"
    )
  return image


class BadInputs:
  """Raises bad inputs, or with `skip` counts them and warns once at the end."""

  def __init__(self, reader: str, skip: bool):
    self.reader = reader
    self.skip = skip
    self.count = 0
    self.first = ""

  def __call__(self, error: DataError) -> None:
    """Re-raises `error` unless skipping, in which case it is counted."""
    if not self.skip:
      raise error
    self.count += 1
    self.first = self.first or str(error)

  def report(self) -> None:
    """One warning summarising what was skipped, if anything was."""
    if self.count:
      warnings.warn(
        f"{self.reader}: skipped {self.count} bad input(s);"
        f" the first: {self.first}",
        stacklevel=2,
      )
