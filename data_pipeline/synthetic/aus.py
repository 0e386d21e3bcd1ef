"""What each AU does to a synthetic face, and where.

Coordinates are canonical: pixels at scale 1, origin at the image centre,
y down. An AU acts through terms, each zero outside a fixed box: a warp
(the face is sampled at `q + d(q)`, so content moves by about `-d`) or a
shade (a relative change of brightness). A term's `field(x, y, face)` is its
full-intensity effect, multiplied by a window that is 1 in the box's middle
and falls smoothly to 0 at its edges. Warps stay invertible (the sampling
map's slope stays >= 0) for any one AU.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from data_pipeline.sources.base import DISFA_PLUS_AUS

MAX_INTENSITY = 5


def falloff(v, low: float, high: float, flat: float):
  """1 on the middle `flat` part of [low, high], smoothly 0 at its ends."""
  centre, half = (low + high) / 2, (high - low) / 2
  t = np.clip((np.abs(v - centre) / half - flat) / (1 - flat), 0, 1)
  return 1 - t * t * (3 - 2 * t)


def _step(t):
  """0 below 0, smoothly 1 above 1 (steepest at 0.5, slope 1.5)."""
  t = np.clip(t, 0, 1)
  return t * t * (3 - 2 * t)


def _ridges(v, period: float, sharpness: float = 4.0):
  """Thin periodic ridges in 0..1 along `v`."""
  return ((1 + np.cos(2 * np.pi * v / period)) / 2) ** sharpness


def _stroke(x, y, start, end, width: float):
  """A soft line segment from `start` to `end`, 1 on it."""
  (x0, y0), (x1, y1) = start, end
  dx, dy = x1 - x0, y1 - y0
  t = np.clip(((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy), 0, 1)
  return np.exp(
    -((x - x0 - t * dx) ** 2 + (y - y0 - t * dy) ** 2) / (width * width)
  )


@dataclasses.dataclass(frozen=True)
class Term:
  """One effect of an AU, zero outside `box` (canonical x0, x1, y0, y1)."""

  kind: str  # "warp": field gives (dx, dy); "shade": a relative change
  box: tuple[float, float, float, float]
  field: Callable  # (x, y, face) -> effect at full intensity
  flat: tuple[float, float] = (0.4, 0.4)  # the window's plateau in x, y

  def effect(self, x, y, face) -> np.ndarray:
    """The windowed full-intensity effect: (2, ...) for a warp, else (...)."""
    x0, x1, y0, y1 = self.box
    window = falloff(x, x0, x1, self.flat[0]) * falloff(y, y0, y1, self.flat[1])
    field = self.field(x, y, face)
    if self.kind == "warp":
      return np.stack(np.broadcast_arrays(window * field[0], window * field[1]))
    return window * field


def _both_sides(make: Callable[[int], list[Term]]) -> list[Term]:
  return make(-1) + make(1)


def _side(box, side: int):
  """`box` as given for the right of the image (side 1), or mirrored."""
  x0, x1, y0, y1 = box
  return (x0, x1, y0, y1) if side > 0 else (-x1, -x0, y0, y1)


def _au1():  # inner brow raiser: inner brows up, central forehead wrinkles
  return [
    Term(
      "warp", (-36, 36, -66, -24), lambda x, y, f: (0, 9.0), flat=(0.0, 0.3)
    ),
    Term(
      "shade",
      (-30, 30, -66, -45),
      lambda x, y, f: -0.3 * _ridges(y + 0.006 * x * x, 6.5),
    ),
  ]


def _au2():  # outer brow raiser: outer brows up, lateral forehead wrinkles
  return _both_sides(
    lambda s: [
      Term(
        "warp",
        _side((20, 64, -66, -24), s),
        lambda x, y, f: (0, 9.0),
        flat=(0.2, 0.3),
      ),
      Term(
        "shade",
        _side((22, 56, -66, -46), s),
        lambda x, y, f: -0.22 * _ridges(y - 0.1 * s * x, 6.5),
      ),
    ]
  )


def _au4():  # brow lowerer: inner brows down and together, vertical furrows
  return [
    Term(
      "warp",
      (-34, 34, -58, -22),
      lambda x, y, f: (4 * np.tanh(x / 8), -8.0),
      flat=(0.0, 0.3),
    ),
    Term(
      "shade",
      (-12, 12, -54, -22),
      lambda x, y, f: -0.5 * np.exp(-(((np.abs(x) - 3.5) / 1.3) ** 2)),
    ),
  ]


def _au5():  # upper lid raiser: upper lids up, sclera shows above the iris
  return _both_sides(
    lambda s: [
      Term(
        "warp",
        _side((10, 48, -40, -12), s),
        lambda x, y, f: (0, 8.0),
        flat=(0.4, 0.0),
      ),
    ]
  )


def _crows_feet(x, y, f, s):
  cx, cy = s * (f.eye_x + f.eye_w + 2), f.eye_y
  return -0.4 * sum(
    _stroke(
      x, y, (cx + s * 3, cy + 3 * slope), (cx + s * 13, cy + 13 * slope), 0.9
    )
    for slope in (-0.5, 0.0, 0.5)
  )


def _au6():  # cheek raiser: cheeks and lower lids up, crow's feet
  return _both_sides(
    lambda s: [
      Term(
        "warp",
        _side((12, 62, -24, 20), s),
        lambda x, y, f: (0, 7.0),
        flat=(0.3, 0.0),
      ),
      Term(
        "shade",
        _side((14, 56, -16, 20), s),
        lambda x, y, f: (
          0.16 * np.exp(-(((x - s * 34) / 11) ** 2) - ((y - 6) / 7) ** 2)
          - 0.3
          * _stroke(
            x,
            y,
            (s * (f.eye_x - 8), f.eye_y + 12),
            (s * (f.eye_x + 10), f.eye_y + 9),
            1.2,
          )
        ),
      ),
      Term(
        "shade",
        _side((34, 64, -32, -4), s),
        lambda x, y, f: _crows_feet(x, y, f, s),
      ),
    ]
  )


def _au9():  # nose wrinkler: wrinkles across the nose root, nostrils up
  return [
    Term(
      "shade",
      (-17, 17, -24, 6),
      lambda x, y, f: -0.5 * _ridges(y + 0.02 * x * x, 4.5, 3),
    ),
    Term("warp", (-22, 22, 6, 34), lambda x, y, f: (0, 6.0), flat=(0.3, 0.0)),
  ]


def _au12():  # lip corner puller: corners up and out, nasolabial folds
  return _both_sides(
    lambda s: [
      Term(
        "warp",
        _side((4, 48, 32, 68), s),
        lambda x, y, f: (-4.0 * s, 7.0),
        flat=(0.2, 0.3),
      ),
      Term(
        "shade",
        _side((6, 44, 20, 64), s),
        lambda x, y, f: (
          -0.4
          * _stroke(
            x,
            y,
            (s * (f.nose_w + 5), f.nose_y),
            (s * (f.mouth_w + 9), f.mouth_y + 8),
            1.8,
          )
        ),
      ),
    ]
  )


def _au15():  # lip corner depressor: corners down, a shadow below them
  return _both_sides(
    lambda s: [
      Term(
        "warp",
        _side((6, 46, 38, 72), s),
        lambda x, y, f: (0, -7.0),
        flat=(0.2, 0.3),
      ),
      Term(
        "shade",
        _side((16, 42, 50, 74), s),
        lambda x, y, f: (
          -0.2
          * np.exp(
            -(((x - s * (f.mouth_w + 3)) / 5) ** 2)
            - ((y - f.mouth_y - 11) / 6) ** 2
          )
        ),
      ),
    ]
  )


def _au17():  # chin raiser: chin boss up, dimpled chin, deep crease
  return [
    Term("warp", (-32, 32, 50, 94), lambda x, y, f: (0, 7.0), flat=(0.3, 0.0)),
    Term(
      "shade",
      (-26, 26, 52, 96),
      lambda x, y, f: (
        -0.35
        * (np.cos(2 * np.pi * x / 5.5) * np.cos(2 * np.pi * y / 5.5) > 0.3)
        * (y > f.mouth_y + f.lower_lip + 12)
        - 0.45 * np.exp(-(((y - f.mouth_y - f.lower_lip - 5) / 1.6) ** 2))
      ),
      flat=(0.5, 0.6),
    ),
  ]


def _au20():  # lip stretcher: mouth pulled sideways and flattened
  return _both_sides(
    lambda s: [
      Term(
        "warp",
        _side((2, 52, 36, 64), s),
        lambda x, y, f: (-8.0 * s, 0.25 * (y - f.mouth_y) - 2),
        flat=(0.3, 0.3),
      ),
      Term(
        "shade",
        _side((20, 46, 38, 62), s),
        lambda x, y, f: (
          -0.45 * np.exp(-(((x - s * (f.mouth_w + 7)) / 1.5) ** 2))
        ),
      ),
    ]
  )


def _au25():  # lips part: the lips separate about the mouth line
  return [
    Term(
      "warp",
      (-34, 34, 36, 64),
      lambda x, y, f: (0, -0.7 * (y - f.mouth_y)),
      flat=(0.3, 0.5),
    ),
  ]


def _au26():  # jaw drop: the jaw, lower lip and chin move down, mouth opens
  drop = 11.0
  return [
    Term(
      "warp",
      (-56, 56, 26, 114),
      lambda x, y, f: (
        0,
        -drop * _step((y - f.mouth_y - 0.5) / (1.5 * drop) + 0.5),
      ),
      flat=(0.5, 0.6),
    ),
  ]


# Each AU's terms, keyed by AU number.
TERMS = {
  1: _au1(),
  2: _au2(),
  4: _au4(),
  5: _au5(),
  6: _au6(),
  9: _au9(),
  12: _au12(),
  15: _au15(),
  17: _au17(),
  20: _au20(),
  25: _au25(),
  26: _au26(),
}
# Strength is (intensity / 5) ** gamma: < 1 makes low intensities visible.
_GAMMA = {au: 0.7 for au in DISFA_PLUS_AUS} | {5: 0.6, 17: 0.6, 25: 0.5}


def strength(au: int, intensity: float) -> float:
  """How much of AU `au`'s full effect an intensity in 0..5 shows."""
  return (intensity / MAX_INTENSITY) ** _GAMMA[au]
