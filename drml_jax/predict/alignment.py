"""Face crops as the model was trained on them: DISFA+'s framing, by landmarks.

  face = from_landmarks(points, score)   # a Face whose crop is aligned
  crop(image, face)                      # (200, 200, 3) uint8, turned upright

A `Face` is a square in frame pixels (centre, side) and the roll that turns
it upright; `crop` cuts the square widened by CROP_MARGIN of its side on
every side, turned by the roll, at 200x200. AU datasets align their crops
by landmarks: a similarity transform (scale, rotation, shift) that takes the
face's points to a template. `from_landmarks` does the same with the
detector's five points (eye centres, nose tip, mouth corners): their
similarity to TEMPLATE, the points' place in a training crop (`alignment`:
the eyes levelled, the centroids matched, the scale of the less
foreshortened axis), gives the Face whose crop is that transform.

TEMPLATE is where the five points lie in the 200x200 crops DRML trains on:
the mean of the detector's points on synthetic training faces (169 of 200
identities found, each point's spread 1.3-2.3 pixels), which are framed as
DISFA+'s crops are: the eyes 0.29 of the crop apart, 0.4 of it from the
top.
"""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

from data_pipeline.sources.base import IMAGE_SIZE

CROP_MARGIN = 0.325  # of the face's side, on every side: 1.65 sides in all
# The five points (x, y) in a 200x200 training crop, 0-based pixel centres:
# the eye on the image's left, the other eye, the nose tip, the mouth
# corner on the image's left, the other corner.
TEMPLATE = np.array(
  [
    [71.4, 79.9],
    [128.8, 80.0],
    [100.3, 118.0],
    [77.5, 150.1],
    [123.4, 149.9],
  ]
)
# The points as the 68-point (iBUG) scheme numbers them, which OpenFace's and
# py-feat's x_N / y_N columns use: the eye centres are the centres of points
# 36-41 and 42-47 (the scheme has no single point there), the nose tip 30,
# the mouth corners 48 and 54.
LANDMARK_IDS = ("36_41", "42_47", "30", "48", "54")


@dataclasses.dataclass(frozen=True)
class Face:
  """A face square in frame pixels: centre, side, and the roll (degrees,
  counter-clockwise as displayed) that turns it upright.

  `score` is the detector's probability that it is a face, None for a face
  given rather than found. `landmarks` are the detector's five points (x, y)
  in frame pixels, in TEMPLATE's order, or None.
  """

  cx: float
  cy: float
  side: float
  roll: float = 0.0
  score: float | None = None
  landmarks: tuple[tuple[float, float], ...] | None = None

  def scaled(self, factor: float) -> Face:
    """The same face in an image `factor` times larger."""
    landmarks = self.landmarks and tuple(
      (x * factor, y * factor) for x, y in self.landmarks
    )
    return dataclasses.replace(
      self,
      cx=self.cx * factor,
      cy=self.cy * factor,
      side=self.side * factor,
      landmarks=landmarks,
    )

  @property
  def box(self) -> tuple[int, int, int, int]:
    """(x, y, w, h): the square's upright box, rounded to pixels."""
    half = self.side / 2
    return (
      round(self.cx - half),
      round(self.cy - half),
      round(self.side),
      round(self.side),
    )


def _complex(points) -> np.ndarray:
  points = np.asarray(points, np.float64)
  return points[:, 0] + 1j * points[:, 1]


def alignment(points) -> tuple[complex, complex]:
  """(a, b): the similarity z -> a z + b that aligns a face's five points
  to TEMPLATE: its rotation levels the eyes, its shift takes the points'
  centroid to the template's, its scale is the points' less foreshortened
  axis's.

  The eye line gave rolled photos' roll to 2 degrees, the least-squares
  fit of all five points to 2.6 (tests/test_predict_detection.py). A head
  turned sideways brings its points closer along the face's x axis, one
  nodding along its y axis; a least-squares scale of such points would
  enlarge the face in the crop. Turned upright, the points' spread along
  each axis is fitted to the template's on its own, and the smaller of the
  two scales (the axis foreshortened least) is the face's.
  """
  z, w = _complex(points), _complex(TEMPLATE)
  eyes, template_eyes = z[1] - z[0], w[1] - w[0]
  rotation = (template_eyes / abs(template_eyes)) / (eyes / abs(eyes))
  upright = (z - z.mean()) * rotation
  spread = w - w.mean()
  scales = [
    np.dot(part(upright), part(spread)) / np.dot(part(upright), part(upright))
    for part in (np.real, np.imag)
  ]
  a = min(scales) * rotation
  return a, w.mean() - a * z.mean()


def from_landmarks(points, score: float | None = None) -> Face:
  """The Face whose crop aligns the five `points` (frame pixels) to
  TEMPLATE (`alignment`)."""
  a, b = alignment(points)
  # `crop` puts the face's centre at (size/2, size/2) of the crop.
  centre = (IMAGE_SIZE / 2 * (1 + 1j) - b) / a
  return Face(
    cx=float(centre.real),
    cy=float(centre.imag),
    side=float(IMAGE_SIZE / abs(a) / (1 + 2 * CROP_MARGIN)),
    # x + iy with y down: multiplying by e^(-i r) turns the image by r
    # degrees counter-clockwise as displayed, as cv2's rotations do.
    roll=float(-math.degrees(np.angle(a))),
    score=score,
    landmarks=tuple((float(x), float(y)) for x, y in points),
  )


def cut_square(image: np.ndarray, left: int, top: int, side: int) -> np.ndarray:
  """The side x side square of `image` at (left, top); outside it, black."""
  height, width = image.shape[:2]
  square = np.zeros((side, side, *image.shape[2:]), image.dtype)
  x0, y0 = max(left, 0), max(top, 0)
  x1, y1 = min(left + side, width), min(top + side, height)
  if x1 > x0 and y1 > y0:
    square[y0 - top : y1 - top, x0 - left : x1 - left] = image[y0:y1, x0:x1]
  return square


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
  return cv2.warpAffine(
    region,
    centring(cx, cy, face.roll, scale, size),
    (size, size),
    flags=cv2.INTER_LINEAR,
    borderMode=cv2.BORDER_CONSTANT,
    borderValue=0,
  )


def crop_transform(face: Face, size: int = IMAGE_SIZE) -> np.ndarray:
  """The 2x3 affine map from frame pixels to `crop`'s pixels."""
  scale = size / (face.side * (1 + 2 * CROP_MARGIN))
  return centring(face.cx, face.cy, face.roll, scale, size)


def centring(cx, cy, roll, scale, size) -> np.ndarray:
  """The affine map that turns by `roll` degrees and scales about (cx, cy),
  and puts (cx, cy) at the centre of a size x size image."""
  matrix = cv2.getRotationMatrix2D((cx, cy), roll, scale)
  matrix[:, 2] += size / 2 - cx, size / 2 - cy
  return matrix


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
