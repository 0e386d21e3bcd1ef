"""Face crops as the model was trained on them: eyes level, DISFA+'s framing.

  aligner = Aligner()
  face = aligner(image, face)   # its roll refined from the eyes, where found
  crop(image, face)             # (200, 200, 3) uint8, turned upright

DISFA+'s crops are aligned: the eyes level, at a fixed place and distance. A
detected face's roll is known to the detector's rotation step
(`detection.ROLL_STEP`), its box to the cascade's scale step (10%). The
`Aligner` measures both from the eyes: OpenCV's eye cascade
(`haarcascade_eye_tree_eyeglasses.xml`, in the same wheel, which finds eyes
behind glasses too) on the upper part of the face, turned by the detector's
roll. The line between the two eyes gives the roll; their distance and
midpoint place the face's square where a frontal box around these eyes lies
(EYE_SPACING, EYE_HEIGHT). Profiles and faces whose eyes are not both found
keep the detector's box and roll.
"""

from __future__ import annotations

import dataclasses
import math
import os

import cv2
import numpy as np

from data_pipeline.sources.base import IMAGE_SIZE
from drml_jax.predict.detection import Face, cut_square

EYES = "haarcascade_eye_tree_eyeglasses.xml"  # finds eyes behind glasses too
CROP_MARGIN = 0.325  # of the face's side, on every side (detection.py says why)
EYE_SIDE = 128  # pixels a face is scaled to to find its eyes
# Where two eyes of a frontal box lie, as fractions of its side: measured on
# the astronaut (detection.py); the search allows room around them.
EYE_SPACING = 0.48
EYE_HEIGHT = 0.38
EYE_ROWS = (0.1, 0.6)
EYE_DISTANCE = (0.3, 0.7)
MAX_EYE_TILT = 25.0  # degrees: a steeper pair is two other features


class Aligner:
  """Places detected faces by their eyes: roll, centre and side."""

  def __init__(self):
    path = os.path.join(cv2.data.haarcascades, EYES)
    self.eyes = cv2.CascadeClassifier(path)
    if self.eyes.empty():
      raise RuntimeError(
        f"{path}: cannot load OpenCV's eye cascade; reinstall"
        " opencv-python-headless<5"
      )

  def __call__(self, image: np.ndarray, face: Face) -> Face:
    """`face` with its roll measured from its eyes, where both are found."""
    if face.view != "frontal":
      return face
    upright = _warp(image, face, EYE_SIDE, 0.0)
    gray = cv2.cvtColor(upright, cv2.COLOR_RGB2GRAY)
    top, bottom = (round(EYE_SIDE * f) for f in EYE_ROWS)
    boxes = self.eyes.detectMultiScale(
      gray[top:bottom],
      scaleFactor=1.1,
      minNeighbors=3,
      minSize=(EYE_SIDE // 10, EYE_SIDE // 10),
      maxSize=(EYE_SIDE // 3, EYE_SIDE // 3),
    )
    centres = [(x + w / 2, top + y + h / 2) for x, y, w, h in boxes]
    pair = _eye_pair(centres)
    if pair is None:
      return face
    (lx, ly), (rx, ry) = pair
    tilt = math.atan2(ry - ly, rx - lx)
    # The square of a frontal box around these eyes, in the turned face's
    # pixels: its side from their distance, its centre below their midpoint.
    side = math.hypot(rx - lx, ry - ly) / EYE_SPACING
    below = (0.5 - EYE_HEIGHT) * side
    u = (lx + rx) / 2 - below * math.sin(tilt) - EYE_SIDE / 2
    v = (ly + ry) / 2 + below * math.cos(tilt) - EYE_SIDE / 2
    # Back to the frame: scaled to the face's side, turned back by its roll.
    scale, roll = face.side / EYE_SIDE, math.radians(face.roll)
    return dataclasses.replace(
      face,
      cx=face.cx + scale * (u * math.cos(roll) - v * math.sin(roll)),
      cy=face.cy + scale * (u * math.sin(roll) + v * math.cos(roll)),
      side=side * scale,
      roll=face.roll + math.degrees(tilt),
    )


def _eye_pair(centres: list[tuple[float, float]]) -> tuple | None:
  """The likeliest eye pair among `centres` (in a face scaled to EYE_SIDE),
  left eye first, or None: one eye on each half of the face, as far apart
  as eyes are, the most level pair first."""
  middle = EYE_SIDE / 2
  pairs = []
  for lx, ly in centres:
    for rx, ry in centres:
      if not lx < middle < rx:
        continue
      distance = math.hypot(rx - lx, ry - ly) / EYE_SIDE
      tilt = math.degrees(math.atan2(ry - ly, rx - lx))
      level = abs(tilt) <= MAX_EYE_TILT
      if level and EYE_DISTANCE[0] <= distance <= EYE_DISTANCE[1]:
        pairs.append((abs(tilt), (lx, ly), (rx, ry)))
  return min(pairs)[1:] if pairs else None


def crop(image: np.ndarray, face: Face) -> np.ndarray:
  """The (200, 200, 3) uint8 crop of `face`, upright, framed as DISFA+.

  The square widened by CROP_MARGIN per side, turned by the face's roll;
  parts beyond the frame are black.
  """
  return _warp(image, face, IMAGE_SIZE, CROP_MARGIN)


def _warp(
  image: np.ndarray, face: Face, size: int, margin: float
) -> np.ndarray:
  """The face's square, widened by `margin` per side, turned upright, at
  size x size. A large face is first shrunk with pixel-area averaging, so
  the turn does not alias."""
  side = face.side * (1 + 2 * margin)
  scale = size / side
  reach = side * (math.sqrt(2) if face.roll else 1.0) / 2 + 1
  left, top = math.floor(face.cx - reach), math.floor(face.cy - reach)
  region = image
  if scale < 1:
    width = math.ceil(2 * reach) + 1
    region = cut_square(image, left, top, width)
    shrunk = max(1, round(width * scale))
    region = cv2.resize(region, (shrunk, shrunk), interpolation=cv2.INTER_AREA)
    scale_to_region = shrunk / width
    cx = (face.cx - left) * scale_to_region
    cy = (face.cy - top) * scale_to_region
    scale = size / (side * scale_to_region)
  else:
    cx, cy = face.cx, face.cy
  matrix = cv2.getRotationMatrix2D((cx, cy), face.roll, scale)
  matrix[:, 2] += size / 2 - cx, size / 2 - cy
  return cv2.warpAffine(
    region,
    matrix,
    (size, size),
    flags=cv2.INTER_LINEAR,
    borderMode=cv2.BORDER_CONSTANT,
    borderValue=0,
  )


def given(image: np.ndarray) -> tuple[Face, np.ndarray]:
  """An image that is already a face crop: its box and its 200x200 face.

  A 200x200 image is used as it is; another is centre-cropped to a square
  and resized.
  """
  height, width = image.shape[:2]
  side = min(height, width)
  face = Face(width / 2, height / 2, side)
  if (height, width) == (IMAGE_SIZE, IMAGE_SIZE):
    return face, image
  return face, _warp(image, face, IMAGE_SIZE, 0.0)
