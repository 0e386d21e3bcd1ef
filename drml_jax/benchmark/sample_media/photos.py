"""Photographs with known faces, from the wheels, and transforms that move them.

`face_photos()` gives skimage's astronaut, matplotlib's grace_hopper.jpg and
skimage's cameraman, each with its face as a `Box`; `lfw_crops()` the LFW
crops in skimage. `roll`, `mirror`, `scale` and `yaw` transform an image and
its boxes alike; `cutout` and `paste` put faces on other images.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import cv2
import numpy as np
from matplotlib import cbook
from PIL import Image
from skimage import data

SEED = 0


CONTEXT = 2.0  # a pasted face brings a square this many face sides wide


FEATHER = 0.06  # of a pasted square's side: its edge fades in over this


YAW_DISTANCE = 1.0  # the camera's distance in the image's longest sides


LFW_FACES = 100  # lfw_subset's first 100 crops are faces, the rest are not


# Measured with OpenCV's haarcascade_frontalface_default.xml
# (detectMultiScale, scaleFactor 1.1, minNeighbors 5) on the full photo:
# box (x, y, w, h) = (177, 66, 95, 95) on the astronaut and (155, 105, 222,
# 222) on grace_hopper.jpg (512x600). The cameraman's profile: the
# haarcascade_profileface.xml box on the mirrored photo, (235, 101, 98, 98),
# mirrored back. Drawn on the photos, each spans brows to mouth.
ASTRONAUT_FACE = (224.5, 113.5, 95.0)


GRACE_HOPPER_FACE = (266.0, 216.0, 222.0)


CAMERAMAN_FACE = (228.0, 150.0, 98.0)


# The face in a 25x25 LFW crop: the median frontal Haar box (as above) over
# the 98 of the 100 face crops it finds, upscaled 8x on a grey margin.
LFW_FACE = (10.8, 11.4, 23.5)


@dataclasses.dataclass(frozen=True)
class Box:
  """A face's square: centre (cx, cy) and side, in pixels."""

  cx: float
  cy: float
  side: float

  @classmethod
  def around(cls, x: float, y: float, w: float, h: float) -> Box:
    """The square of a detector's (x, y, w, h) box: same centre, side
    the geometric mean of w and h."""
    return cls(x + w / 2, y + h / 2, math.sqrt(w * h))

  def shifted(self, dx: float, dy: float) -> Box:
    return Box(self.cx + dx, self.cy + dy, self.side)


@dataclasses.dataclass(frozen=True)
class Cutout:
  """A face with its surroundings, ready to paste: (S, S, 4) uint8 RGBA
  whose alpha fades out at the edges, and the face's box in it."""

  rgba: np.ndarray
  box: Box


def as_rgb(image: np.ndarray) -> np.ndarray:
  """Any skimage image (bool, float in [0, 1], gray, RGBA) as uint8 RGB."""
  if image.dtype == bool:
    image = np.where(image, 255, 0)
  elif image.dtype.kind == "f":
    image = image * 255 + 0.5
  image = np.clip(image, 0, 255).astype(np.uint8)
  if image.ndim == 2:
    return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
  return np.ascontiguousarray(image[..., :3])


