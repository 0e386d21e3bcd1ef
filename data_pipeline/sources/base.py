"""The contract every dataset source honours.

A source reads one dataset from disk and yields `Example`s for a split in a
sorted, deterministic order. Labels are always in the internal convention:
int8 in {-1, 0, +1}, where 0 means "ignore this AU for this image".
"""

from __future__ import annotations

import dataclasses
from typing import Iterator, Protocol

import numpy as np

IMAGE_SIZE = 200  # Every source yields 200x200x3 uint8 RGB faces.

DISFA_PLUS_AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)
BP4D_AUS = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)
DISFA_AUS = (1, 2, 4, 6, 9, 12, 25, 26)


class DataError(ValueError):
  """A bad input, with a one-line message naming the file and what to do."""


@dataclasses.dataclass(frozen=True)
class Example:
  image: np.ndarray  # (200, 200, 3) uint8 RGB
  labels: np.ndarray  # (C,) int8 in {-1, 0, +1}
  subject: str  # e.g. "SN001"
  frame_id: str  # unique within the dataset, e.g. "SN001/A1_AU1_TrailNo_1/000"


class Source(Protocol):
  """A dataset on disk."""

  name: str
  aus: tuple[int, ...]  # AU numbers, in label order
  splits: tuple[str, ...]

  def examples(self, split: str) -> Iterator[Example]:
    """Yields the split's examples in a sorted, deterministic order."""
    ...
