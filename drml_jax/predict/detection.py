"""Faces at any angle in photographs and video frames, found with OpenCV.

  detector = Detector()
  found = detector(image)               # [Face], left to right
  again = detector.near(image, face)    # the same face in a later frame, or None

Detection uses the Haar cascades that the opencv-python-headless 4.x wheels
ship (`cv2.data.haarcascades`): they run offline right after `pip install`,
on a CPU, with nothing to fetch. (Stronger CNN detectors do ship their
weights in a wheel, mtcnn's among them: docs/engineering.md, "Offline face
detection".) The cascades are combined to cover what one misses:

- views: the frontal cascade, and the profile cascade on the frame and on
  its mirror image (it knows faces turned one way only);
- roll: each view also searches the frame rotated by -ROLL_STEP and
  +ROLL_STEP degrees; a cascade tolerates about 15 degrees of roll, so the
  three cover heads tilted up to about 40 degrees either way.

The boxes of all passes are merged by non-maximum suppression on their
neighbour counts (the cascade's confidence), so one face gives one box.
`near` searches only around a face found before, with its view and roll, at
a few scales: a tracker's cheap step between full detections.

A Face is a square (centre, side) with the roll that levels it. The frontal
cascade's square spans brows to mouth; DRML was trained on DISFA+'s 200x200
aligned crops, a square around the whole face with the eyes about 0.28 of
its side apart and a little above the middle. Measured with
`haarcascade_eye.xml` on `skimage.data.astronaut()`, the cascade's eye
centres lie 0.48 of its side apart at 0.38 of its height, so the crop
(`alignment.crop`) is the square widened by CROP_MARGIN of its side on every
side, 1.65 sides in all: eyes 0.29 of the crop apart at 0.43 of its height.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os

import cv2
import numpy as np

FRONTAL = "haarcascade_frontalface_default.xml"
PROFILE = "haarcascade_profileface.xml"
VIEWS = ("frontal", "left", "right")  # "left": facing the image's left
ROLL_STEP = 25.0  # degrees between the searched rotations: -25, 0, 25
PASSES = tuple(itertools.product(VIEWS, (0.0, -ROLL_STEP, ROLL_STEP)))
MIN_FACE = 24  # pixels: the cascades' own window
# Smaller faces have too few pixels for AUs. A frame is searched downscaled
# so that this smallest face spans MIN_FACE pixels: the cascades' native
# scale, and 2-5x fewer pixels to search in a photo or a 640x360 frame.
MIN_FACE_FRACTION = 0.1  # of the frame's shorter side
SCALE_FACTOR = 1.1  # OpenCV's default
# Neighbours a box needs, per view and whether the frame was rotated: the
# profile cascade, and the frontal one on rotated frames, fire on more
# textures. Chosen for the best F1 on `sample_media.labelled_set()` (the
# note in docs/predict.md gives its precision and recall).
MIN_NEIGHBORS = {
  ("frontal", False): 5,
  ("frontal", True): 10,
  ("left", False): 8,
  ("left", True): 8,
  ("right", False): 8,
  ("right", True): 8,
}
# `near` looks where a face just was: fewer neighbours confirm it.
NEAR_MIN_NEIGHBORS = 3
MAX_OVERLAP = 0.3  # intersection over union of two boxes of one face
MAX_COVER = 0.5  # of the smaller box inside the larger: one face boxed twice
NEAR_REGION = 2.0  # `near` searches a square this many face sides wide
NEAR_SIDE = 48  # pixels a face is scaled to for `near`
NEAR_SIZES = (0.75, 1.35)  # the sizes `near` accepts, relative to the face


@dataclasses.dataclass(frozen=True)
class Face:
  """A face square in frame pixels: centre, side, and the roll (degrees,
  counter-clockwise as displayed) that turns it upright.

  `score` is the cascade's count of merged neighbouring detections (higher
  is surer), None for a face given rather than found. `view` is the cascade
  that found it.
  """

  cx: float
  cy: float
  side: float
  roll: float = 0.0
  score: int | None = None
  view: str = "frontal"

  def scaled(self, factor: float) -> Face:
    """The same face in an image `factor` times larger."""
    return dataclasses.replace(
      self, cx=self.cx * factor, cy=self.cy * factor, side=self.side * factor
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


def same_face(a: Face, b: Face) -> bool:
  """Whether two faces' upright squares overlap as two detections of one
  face do: by their intersection over union, or over the smaller square."""
  ax, ay, aw, _ = a.box
  bx, by, bw, _ = b.box
  w = min(ax + aw, bx + bw) - max(ax, bx)
  h = min(ay + aw, by + bw) - max(ay, by)
  if w <= 0 or h <= 0:
    return False
  union = w * h / (aw * aw + bw * bw - w * h)
  return union > MAX_OVERLAP or w * h / min(aw, bw) ** 2 > MAX_COVER


def _load(name: str) -> cv2.CascadeClassifier:
  path = os.path.join(cv2.data.haarcascades, name)
  cascade = cv2.CascadeClassifier(path)
  if cascade.empty():
    raise RuntimeError(
      f"{path}: cannot load OpenCV's cascade; reinstall"
      " opencv-python-headless<5"
    )
  return cascade


def _rotation(shape: tuple[int, int], angle: float) -> tuple[np.ndarray, tuple]:
  """The affine map that rotates an image of `shape` by `angle` degrees about
  its centre onto a canvas that holds all of it, and that canvas's size."""
  height, width = shape
  radians = math.radians(angle)
  cos, sin = abs(math.cos(radians)), abs(math.sin(radians))
  size = (
    math.ceil(width * cos + height * sin),
    math.ceil(width * sin + height * cos),
  )
  matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
  matrix[:, 2] += (size[0] - width) / 2, (size[1] - height) / 2
  return matrix, size


