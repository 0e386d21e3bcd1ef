"""Faces in photographs and video frames, cropped as the model was trained.

Detection is OpenCV's Haar cascade `haarcascade_frontalface_default.xml`,
which the opencv-python-headless 4.x wheels ship (`cv2.data.haarcascades`):
it runs offline right after `pip install`, on CPU, with no weights to fetch.
It finds frontal faces only, which is what an AU model trained on frontal
datasets can read anyway.

DRML was trained on DISFA+'s 200x200 aligned crops: a square around the
whole face, eyes about 0.28 of the side apart and a little above the middle
(the synthetic dataset follows this framing; CK+ is cropped to it from its
landmarks, `data_pipeline.sources.ck_plus.crop_face`). A frontal Haar box
is tighter: it spans brows to mouth and its eye centres lie 0.48 of its
side apart, at 0.38 of its height (measured with `haarcascade_eye.xml` on
`skimage.data.astronaut()`). So the crop is the box's square widened by
CROP_MARGIN of its side on every side, 1.65 box sides in all: eyes 0.29 of
the crop apart at 0.43 of its height, chin and forehead inside. It is cut
and resized by CK+'s own `crop_face` (parts beyond the frame are black).
"""

from __future__ import annotations

import dataclasses
import os

import cv2
import numpy as np

from data_pipeline.sources.base import IMAGE_SIZE
from data_pipeline.sources.ck_plus import crop_face

CASCADE = "haarcascade_frontalface_default.xml"
CROP_MARGIN = 0.325  # of the Haar box's side, on every side
DETECT_SIDE = 640  # larger frames are downscaled to this longest side to detect
MIN_FACE = 24  # pixels at the detection scale: the cascade's own window
# Smaller faces have too few pixels for AUs; skipping them speeds the search ~1.5x.
MIN_FACE_FRACTION = 0.1  # of the frame's shorter side
SCALE_FACTOR = 1.1  # OpenCV's defaults
MIN_NEIGHBORS = 5
MAX_OVERLAP = 0.3  # intersection over union of two boxes of one face


@dataclasses.dataclass(frozen=True)
class Face:
  """A face box in frame pixels.

  `score` is the Haar detection's count of merged neighbouring detections
  (at least MIN_NEIGHBORS; higher is surer), None for a given crop.
  """

  x: int
  y: int
  w: int
  h: int
  score: int | None = None


class Detector:
  """Frontal faces in an RGB frame, left to right."""

  def __init__(self):
    path = os.path.join(cv2.data.haarcascades, CASCADE)
    self.cascade = cv2.CascadeClassifier(path)
    if self.cascade.empty():
      raise RuntimeError(
        f"{path}: cannot load OpenCV's face cascade; reinstall"
        " opencv-python-headless<5"
      )

  def __call__(self, image: np.ndarray) -> list[Face]:
    """The faces of an (H, W, 3) uint8 RGB image, sorted by x."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    scale = min(1.0, DETECT_SIDE / max(gray.shape))
    if scale < 1.0:
      gray = cv2.resize(
        gray,
        (round(gray.shape[1] * scale), round(gray.shape[0] * scale)),
        interpolation=cv2.INTER_AREA,
      )
    side = max(MIN_FACE, round(MIN_FACE_FRACTION * min(gray.shape)))
    boxes, neighbours = self.cascade.detectMultiScale2(
      gray,
      scaleFactor=SCALE_FACTOR,
      minNeighbors=MIN_NEIGHBORS,
      minSize=(side, side),
    )
    # The cascade's grouping can leave two boxes on one face: keep the surer.
    kept = cv2.dnn.NMSBoxes(
      [list(map(int, box)) for box in boxes],
      [float(n) for n in neighbours],
      0.0,
      MAX_OVERLAP,
    )
    faces = [
      Face(*(round(int(v) / scale) for v in boxes[i]), score=int(neighbours[i]))
      for i in np.asarray(kept, int).reshape(-1)
    ]
    return sorted(faces, key=lambda face: (face.x, face.y))


def crop(image: np.ndarray, face: Face) -> np.ndarray:
  """The (200, 200, 3) uint8 crop of a detected face, framed as DISFA+."""
  corners = np.array(
    [[face.x, face.y], [face.x + face.w, face.y + face.h]], np.float64
  )
  return crop_face(image, corners, CROP_MARGIN)


def aligned(image: np.ndarray) -> tuple[Face, np.ndarray]:
  """An image that is already a face crop: its box and its 200x200 face.

  A 200x200 image is used as it is; another is centre-cropped to a square
  and resized.
  """
  height, width = image.shape[:2]
  face = Face(0, 0, width, height)
  if (height, width) == (IMAGE_SIZE, IMAGE_SIZE):
    return face, image
  side = min(height, width)
  left, top = (width - side) / 2, (height - side) / 2
  return face, crop_face(
    image, np.array([[left, top], [left + side, top + side]]), 0.0
  )
