"""Drawing a synthetic subject's face with AUs at given intensities.

Each subject's face is painted once on the canonical grid (see `aus`) as two
layers: the surface (skin, hair, brows, lips...; premultiplied RGB and an
alpha that is 0 in the eye and mouth openings) and what lies behind the
openings (eyeballs, the mouth's inside). A frame samples the surface at the
warped points `q + d(q)` of its active AUs, only inside their boxes (d is 0
elsewhere), over the unmoved inside, applies their shades, and is then
resampled to its pose, lit, and given noise. The parts themselves are
painted by `painting`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Sequence

import numpy as np

from data_pipeline.sources.base import DISFA_PLUS_AUS, IMAGE_SIZE
from data_pipeline.synthetic import aus as au_terms
from data_pipeline.synthetic.painting import (
  Canvas,
  Color,
  paint_brow,
  paint_eye,
  paint_head,
  paint_mouth,
  paint_nose,
)
from data_pipeline.synthetic.pose import (
  GRID,
  HALF,
  Nuisance,
  box_slices,
  resample,
)

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
  surface = Canvas(face.background, 4)
  inside = Canvas((0, 0, 0), 3)
  paint_head(surface, face)
  for s in (-1, 1):
    paint_brow(surface, face, s)
    paint_eye(surface, inside, face, s)
  paint_nose(surface, face)
  paint_mouth(surface, inside, face)
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