class Detector:
  """Faces in RGB frames, frontal to profile, rolled up to ~40 degrees."""

  def __init__(self):
    self.cascades = {"frontal": _load(FRONTAL), "profile": _load(PROFILE)}

  def _search(
    self,
    gray: np.ndarray,
    view: str,
    angle: float,
    min_side: int,
    max_side: int = 0,
    min_neighbors: int | None = None,
  ) -> list[tuple[float, float, float, int]]:
    """(cx, cy, side, neighbours) of one view's faces in `gray` rotated by
    `angle`, in `gray`'s pixels."""
    matrix, size = _rotation(gray.shape, angle)
    image = gray if angle == 0 else cv2.warpAffine(gray, matrix, size)
    if view == "right":  # the profile cascade knows left-facing faces only
      image = np.ascontiguousarray(image[:, ::-1])
    cascade = self.cascades["frontal" if view == "frontal" else "profile"]
    boxes, neighbours = cascade.detectMultiScale2(
      image,
      scaleFactor=SCALE_FACTOR,
      minNeighbors=min_neighbors or MIN_NEIGHBORS[view, angle != 0],
      minSize=(min_side, min_side),
      maxSize=(max_side, max_side),
    )
    back = cv2.invertAffineTransform(matrix)
    found = []
    for (x, y, w, _), n in zip(boxes, neighbours):
      cx = x + w / 2
      if view == "right":
        cx = image.shape[1] - cx
      cx, cy = back @ (cx, y + w / 2, 1.0)
      found.append((cx, cy, float(w), int(n)))
    return found

  def __call__(
    self,
    image: np.ndarray,
    passes: tuple = PASSES,
    smallest: float = MIN_FACE_FRACTION,
  ) -> list[Face]:
    """The faces of an (H, W, 3) uint8 RGB image, sorted by x: those that
    `passes` (view, roll) find, all of them by default, down to `smallest`
    of the image's shorter side."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    scale = min(1.0, MIN_FACE / (smallest * min(gray.shape)))
    if scale < 1.0:
      gray = cv2.resize(
        gray,
        (round(gray.shape[1] * scale), round(gray.shape[0] * scale)),
        interpolation=cv2.INTER_AREA,
      )
    candidates = [
      Face(cx / scale, cy / scale, s / scale, angle, n, view)
      for view, angle in passes
      for cx, cy, s, n in self._search(gray, view, angle, MIN_FACE)
    ]
    return sorted(suppress(candidates), key=lambda face: (face.cx, face.cy))

  def near(self, image: np.ndarray, face: Face) -> Face | None:
    """`face` found again in a later `image` near where it was, or None:
    searched with its view and roll first, then, if it turned or tilted,
    with the others (PASSES)."""
    scale = NEAR_SIDE / face.side
    half = NEAR_REGION * face.side / 2
    left, top = round(face.cx - half), round(face.cy - half)
    region = cut_square(image, left, top, round(2 * half))
    gray = cv2.cvtColor(
      cv2.resize(
        region,
        (round(region.shape[1] * scale),) * 2,
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
      ),
      cv2.COLOR_RGB2GRAY,
    )
    low, high = (max(MIN_FACE, round(NEAR_SIDE * f)) for f in NEAR_SIZES)
    poses = [(face.view, face.roll)]
    poses += [pose for pose in PASSES if pose != poses[0]]
    for view, roll in poses:
      found = self._search(gray, view, roll, low, high, NEAR_MIN_NEIGHBORS)
      if found:
        cx, cy, side, neighbours = max(found, key=lambda found: found[3])
        return Face(
          left + cx / scale,
          top + cy / scale,
          side / scale,
          roll,
          neighbours,
          view,
        )
    return None


def suppress(faces: list[Face]) -> list[Face]:
  """The faces left when each pair of boxes of one face keeps its surer."""
  kept = []
  for face in sorted(faces, key=lambda face: -(face.score or 0)):
    if not any(same_face(face, other) for other in kept):
      kept.append(face)
  return kept


def cut_square(image: np.ndarray, left: int, top: int, side: int) -> np.ndarray:
  """The side x side square of `image` at (left, top); outside it, black."""
  height, width = image.shape[:2]
  square = np.zeros((side, side, *image.shape[2:]), image.dtype)
  x0, y0 = max(left, 0), max(top, 0)
  x1, y1 = min(left + side, width), min(top + side, height)
  if x1 > x0 and y1 > y0:
    square[y0 - top : y1 - top, x0 - left : x1 - left] = image[y0:y1, x0:x1]
  return square
