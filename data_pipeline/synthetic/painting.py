"""Painting a synthetic subject's face parts onto its canonical layers.

Soft-edged drawing primitives, the `Canvas` they paint on, and one painter
per part: head (skin, neck, hair), brows, eyes, nose and mouth. Coordinates
are canonical (see `aus`); `f` is the subject's `faces.Identity`, `s` a
side (-1 or 1, the sign of x). `faces` paints each subject once with these.
"""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np

from data_pipeline.sources.base import IMAGE_SIZE
from data_pipeline.synthetic.pose import GRID, HALF, box_slices

Color = tuple[float, float, float]


def _rgb(color) -> np.ndarray:
  """An RGB triple as a (3, 1, 1) float32 array, to broadcast over CHW."""
  return np.asarray(color, np.float32).reshape(3, 1, 1)


def _soft(margin):
  """Alpha from a signed distance in pixels (positive inside)."""
  return np.clip(margin + 0.5, 0, 1)


def _min(*margins):
  return functools.reduce(np.minimum, margins)


def _ellipse(cx, cy, rx, ry):
  return lambda x, y: _soft(
    (1 - np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)) * min(rx, ry)
  )


class Canvas:
  """A (C, H, W) canonical image painted shape by shape, C = 3 or 4.

  With 4 channels the last is alpha: painting makes it opaque, `cut` makes a
  hole.
  """

  def __init__(self, fill: Color, channels: int):
    self.image = np.empty((channels, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    self.image[:3] = _rgb(fill)
    self.image[3:] = 1

  def _region(self, box, shape):
    rows, cols = box_slices(box) if box else (slice(None), slice(None))
    x, y = GRID[None, cols], GRID[rows, None]
    alpha = np.ones((1, 1), np.float32) if shape is None else shape(x, y)
    return rows, cols, x, y, np.clip(alpha, 0, 1)

  def paint(self, box, shape: Callable | None, color) -> None:
    """Blends `color` in by the soft mask `shape(x, y)` within `box`.

    `box` is canonical (x0, x1, y0, y1), or None for everywhere; `shape`
    None means opaque; `color` an RGB triple or a function of (x, y) giving
    (3, h, w).
    """
    rows, cols, x, y, alpha = self._region(box, shape)
    color = color(x, y) if callable(color) else _rgb(color)
    region = self.image[:, rows, cols]
    region[:3] += alpha * (color - region[:3])
    region[3:] += alpha * (1 - region[3:])

  def cut(self, box, shape: Callable) -> None:
    """Makes the surface transparent by the soft mask `shape(x, y)`."""
    rows, cols, _, _, alpha = self._region(box, shape)
    self.image[3, rows, cols] *= 1 - alpha


def paint_head(surface: Canvas, f) -> None:
  skin, hair = _rgb(f.skin), _rgb(f.hair)
  surface.image[:3] *= 1.05 - 0.1 * (GRID[:, None] + HALF) / IMAGE_SIZE
  surface.paint(
    None,
    lambda x, y: _soft(
      np.minimum(0.5 * f.face_rx - np.abs(x), y - f.face_cy - 30)
    ),
    skin * 0.8,
  )  # neck
  head = _ellipse(0, f.face_cy - 6, f.face_rx + 7, f.face_ry + 4)
  surface.paint(None, lambda x, y: head(x, y) * _soft(f.face_cy - y), hair)
  surface.paint(
    None,
    _ellipse(0, f.face_cy, f.face_rx, f.face_ry),
    lambda x, y: (
      skin
      * (
        1
        - 0.25
        * np.minimum(
          (x / f.face_rx) ** 2 + ((y - f.face_cy) / f.face_ry) ** 2, 1
        )
        ** 2
      )
    ),
  )
  surface.paint(
    None,
    lambda x, y: head(x, y) * _soft(f.hairline + 40 * (x / f.face_rx) ** 4 - y),
    hair,
  )


def paint_brow(surface: Canvas, f, s: int) -> None:
  cx, half = s * (f.eye_x + 3), 19.0

  def shape(x, y):
    u = (x - cx) / half
    centre = f.brow_y - f.brow_arch * (1 - u * u)
    thickness = f.brow_thickness * (1 - 0.2 * (1 + s * u))
    return 0.9 * _soft(
      np.minimum(thickness / 2 - np.abs(y - centre), (1 - np.abs(u)) * half)
    )

  surface.paint(
    (cx - half - 1, cx + half + 1, f.brow_y - 12, f.brow_y + 6),
    shape,
    np.array(f.hair) * 0.7,
  )


def paint_eye(surface: Canvas, inside: Canvas, f, s: int) -> None:
  cx, cy, w, h = s * f.eye_x, f.eye_y, f.eye_w, f.eye_h
  box = (cx - w - 3, cx + w + 3, cy - h - 7, cy + h + 3)
  behind = (cx - w - 6, cx + w + 6, cy - h - 16, cy + h + 6)  # lids move

  def lid(x):  # height of the opening's edges over the centre line
    return h * np.clip(1 - ((x - cx) / w) ** 2, 0, None)

  def eyeball(x, y):
    r2 = (x - cx) ** 2 + (y - cy - 0.5) ** 2
    color = np.where(r2 < (1.1 * h) ** 2, _rgb(f.iris), _rgb((240, 236, 228)))
    return np.where(r2 < (0.45 * h) ** 2, _rgb((15, 12, 12)), color)

  inside.paint(behind, None, eyeball)
  surface.cut(
    box,
    lambda x, y: _soft(
      _min(
        y - (cy - lid(x)), cy + 0.75 * lid(x) - y, (1 - np.abs(x - cx) / w) * w
      )
    ),
  )
  surface.paint(
    box,
    lambda x, y: (
      0.9
      * _soft(1.0 - np.abs(y - (cy - lid(x) - 0.3)))
      * (np.abs(x - cx) < w + 1)
    ),
    (35, 25, 25),
  )  # upper lid line
  surface.paint(
    box,
    lambda x, y: (
      0.3
      * _soft(0.6 - np.abs(y - (cy - lid(x) - 4.5)))
      * (np.abs(x - cx) < 0.8 * w)
    ),
    np.array(f.skin) * 0.6,
  )  # lid crease
  surface.paint(
    box,
    lambda x, y: (
      0.35
      * _soft(0.5 - np.abs(y - (cy + 0.75 * lid(x) + 0.3)))
      * (np.abs(x - cx) < w)
    ),
    (90, 60, 60),
  )  # lower lid line


def paint_nose(surface: Canvas, f) -> None:
  shadow = np.array(f.skin) * 0.7
  for s in (-1, 1):
    surface.paint(
      (s * 5 - 2, s * 5 + 2, f.eye_y, f.nose_y - 6),
      lambda x, y: 0.25 * _soft(0.8 - np.abs(x - s * 5)),
      shadow,
    )
    ax, ay = s * 0.6 * f.nose_w, f.nose_y - 1.5
    surface.paint(
      (ax - 9, ax + 9, ay - 8, ay + 8),
      lambda x, y: (
        0.5
        * _soft(
          0.9
          - 5 * np.abs(np.sqrt(((x - ax) / 6.5) ** 2 + ((y - ay) / 5) ** 2) - 1)
        )
      ),
      shadow,
    )  # ala
    nx = s * 0.5 * f.nose_w
    surface.paint(
      (nx - 5, nx + 5, f.nose_y - 4, f.nose_y + 4),
      _ellipse(nx, f.nose_y, 3.2, 2.0),
      (60, 35, 35),
    )


def paint_mouth(surface: Canvas, inside: Canvas, f) -> None:
  my, mw = f.mouth_y, f.mouth_w
  box = (-mw - 2, mw + 2, my - 9, my + f.lower_lip + 3)
  behind = (-mw - 12, mw + 12, my - 18, my + 28)  # lips and jaw move

  def profile(x):
    return np.sqrt(np.clip(1 - (x / mw) ** 2, 0, None))

  def sides(x):
    return (1 - np.abs(x) / mw) * mw

  def mouth_inside(x, y):
    teeth = (y > my - 7) & (y < my - 1.2) & (np.abs(x) < 0.55 * mw) | (
      y > my + 2
    ) & (y < my + 5) & (np.abs(x) < 0.45 * mw)
    return np.where(teeth, _rgb((228, 222, 205)), _rgb((70, 22, 28)))

  bow = lambda x: 1 - 0.3 * np.exp(-((x / 4) ** 2))
  inside.paint(behind, None, mouth_inside)
  surface.paint(
    box,
    lambda x, y: _soft(
      _min(y - (my - f.upper_lip * profile(x) * bow(x)), my - y + 0.5, sides(x))
    ),
    f.lips,
  )
  surface.paint(
    box,
    lambda x, y: _soft(
      _min(my + f.lower_lip * profile(x) - y, y - my + 0.5, sides(x))
    ),
    np.array(f.lips) * 1.08,
  )
  surface.cut(
    box,
    lambda x, y: _soft(
      np.minimum(1.5 * np.sqrt(profile(x)) - np.abs(y - my), sides(x))
    ),
  )
