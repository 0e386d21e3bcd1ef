"""Drawing a synthetic subject's face with AUs at given intensities.

Each subject's face is painted once on the canonical grid (see `aus`) as two
layers: the surface (skin, hair, brows, lips...; premultiplied RGB and an
alpha that is 0 in the eye and mouth openings) and what lies behind the
openings (eyeballs, the mouth's inside). A frame samples the surface at the
warped points `q + d(q)` of its active AUs, only inside their boxes (d is 0
elsewhere), over the unmoved inside, applies their shades, and is then
resampled to its pose, lit, and given noise.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Sequence

import numpy as np

from data_pipeline.sources.base import DISFA_PLUS_AUS, IMAGE_SIZE
from data_pipeline.synthetic import aus as au_terms
from data_pipeline.synthetic.pose import (
  GRID,
  HALF,
  Nuisance,
  box_slices,
  resample,
)

Color = tuple[float, float, float]
_NOISE_KNOTS = 9  # per axis, of the smooth noise


@dataclasses.dataclass(frozen=True)
class Identity:
  """What makes a synthetic subject look like themselves (canonical px)."""

  face_rx: float
  face_ry: float
  face_cy: float
  skin: Color
  hair: Color
  background: Color
  lips: Color
  iris: Color
  hairline: float
  brow_y: float
  brow_thickness: float
  brow_arch: float
  eye_x: float  # half the distance between the eye centres
  eye_y: float
  eye_w: float  # half width
  eye_h: float  # half height of the opening
  nose_y: float  # the nostrils' line
  nose_w: float
  mouth_y: float
  mouth_w: float  # half width
  upper_lip: float
  lower_lip: float


def _color(values) -> Color:
  return tuple(float(c) for c in np.clip(values, 0, 255))


def sample_identity(rng: np.random.Generator) -> Identity:
  """A random subject."""
  u = rng.uniform
  tone = u(0, 1)
  skin = (
    np.array([236, 200, 172]) * (1 - tone) + np.array([120, 80, 58]) * tone
  ) * u(0.95, 1.05, 3)
  hair = np.array(
    [
      (30, 22, 18),
      (70, 45, 28),
      (120, 85, 50),
      (185, 150, 95),
      (110, 105, 100),
    ][rng.integers(5)]
  ) * u(0.85, 1.15)
  return Identity(
    face_rx=u(61, 70),
    face_ry=u(78, 86),
    face_cy=u(0, 6),
    skin=_color(skin),
    hair=_color(hair),
    background=_color(u(60, 200) * u(0.8, 1.2, 3)),
    lips=_color(skin * np.array([0.85, 0.55, 0.55]) * u(0.9, 1.05)),
    iris=_color(
      [(60, 40, 25), (90, 60, 35), (70, 100, 130), (80, 110, 70)][
        rng.integers(4)
      ]
    ),
    hairline=u(-72, -63),
    brow_y=u(-43, -37),
    brow_thickness=u(4.5, 7),
    brow_arch=u(2, 5),
    eye_x=u(26, 31),
    eye_y=u(-20, -15),
    eye_w=u(11, 13.5),
    eye_h=u(4.8, 6.2),
    nose_y=u(21, 27),
    nose_w=u(7, 10),
    mouth_y=u(47, 53),
    mouth_w=u(21, 26),
    upper_lip=u(3.5, 5.5),
    lower_lip=u(5, 7.5),
  )


# --- painting the layers once per subject ------------------------------------


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


class _Layer:
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


def _paint_head(surface: _Layer, f: Identity) -> None:
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


def _paint_brow(surface: _Layer, f: Identity, s: int) -> None:
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


def _paint_eye(surface: _Layer, inside: _Layer, f: Identity, s: int) -> None:
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


def _paint_nose(surface: _Layer, f: Identity) -> None:
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


def _paint_mouth(surface: _Layer, inside: _Layer, f: Identity) -> None:
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


@dataclasses.dataclass(frozen=True)
class _Subject:
  """A subject's painted layers and its AUs' effects on the canonical grid."""

  surface: np.ndarray  # (4, H, W): premultiplied RGB, alpha
  inside: np.ndarray  # (3, H, W): behind the eye and mouth openings
  neutral: np.ndarray  # (3, H, W): the face with no AU
  # Per AU: (kind, rows, cols, full-intensity effect) of each term.
  effects: dict[int, list[tuple[str, slice, slice, np.ndarray]]]


@functools.lru_cache(maxsize=4)  # about 3 MB each
def _subject(face: Identity) -> _Subject:
  surface = _Layer(face.background, 4)
  inside = _Layer((0, 0, 0), 3)
  _paint_head(surface, face)
  for s in (-1, 1):
    _paint_brow(surface, face, s)
    _paint_eye(surface, inside, face, s)
  _paint_nose(surface, face)
  _paint_mouth(surface, inside, face)
  layers = surface.image
  layers[:3] *= layers[3]
  effects = {}
  for au, terms in au_terms.TERMS.items():
    effects[au] = []
    for term in terms:
      rows, cols = box_slices(term.box)
      effect = term.effect(GRID[None, cols], GRID[rows, None], face)
      effects[au].append((term.kind, rows, cols, effect.astype(np.float32)))
  return _Subject(
    layers, inside.image, _composite(layers, inside.image), effects
  )


def _composite(surface: np.ndarray, inside: np.ndarray) -> np.ndarray:
  return surface[:3] + (1 - surface[3]) * inside


# --- one frame ---------------------------------------------------------------


def _sample(layers: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
  """Bilinear samples (C, n) of (C, H, W) `layers` at grid positions y, x."""
  y = np.clip(y, 0, IMAGE_SIZE - 1)
  x = np.clip(x, 0, IMAGE_SIZE - 1)
  y0 = np.minimum(y.astype(np.intp), IMAGE_SIZE - 2)
  x0 = np.minimum(x.astype(np.intp), IMAGE_SIZE - 2)
  fy, fx = y - y0, x - x0
  flat = layers.reshape(len(layers), -1)
  index = y0 * IMAGE_SIZE + x0
  tap = lambda offset: np.take(flat, index + offset, axis=1)
  top = tap(0) * (1 - fx) + tap(1) * fx
  bottom = tap(IMAGE_SIZE) * (1 - fx) + tap(IMAGE_SIZE + 1) * fx
  return top * (1 - fy) + bottom * fy


def _strengths(intensities: Sequence[float]) -> dict[int, float]:
  if len(intensities) != len(DISFA_PLUS_AUS):
    raise ValueError(
      f"expected {len(DISFA_PLUS_AUS)} intensities (AUs"
      f" {DISFA_PLUS_AUS}), got {len(intensities)}"
    )
  return {
    au: au_terms.strength(au, a)
    for au, a in zip(DISFA_PLUS_AUS, intensities)
    if a > 0
  }


def _displacement(subject: _Subject, strengths: dict[int, float]):
  """(2, H, W) canonical sampling offsets, and where the warps reach."""
  d = np.zeros((2, IMAGE_SIZE, IMAGE_SIZE), np.float32)
  reached = np.zeros((IMAGE_SIZE, IMAGE_SIZE), bool)
  for au, strength in strengths.items():
    for kind, rows, cols, effect in subject.effects[au]:
      if kind == "warp":
        d[:, rows, cols] += np.float32(strength) * effect
        reached[rows, cols] = True
  return d, np.flatnonzero(reached)


def _canonical_frame(face: Identity, strengths: dict[int, float]):
  subject = _subject(face)
  image = subject.neutral.copy()
  d, moved = _displacement(subject, strengths)
  if moved.size:
    y, x = (v.astype(np.float32) for v in np.divmod(moved, IMAGE_SIZE))
    warped = _sample(
      subject.surface, y + d[1].flat[moved], x + d[0].flat[moved]
    )
    behind = subject.inside.reshape(3, -1)[:, moved]
    image.reshape(3, -1)[:, moved] = _composite(warped, behind)
  for au, strength in strengths.items():
    for kind, rows, cols, effect in subject.effects[au]:
      if kind == "shade":
        image[:, rows, cols] *= 1 + np.float32(strength) * effect
  return image, d


@functools.cache
def _upsampling() -> np.ndarray:
  """(H, n) bilinear interpolation from n evenly spread knots to H pixels."""
  knots = np.linspace(0, IMAGE_SIZE - 1, _NOISE_KNOTS)
  pixels = np.arange(IMAGE_SIZE)[:, None]
  spacing = knots[1] - knots[0]
  return np.clip(1 - np.abs(pixels - knots) / spacing, 0, 1).astype(np.float32)


def _noise(seed: int) -> np.ndarray:
  """(3, H, W) smooth unit-variance-ish noise: blotches, not grain.

  Smooth noise compresses like the lighting does; pixel grain would make
  every stored frame several times larger and slower to write.
  """
  knots = np.random.default_rng(seed).standard_normal(
    (3, _NOISE_KNOTS, _NOISE_KNOTS), np.float32
  )
  up = _upsampling()
  return up @ knots @ up.T


@functools.lru_cache(maxsize=4)
def _landmark_points(f: Identity) -> np.ndarray:
  """49 canonical (x, y) points: brows, nose, eyes, mouth (IntraFace order)."""
  points = []
  for s in (-1, 1):
    for u in (-0.9, -0.45, 0, 0.45, 0.9):
      points.append(
        (s * (f.eye_x + 3) + 19 * u, f.brow_y - f.brow_arch * (1 - u * u))
      )
  points += [(0, y) for y in np.linspace(f.eye_y, f.nose_y - 5, 4)]
  points += [
    (f.nose_w * u, f.nose_y + 2.5 - abs(u) * 2)
    for u in (-0.8, -0.4, 0, 0.4, 0.8)
  ]
  for s in (-1, 1):
    cx, cy, w, h = s * f.eye_x, f.eye_y, f.eye_w, f.eye_h
    points += [
      (cx - w, cy),
      (cx - w / 2, cy - 0.75 * h),
      (cx + w / 2, cy - 0.75 * h),
      (cx + w, cy),
      (cx + w / 2, cy + 0.56 * h),
      (cx - w / 2, cy + 0.56 * h),
    ]
  my, mw = f.mouth_y, f.mouth_w
  lip = lambda u: np.sqrt(1 - u * u)
  points += (
    [(-mw, my)]
    + [(mw * u, my - f.upper_lip * lip(u)) for u in (-0.6, -0.3, 0, 0.3, 0.6)]
    + [(mw, my)]
    + [(mw * u, my + f.lower_lip * lip(u)) for u in (0.6, 0.3, 0, -0.3, -0.6)]
  )
  points += [(mw * u, my - 0.5) for u in (-0.4, 0, 0.4)]
  points += [(mw * u, my + 0.5) for u in (0.4, 0, -0.4)]
  points = np.array(points, np.float32)
  points.setflags(write=False)  # cached: shared by every frame
  return points


def _landmarks(face: Identity, d: np.ndarray, nuisance: Nuisance):
  """Where the 49 points appear: MATLAB's 1-based pixel (x, y)."""
  target = _landmark_points(face)
  q = target
  for _ in range(4):  # Solve q + d(q) = target, d being smooth and small.
    grid = np.clip(np.rint(q + HALF - 0.5), 0, IMAGE_SIZE - 1).astype(np.intp)
    q = target - d[:, grid[:, 1], grid[:, 0]].T
  pixels = q * nuisance.scale + np.array([nuisance.shift_x, nuisance.shift_y])
  return (pixels + HALF + 0.5).astype(np.float64)


def render_frame(
  face: Identity, intensities: Sequence[float], nuisance: Nuisance = Nuisance()
) -> tuple[np.ndarray, np.ndarray]:
  """`render_face`'s image, and its 49 landmarks (1-based x, y pixels)."""
  image, d = _canonical_frame(face, _strengths(intensities))
  image = resample(image, nuisance)
  image *= np.float32(nuisance.brightness) * (
    1
    + np.float32(nuisance.gradient_x) * GRID[None, :] / HALF
    + np.float32(nuisance.gradient_y) * GRID[:, None] / HALF
  )
  if nuisance.noise:
    image += np.float32(nuisance.noise) * _noise(nuisance.noise_seed)
  image = np.clip(image + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)
  return image, _landmarks(face, d, nuisance)


def render_face(
  face: Identity, intensities: Sequence[float], nuisance: Nuisance = Nuisance()
) -> np.ndarray:
  """(200, 200, 3) uint8 RGB: `face` showing the 12 AUs at `intensities`.

  `intensities` are 0..5, in `DISFA_PLUS_AUS` order.
  """
  return render_frame(face, intensities, nuisance)[0]