def cover(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """`image` resized to fill (width, height), its excess cropped evenly."""
  width, height = size
  factor = max(width / image.shape[1], height / image.shape[0])
  resized = cv2.resize(
    image,
    (
      max(width, round(image.shape[1] * factor)),
      max(height, round(image.shape[0] * factor)),
    ),
    interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC,
  )
  left = (resized.shape[1] - width) // 2
  top = (resized.shape[0] - height) // 2
  return np.ascontiguousarray(resized[top : top + height, left : left + width])


def plain(
  size: tuple[int, int], colour: Sequence[int], rng: np.random.Generator
) -> np.ndarray:
  """A plain (width, height) background of `colour` with mild noise."""
  width, height = size
  noise = rng.normal(0.0, 6.0, (height, width, 1))
  return np.clip(np.asarray(colour) + noise, 0, 255).astype(np.uint8)


def face_photos() -> dict[str, tuple[np.ndarray, Box]]:
  """The three face photographs (RGB) and their face's box, by name."""
  path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
  with Image.open(path) as grace_hopper:
    grace_hopper = np.asarray(grace_hopper.convert("RGB"))
  return {
    "astronaut": (data.astronaut(), Box(*ASTRONAUT_FACE)),
    "grace_hopper": (grace_hopper, Box(*GRACE_HOPPER_FACE)),
    "cameraman": (as_rgb(data.camera()), Box(*CAMERAMAN_FACE)),
  }


def lfw_crops() -> tuple[list[np.ndarray], list[np.ndarray]]:
  """lfw_subset's 25x25 crops as RGB: the 100 faces and the 100 others.
  The face of each face crop is `Box(*LFW_FACE)`."""
  crops = [as_rgb(crop) for crop in data.lfw_subset()]
  return crops[:LFW_FACES], crops[LFW_FACES:]


def _fill(image: np.ndarray) -> tuple[int, ...]:
  return tuple(int(v) for v in image.reshape(-1, 3).mean(0))


def _border(image: np.ndarray, border: str) -> dict:
  """warpAffine's border arguments: "reflect" or "fill" (the mean colour)."""
  if border == "reflect":
    return {"borderMode": cv2.BORDER_REFLECT_101}
  if border == "fill":
    return {"borderMode": cv2.BORDER_CONSTANT, "borderValue": _fill(image)}
  raise ValueError(f"border {border!r}: use 'reflect' or 'fill'")


def _index(matrix: np.ndarray) -> np.ndarray:
  """A 3x3 map of continuous coordinates as OpenCV's map of pixel indices
  (pixel i's centre is at i + 0.5)."""
  half = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
  return np.linalg.inv(half) @ matrix @ half


def _rotation(centre: tuple[float, float], degrees: float) -> np.ndarray:
  """The 3x3 rotation by `degrees` counter-clockwise (as seen) about `centre`."""
  cx, cy = centre
  c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
  return np.array(
    [
      [c, s, cx - c * cx - s * cy],
      [-s, c, cy + s * cx - c * cy],
      [0.0, 0.0, 1.0],
    ]
  )


def _apply(matrix: np.ndarray, x: float, y: float) -> tuple[float, float]:
  u, v, w = matrix @ np.array([x, y, 1.0])
  return float(u / w), float(v / w)


def roll(
  image: np.ndarray,
  boxes: Sequence[Box],
  degrees: float,
  *,
  centre: tuple[float, float] | None = None,
  border: str = "fill",
) -> tuple[np.ndarray, list[Box]]:
  """`image` rotated `degrees` counter-clockwise about `centre` (the first
  box's centre by default), and its boxes moved along (sides kept).
  `border` is "fill" (the mean colour) or "reflect"."""
  if centre is None:
    centre = (boxes[0].cx, boxes[0].cy)
  matrix = _rotation(centre, degrees)
  height, width = image.shape[:2]
  rolled = cv2.warpAffine(
    image,
    _index(matrix)[:2],
    (width, height),
    flags=cv2.INTER_LINEAR,
    **_border(image, border),
  )
  return rolled, [
    Box(*_apply(matrix, box.cx, box.cy), box.side) for box in boxes
  ]


def mirror(
  image: np.ndarray, boxes: Sequence[Box]
) -> tuple[np.ndarray, list[Box]]:
  """`image` flipped left to right, and its boxes."""
  width = image.shape[1]
  return np.ascontiguousarray(image[:, ::-1]), [
    Box(width - box.cx, box.cy, box.side) for box in boxes
  ]


def scale(
  image: np.ndarray, boxes: Sequence[Box], factor: float
) -> tuple[np.ndarray, list[Box]]:
  """`image` resized by `factor` (sides rounded), and its boxes."""
  height, width = image.shape[:2]
  size = (max(1, round(width * factor)), max(1, round(height * factor)))
  fx, fy = size[0] / width, size[1] / height
  resized = cv2.resize(
    image,
    size,
    interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR,
  )
  return resized, [
    Box(box.cx * fx, box.cy * fy, box.side * math.sqrt(fx * fy))
    for box in boxes
  ]


def yaw(
  image: np.ndarray,
  boxes: Sequence[Box],
  degrees: float,
  *,
  border: str = "fill",
) -> tuple[np.ndarray, list[Box]]:
  """The image as a picture turned `degrees` about the vertical line through
  the first box's centre, seen in perspective: a frontal face turns partly
  toward profile, to its right (the image's left half recedes) for positive
  degrees, to its left for negative.

  The camera stands YAW_DISTANCE of the image's longest side away, so the
  turned picture never reaches the horizon. A box keeps its height at its
  new centre: its side scales with the perspective there.
  """
  height, width = image.shape[:2]
  cx, cy = boxes[0].cx, boxes[0].cy
  tilt = math.sin(math.radians(-degrees)) / (YAW_DISTANCE * max(height, width))
  shift = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1.0]])
  turn = np.array(
    [[math.cos(math.radians(degrees)), 0, 0], [0, 1, 0], [tilt, 0, 1.0]]
  )
  matrix = shift @ turn @ np.linalg.inv(shift)
  warped = cv2.warpPerspective(
    image,
    _index(matrix),
    (width, height),
    flags=cv2.INTER_LINEAR,
    **_border(image, border),
  )
  moved = []
  for box in boxes:
    depth = 1 + tilt * (box.cx - cx)
    moved.append(Box(*_apply(matrix, box.cx, box.cy), box.side / depth))
  return warped, moved


