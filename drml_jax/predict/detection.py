"""Faces at any angle in photographs and video frames, with five landmarks.

  detector = Detector()
  found = detector(image)               # [Face], left to right
  again = detector.near(image, face)    # the same face in a later frame, or None

Detection is MTCNN (Zhang et al., 2016), the detector OpenFace uses: three
small CNNs in a cascade (`face_nets`, the weights of the `mtcnn` wheel).
P-Net slides a 12x12 window over an image pyramid whose largest level
shrinks the smallest face sought to 12 pixels; each window it takes for a
face proposes a box. R-Net rescores and refines each proposal from a 24x24
patch, O-Net from a 48x48 patch, and O-Net gives the five landmarks (eye
centres, nose tip, mouth corners). Overlapping boxes are merged after each
stage by non-maximum suppression. The thresholds are mtcnn's defaults, but
O-Net's, raised from 0.8 to O_THRESHOLD: on `sample_media.labelled_set()`
0.7, 0.8 and 0.9 gave the same F1 (0.986), 0.9 with no false alarm (0.7
and 0.8 boxed a face twice); 0.95 lost 4 faces.

Roll: the networks take faces tilted up to about 30 degrees. A photograph
is also searched rotated by -ROLL_STEP and +ROLL_STEP degrees, which covers
heads tilted to about 60 degrees either way. A face's Face (its square and
roll) comes from its landmarks (`alignment.from_landmarks`), found again
with the face turned upright by its own roll.

`near` searches only around a face found before, turned upright by its
last roll; `follow`, a tracker's step between full detections, first asks
O-Net alone whether the face is still where its box was.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from drml_jax.predict import face_nets
from drml_jax.predict.alignment import (
  Face,
  centring,
  cut_square,
  from_landmarks,
)

ROLL_STEP = 30.0  # degrees: a photo is searched at -30, 0 and +30
ROLLS = (0.0, -ROLL_STEP, ROLL_STEP)
WINDOW = 12  # pixels: P-Net's window, the smallest face it sees
PYRAMID_STEP = 0.709  # between pyramid levels (MTCNN's: area halves)
MIN_FACE = 20  # pixels: no smaller face is sought
# ... nor one smaller than this fraction of the image's shorter side: a
# large photo's pyramid would otherwise cost seconds for faces too small
# for AUs.
MIN_FACE_FRACTION = 0.04
P_THRESHOLD, R_THRESHOLD, O_THRESHOLD = 0.6, 0.7, 0.9
P_MERGE_SCALE, P_MERGE, R_MERGE, O_MERGE = 0.5, 0.7, 0.7, 0.7  # NMS IoU
MAX_OVERLAP = 0.3  # intersection over union of two boxes of one face
MAX_COVER = 0.5  # of the smaller box inside the larger: one face boxed twice
NEAR_REGION = 2.0  # `near` searches a square this many face sides wide
NEAR_SIDE = 48  # pixels a face is scaled to for `near`
NEAR_SIZES = (0.7, 1.4)  # the sizes `near` accepts, relative to the face
# Where O-Net's box lies around a Face's square, in its sides: centre
# offset (x, y) and side (measured on the three photos: 0.88-1.04 wide,
# 0.06-0.1 lower).
FOLLOW_BOX = (0.0, 0.06, 0.9)


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


def suppress(faces: list[Face]) -> list[Face]:
  """The faces left when each pair of boxes of one face keeps its surer."""
  kept = []
  for face in sorted(faces, key=lambda face: -(face.score or 0)):
    if not any(same_face(face, other) for other in kept):
      kept.append(face)
  return kept


def _nms(boxes: np.ndarray, threshold: float, over_smaller=False) -> np.ndarray:
  """Indices of the (x1, y1, x2, y2, score) rows kept by greedy
  non-maximum suppression: overlap by IoU, or over the smaller box."""
  order = np.argsort(-boxes[:, 4], kind="stable")
  areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
  kept = []
  while order.size:
    best, rest = order[0], order[1:]
    kept.append(best)
    w = np.minimum(boxes[best, 2], boxes[rest, 2]) - np.maximum(
      boxes[best, 0], boxes[rest, 0]
    )
    h = np.minimum(boxes[best, 3], boxes[rest, 3]) - np.maximum(
      boxes[best, 1], boxes[rest, 1]
    )
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    if over_smaller:
      overlap = inter / np.minimum(areas[best], areas[rest])
    else:
      overlap = inter / (areas[best] + areas[rest] - inter)
    order = rest[overlap <= threshold]
  return np.array(kept, np.intp)


def _squared(boxes: np.ndarray) -> np.ndarray:
  """The boxes made squares of their longer side, same centres."""
  boxes = boxes.copy()
  side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
  cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
  boxes[:, 0], boxes[:, 1] = cx - side / 2, cy - side / 2
  boxes[:, 2], boxes[:, 3] = cx + side / 2, cy + side / 2
  return boxes


def _moved(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
  """The boxes moved by the networks' offsets (fractions of their size)."""
  boxes = boxes.copy()
  size = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, 1)
  boxes[:, :4] += offsets * size
  return boxes


