"""Per-frame nuisance (pose, lighting, noise) and the pixels each AU reaches.

A face is drawn on the canonical grid (the image at the neutral pose), then
resampled to its pose: pixel p shows canonical point (p - shift) / scale,
bilinearly interpolated. So a change on canonical rows a..b-1 reaches only
the pixel rows whose two source rows touch a..b-1, and likewise for columns.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from data_pipeline.sources.base import DISFA_PLUS_AUS, IMAGE_SIZE
from data_pipeline.synthetic.aus import TERMS

MAX_SHIFT = 4.0  # pixels, per axis
SCALE_RANGE = (0.95, 1.05)
HALF = IMAGE_SIZE / 2
# Canonical coordinate of each pixel centre (a row's y, a column's x).
GRID = np.arange(IMAGE_SIZE, dtype=np.float32) + 0.5 - HALF


@dataclasses.dataclass(frozen=True)
class Nuisance:
  """Per-frame pose, lighting and noise; the default changes nothing."""

  shift_x: float = 0.0
  shift_y: float = 0.0
  scale: float = 1.0
  brightness: float = 1.0
  gradient_x: float = 0.0  # relative brightness change, centre to edge
  gradient_y: float = 0.0
  noise: float = 0.0  # amplitude of smooth noise, in 0..255 units
  noise_seed: int = 0


def sample_nuisance(rng: np.random.Generator) -> Nuisance:
  """A random pose, lighting and noise for one frame."""
  u = rng.uniform
  return Nuisance(
    shift_x=u(-MAX_SHIFT, MAX_SHIFT),
    shift_y=u(-MAX_SHIFT, MAX_SHIFT),
    scale=u(*SCALE_RANGE),
    brightness=u(0.85, 1.12),
    gradient_x=u(-0.12, 0.12),
    gradient_y=u(-0.06, 0.06),
    noise=u(2, 6),
    noise_seed=int(rng.integers(2**31)),
  )


def box_slices(box) -> tuple[slice, slice]:
  """Canonical grid rows and columns whose centres lie in `box`."""
  x0, x1, y0, y1 = box

  def span(low, high):
    start = min(max(math.ceil(low + HALF - 0.5), 0), IMAGE_SIZE)
    return slice(
      start, max(min(math.floor(high + HALF - 0.5) + 1, IMAGE_SIZE), start)
    )

  return span(y0, y1), span(x0, x1)


def _sources(shift: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
  """Per output pixel along an axis: first source index, weight of next."""
  source = (GRID - shift) / scale + HALF - 0.5
  first = np.clip(np.floor(source), 0, IMAGE_SIZE - 2).astype(np.intp)
  return first, np.clip(source - first, 0, 1).astype(np.float32)


def resample(image: np.ndarray, nuisance: Nuisance) -> np.ndarray:
  """(C, H, W) canonical image placed at the nuisance's pose."""
  rows, row_weight = _sources(nuisance.shift_y, nuisance.scale)
  cols, col_weight = _sources(nuisance.shift_x, nuisance.scale)
  row_weight, col_weight = row_weight[:, None], col_weight[None, :]
  image = (
    np.take(image, rows, axis=1) * (1 - row_weight)
    + np.take(image, rows + 1, axis=1) * row_weight
  )
  return (
    np.take(image, cols, axis=2) * (1 - col_weight)
    + np.take(image, cols + 1, axis=2) * col_weight
  )


def _reached(span: slice, shift: float, scale: float) -> np.ndarray:
  first, _ = _sources(shift, scale)
  return (first + 1 >= span.start) & (first < span.stop)


def region_mask(au: int, nuisance: Nuisance = Nuisance()) -> np.ndarray:
  """(200, 200) bool: the pixels AU `au` can change at this pose."""
  mask = np.zeros((IMAGE_SIZE, IMAGE_SIZE), bool)
  for term in TERMS[au]:
    rows, cols = box_slices(term.box)
    mask |= np.outer(
      _reached(rows, nuisance.shift_y, nuisance.scale),
      _reached(cols, nuisance.shift_x, nuisance.scale),
    )
  return mask


def _fill(masks: list[np.ndarray]) -> np.ndarray:
  """From the first to the last index any of `masks` covers."""
  hits = np.flatnonzero(np.any(masks, axis=0))
  mask = np.zeros(IMAGE_SIZE, bool)
  if hits.size:
    mask[hits[0] : hits[-1] + 1] = True
  return mask


def _any_pose_region(au: int) -> np.ndarray:
  # A box reaches an interval of pixels that moves continuously and
  # monotonically with shift and scale: the extremes bound all poses.
  poses = [(t, s) for t in (-MAX_SHIFT, MAX_SHIFT) for s in SCALE_RANGE]
  mask = np.zeros((IMAGE_SIZE, IMAGE_SIZE), bool)
  for term in TERMS[au]:
    rows, cols = box_slices(term.box)
    mask |= np.outer(
      _fill([_reached(rows, t, s) for t, s in poses]),
      _fill([_reached(cols, t, s) for t, s in poses]),
    )
  return mask


# Per AU, the (200, 200) bool mask of the pixels it can change at any pose.
AU_REGIONS = {au: _any_pose_region(au) for au in DISFA_PLUS_AUS}