def _alpha(height: int, width: int) -> np.ndarray:
  """An (H, W) uint8 mask, opaque inside, fading to 0 over FEATHER at the edges."""
  feather = max(1.0, FEATHER * min(height, width))

  def ramp(n: int) -> np.ndarray:
    inside = np.minimum(np.arange(n) + 0.5, n - np.arange(n) - 0.5)
    return np.clip(inside / feather, 0.0, 1.0)

  return (np.minimum.outer(ramp(height), ramp(width)) * 255 + 0.5).astype(
    np.uint8
  )


def with_alpha(image: np.ndarray, box: Box) -> Cutout:
  """The whole of `image` (an LFW crop) as a cutout of its face `box`."""
  alpha = _alpha(*image.shape[:2])
  return Cutout(np.dstack([image, alpha]), box)


def cutout(image: np.ndarray, box: Box, context: float = CONTEXT) -> Cutout:
  """The square `context` face sides wide around `box` (reflected where it
  leaves the photo), to paste."""
  side = round(context * box.side)
  left, top = round(box.cx - side / 2), round(box.cy - side / 2)
  height, width = image.shape[:2]
  pad = max(0, -left, -top, left + side - width, top + side - height)
  padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
  square = padded[top + pad : top + pad + side, left + pad : left + pad + side]
  return with_alpha(square, box.shifted(-left, -top))


def draw(
  canvas: np.ndarray,
  face: Cutout,
  centre: tuple[float, float],
  side: float,
  degrees: float = 0.0,
) -> Box:
  """Pastes `face` onto `canvas` in place, its box at `centre` with `side`,
  rolled `degrees` counter-clockwise; parts outside the canvas are cut.
  Returns the box as drawn."""
  height, width = face.rgba.shape[:2]
  factor = side / face.box.side
  size = (max(1, round(width * factor)), max(1, round(height * factor)))
  fx, fy = size[0] / width, size[1] / height
  resized = cv2.resize(
    face.rgba,
    size,
    interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC,
  )
  here = (face.box.cx * fx, face.box.cy * fy)
  matrix = _rotation(here, degrees)
  matrix[:2, 2] += (centre[0] - here[0], centre[1] - here[1])
  corners = np.array(
    [_apply(matrix, x, y) for x in (0, size[0]) for y in (0, size[1])]
  )
  x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
  x1, y1 = np.minimum(
    np.ceil(corners.max(0)).astype(int), (canvas.shape[1], canvas.shape[0])
  )
  drawn = Box(centre[0], centre[1], face.box.side * math.sqrt(fx * fy))
  if x0 >= x1 or y0 >= y1:
    return drawn
  local = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1.0]]) @ matrix
  warped = cv2.warpAffine(
    resized,
    _index(local)[:2],
    (int(x1 - x0), int(y1 - y0)),
    flags=cv2.INTER_LINEAR,
    borderMode=cv2.BORDER_CONSTANT,
    borderValue=0,
  )
  alpha = warped[..., 3].astype(np.float32) / 255
  canvas[y0:y1, x0:x1] = cv2.blendLinear(
    np.ascontiguousarray(warped[..., :3]),
    canvas[y0:y1, x0:x1],
    alpha,
    1 - alpha,
  )
  return drawn


def paste(
  faces: Sequence[Cutout],
  background: np.ndarray,
  centres: Sequence[tuple[float, float]],
  sides: Sequence[float],
  degrees: Sequence[float] | None = None,
) -> tuple[np.ndarray, list[Box]]:
  """A copy of `background` with each face pasted, its box at its centre
  with its side, rolled its degrees counter-clockwise (none by default);
  later faces cover earlier ones. Returns the image and the boxes."""
  image = background.copy()
  degrees = [0.0] * len(faces) if degrees is None else degrees
  boxes = [
    draw(image, face, centre, side, angle)
    for face, centre, side, angle in zip(faces, centres, sides, degrees)
  ]
  return image, boxes


def inset(
  image: np.ndarray, boxes: Sequence[Box], background: np.ndarray
) -> tuple[np.ndarray, list[Box]]:
  """`image` copied into the middle of `background`, and its boxes."""
  height, width = image.shape[:2]
  top = (background.shape[0] - height) // 2
  left = (background.shape[1] - width) // 2
  framed = background.copy()
  framed[top : top + height, left : left + width] = image
  return framed, [box.shifted(left, top) for box in boxes]