def _patches(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
  """The square boxes of `image` resized to size x size, normalised."""
  patches = np.empty((len(boxes), size, size, 3), np.float32)
  for i, (x1, y1, x2, _) in enumerate(boxes[:, :4]):
    side = max(1, round(x2 - x1))
    square = cut_square(image, round(x1), round(y1), side)
    shrink = side > size
    patches[i] = cv2.resize(
      square,
      (size, size),
      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR,
    )
  return face_nets.normalized(patches)


class Detector:
  """Faces in RGB frames, with their landmarks, rolled up to ~60 degrees."""

  def __init__(self):
    self.nets = face_nets.FaceNets()

  def _proposals(self, image: np.ndarray, min_face: float) -> np.ndarray:
    """P-Net's boxes (x1, y1, x2, y2, score) over the image's pyramid."""
    height, width = image.shape[:2]
    scale = WINDOW / min_face
    found = []
    while min(height, width) * scale >= WINDOW:
      size = (math.ceil(width * scale), math.ceil(height * scale))
      level = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
      offsets, faceness = self.nets.proposals(face_nets.normalized(level)[None])
      ys, xs = np.nonzero(faceness[0] > P_THRESHOLD)
      if len(ys):
        boxes = np.stack(
          [2 * xs, 2 * ys, 2 * xs + WINDOW, 2 * ys + WINDOW], 1
        ) / np.float32(scale)
        boxes = np.concatenate([boxes, faceness[0, ys, xs, None]], 1)
        boxes = _moved(boxes, offsets[0, ys, xs])
        found.append(boxes[_nms(boxes, P_MERGE_SCALE)])
      scale *= PYRAMID_STEP
    if not found:
      return np.empty((0, 5), np.float32)
    boxes = np.concatenate(found)
    return _squared(boxes[_nms(boxes, P_MERGE)])

  def detect(
    self, image: np.ndarray, min_face: float
  ) -> tuple[np.ndarray, np.ndarray]:
    """The cascade on an (H, W, 3) uint8 RGB image: boxes (N, 5) as
    (x1, y1, x2, y2, score) and landmarks (N, 5, 2), faces of at least
    `min_face` pixels."""
    boxes = self._proposals(image, min_face)
    if len(boxes):
      offsets, faceness = self.nets.refined(_patches(image, boxes, 24))
      boxes[:, 4] = faceness
      keep = faceness > R_THRESHOLD
      boxes = _moved(boxes[keep], offsets[keep])
      boxes = _squared(boxes[_nms(boxes, R_MERGE)])
    return self._output(image, boxes)

  def _output(
    self, image: np.ndarray, boxes: np.ndarray
  ) -> tuple[np.ndarray, np.ndarray]:
    """O-Net on square candidate boxes: those it takes for faces, moved by
    its offsets and merged, with their landmarks."""
    if not len(boxes):
      return np.empty((0, 5), np.float32), np.empty((0, 5, 2), np.float32)
    offsets, points, faceness = self.nets.output(_patches(image, boxes, 48))
    size = (boxes[:, 2:4] - boxes[:, 0:2])[:, None]
    landmarks = (
      boxes[:, None, 0:2] + np.stack([points[:, :5], points[:, 5:]], -1) * size
    )
    boxes = boxes.copy()
    boxes[:, 4] = faceness
    keep = faceness > O_THRESHOLD
    boxes, landmarks = _moved(boxes[keep], offsets[keep]), landmarks[keep]
    keep = _nms(boxes, O_MERGE, over_smaller=True)
    return boxes[keep], landmarks[keep]

  def _faces(
    self, image: np.ndarray, roll: float, min_face: float
  ) -> list[Face]:
    """The faces found in `image` turned by `roll` degrees, in its pixels,
    each searched for again turned upright by its own roll (`near`).

    O-Net places the landmarks best on an upright face, so rolled faces'
    crops come closer to the upright face's. A face found only in a turned
    image is kept only if found again: turned textures give false alarms
    that no O-Net threshold separates from turned faces
    (benchmarks/README.md#predict-speed).
    """
    matrix, size = _rotation(image.shape[:2], roll)
    turned = image if roll == 0 else cv2.warpAffine(image, matrix, size)
    faces = []
    for face in _faces_back(*self.detect(turned, min_face), matrix):
      again = self.near(image, face)
      if again is not None or roll == 0:
        faces.append(again or face)
    return faces

  def __call__(
    self,
    image: np.ndarray,
    rolls: tuple = ROLLS,
    smallest: float = MIN_FACE_FRACTION,
  ) -> list[Face]:
    """The faces of an (H, W, 3) uint8 RGB image, sorted by x: those found
    with the image turned by each of `rolls`, down to `smallest` of the
    image's shorter side (and MIN_FACE pixels)."""
    min_face = max(MIN_FACE, smallest * min(image.shape[:2]))
    if min(image.shape[:2]) < min_face:
      return []
    found = [f for roll in rolls for f in self._faces(image, roll, min_face)]
    return sorted(suppress(found), key=lambda face: (face.cx, face.cy))

  def _upright_region(
    self, image: np.ndarray, face: Face
  ) -> tuple[np.ndarray, np.ndarray]:
    """The square NEAR_REGION sides wide around `face`, turned upright by
    its roll and scaled so that the face spans NEAR_SIDE pixels, and the
    map from the image's pixels to it."""
    scale = NEAR_SIDE / face.side
    side = round(NEAR_REGION * NEAR_SIDE)
    matrix = centring(face.cx, face.cy, face.roll, scale, side)
    region = cv2.warpAffine(
      image,
      matrix,
      (side, side),
      flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
    )
    return region, matrix

  def _likeliest(
    self, found: tuple[np.ndarray, np.ndarray], matrix, face: Face
  ) -> Face | None:
    """The surest of boxes and landmarks found in an upright region that
    has NEAR_SIZES of `face`'s size, in the image's pixels, or None."""
    low, high = (face.side * f for f in NEAR_SIZES)
    faces = [f for f in _faces_back(*found, matrix) if low <= f.side <= high]
    return max(faces, key=lambda f: f.score) if faces else None

  def near(self, image: np.ndarray, face: Face) -> Face | None:
    """`face` found again by the whole cascade in a later `image` (or the
    same, turned upright) near where it was, or None."""
    return self._searched(*self._upright_region(image, face), face)

  def _searched(self, region, matrix, face: Face) -> Face | None:
    """`face` found by the whole cascade in its upright region, or None."""
    found = self.detect(region, NEAR_SIZES[0] * NEAR_SIDE)
    return self._likeliest(found, matrix, face)

  def follow(self, image: np.ndarray, face: Face) -> Face | None:
    """`face` in the next frame of a video, or None: O-Net alone where the
    face's box was (FOLLOW_BOX), in the region `near` searches; where it
    takes that for no face, `near`. The faces of one video move little
    from frame to frame, and O-Net alone costs a fraction of the cascade
    (benchmarks/README.md#predict-speed)."""
    region, matrix = self._upright_region(image, face)
    dx, dy, width = (f * NEAR_SIDE for f in FOLLOW_BOX)
    x = len(region) / 2 + dx - width / 2
    y = len(region) / 2 + dy - width / 2
    box = np.array([[x, y, x + width, y + width, 0.0]], np.float32)
    followed = self._likeliest(self._output(region, box), matrix, face)
    return followed or self._searched(region, matrix, face)


def _faces_back(
  boxes: np.ndarray, landmarks: np.ndarray, matrix: np.ndarray
) -> list[Face]:
  """The faces of `detect`'s boxes and landmarks in an image warped by
  `matrix`, in the unwarped image's pixels."""
  back = cv2.invertAffineTransform(matrix)
  return [
    from_landmarks(points @ back[:, :2].T + back[:, 2], float(box[4]))
    for box, points in zip(boxes, landmarks)
  ]


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
