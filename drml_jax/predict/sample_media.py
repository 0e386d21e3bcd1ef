"""Photographs and clips with known faces, built offline from installed wheels.

Every image comes from a file that scikit-image or matplotlib ship in their
wheels, so nothing is downloaded:

* faces: `skimage.data.astronaut()` (Eileen Collins, frontal),
  matplotlib's sample `grace_hopper.jpg` (frontal), `skimage.data.camera()`
  (the cameraman, grayscale, his face in three-quarter profile) and the
  first 100 of `skimage.data.lfw_subset()`'s 200 grayscale 25x25 crops
  (Labeled Faces in the Wild, tight around the face);
* no face: skimage's coffee, rocket, hubble_deep_field, brick, grass,
  gravel, horse (a silhouette), text, page and coins, the last 100 LFW crops
  (patches without a face), matplotlib's `topobathy.npz` elevation map
  shaded as a landscape, and a chart and shapes drawn with matplotlib; and
  skimage's chelsea, a cat: a hard negative, kept apart (kind "cat").

A face is a `Box`: the centre and side of its square, brows to mouth as a
frontal Haar cascade frames it, in continuous pixel coordinates (pixel i
spans [i, i + 1]). The transforms (`roll`, `mirror`, `scale`, `yaw`,
`paste`) move the boxes with the pixels. `labelled_set` builds about 110
labelled images from them, `score` measures a face detector on them, and
`write_clip` writes mp4 clips of moving faces with per-frame ground truth.
`write_synthetic_video` writes a clip of the synthetic dataset's kind of
face, whose AUs a model trained on it reads.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import cv2
import numpy as np
from matplotlib import cbook, colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LightSource
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Ellipse, Rectangle, RegularPolygon
from PIL import Image
from skimage import data

from data_pipeline import synthetic

SEED = 0
CONTEXT = 2.0  # a pasted face brings a square this many face sides wide
FEATHER = 0.06  # of a pasted square's side: its edge fades in over this
YAW_DISTANCE = 1.0  # the camera's distance in the image's longest sides
MAX_SIDE = 1024  # no labelled image is larger
LFW_FACES = 100  # lfw_subset's first 100 crops are faces, the rest are not
ROLLS = (-30, -20, -10, 10, 20, 30)  # degrees, counter-clockwise
YAWS = (-45, -25, 25, 45)  # degrees; positive turns the face to its right
SMALL_SIDES = (64, 40)  # face sides in pixels, in a 1024x768 background
LFW_ITEMS = 48
LFW_SIDES = (96, 128)  # the range of an LFW face's side, upscaled
LFW_CANVAS = (320, 320)
MAX_GROUP_ROLL = 10  # degrees
OUT_SECONDS = 0.6  # "leave_return": how long the face is wholly outside
MAX_CLIP_ROLL = 15  # degrees: the roll of the face of clip "one"

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


class Item(NamedTuple):
  """A labelled image: name "kind/detail", (H, W, 3) uint8 RGB, its faces."""

  name: str
  image: np.ndarray
  boxes: list[Box]

  @property
  def kind(self) -> str:
    return self.name.split("/")[0]


@dataclasses.dataclass(frozen=True)
class Cutout:
  """A face with its surroundings, ready to paste: (S, S, 4) uint8 RGBA
  whose alpha fades out at the edges, and the face's box in it."""

  rgba: np.ndarray
  box: Box


def _rgb(image: np.ndarray) -> np.ndarray:
  """Any skimage image (bool, float in [0, 1], gray, RGBA) as uint8 RGB."""
  if image.dtype == bool:
    image = np.where(image, 255, 0)
  elif image.dtype.kind == "f":
    image = image * 255 + 0.5
  image = np.clip(image, 0, 255).astype(np.uint8)
  if image.ndim == 2:
    return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
  return np.ascontiguousarray(image[..., :3])


def _cover(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
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


def _plain(
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
    "cameraman": (_rgb(data.camera()), Box(*CAMERAMAN_FACE)),
  }


def lfw_crops() -> tuple[list[np.ndarray], list[np.ndarray]]:
  """lfw_subset's 25x25 crops as RGB: the 100 faces and the 100 others.
  The face of each face crop is `Box(*LFW_FACE)`."""
  crops = [_rgb(crop) for crop in data.lfw_subset()]
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


def _draw(
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
    _draw(image, face, centre, side, angle)
    for face, centre, side, angle in zip(faces, centres, sides, degrees)
  ]
  return image, boxes


def _inset(
  image: np.ndarray, boxes: Sequence[Box], background: np.ndarray
) -> tuple[np.ndarray, list[Box]]:
  """`image` copied into the middle of `background`, and its boxes."""
  height, width = image.shape[:2]
  top = (background.shape[0] - height) // 2
  left = (background.shape[1] - width) // 2
  framed = background.copy()
  framed[top : top + height, left : left + width] = image
  return framed, [box.shifted(left, top) for box in boxes]


def _figure(draw: Callable[[Figure], None]) -> np.ndarray:
  """A 640x480 matplotlib figure drawn by `draw`, as RGB."""
  figure = Figure(figsize=(6.4, 4.8), dpi=100)
  canvas = FigureCanvasAgg(figure)
  draw(figure)
  canvas.draw()
  return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _chart(figure: Figure) -> None:
  rng = np.random.default_rng(SEED)
  lines, bars = figure.subplots(1, 2)
  x = np.linspace(0, 10, 200)
  for k in range(3):
    lines.plot(x, np.sin(x * (k + 1) / 3) + k, label=f"series {k}")
  lines.legend()
  lines.grid(True)
  lines.set_title("Signals")
  bars.bar(list("ABCDE"), rng.uniform(1, 5, 5), color="tab:orange")
  bars.set_title("Counts")


def _shapes(figure: Figure) -> None:
  rng = np.random.default_rng(SEED + 1)
  axes = figure.add_axes((0, 0, 1, 1))
  axes.set_xlim(0, 4)
  axes.set_ylim(0, 3)
  axes.set_axis_off()
  for _ in range(14):
    x, y, size = rng.uniform(0, 4), rng.uniform(0, 3), rng.uniform(0.15, 0.5)
    colour = rng.uniform(0, 1, 3)
    shape = rng.integers(4)
    if shape == 0:
      patch = Circle((x, y), size, color=colour)
    elif shape == 1:
      patch = Rectangle((x, y), 2 * size, size, color=colour)
    elif shape == 2:
      patch = Ellipse((x, y), 2 * size, size, angle=rng.uniform(0, 180))
      patch.set_color(colour)
    else:
      patch = RegularPolygon((x, y), int(rng.integers(3, 7)), radius=size)
      patch.set_color(colour)
    axes.add_patch(patch)


def landscape() -> np.ndarray:
  """matplotlib's topobathy.npz elevation map, hill-shaded in earth
  colours, north up: 546x720 RGB."""
  path = cbook.get_sample_data("topobathy.npz", asfileobj=False)
  with np.load(path) as sample:
    elevation = sample["topo"][::-1]
  shaded = LightSource(azdeg=315, altdeg=45).shade(
    elevation, cmap=colormaps["gist_earth"], blend_mode="soft", vert_exag=0.05
  )
  return cv2.resize(_rgb(shaded), (720, 546), interpolation=cv2.INTER_CUBIC)


def _mosaic(crops: Sequence[np.ndarray], columns: int, side: int) -> np.ndarray:
  tiles = [
    cv2.resize(crop, (side, side), interpolation=cv2.INTER_CUBIC)
    for crop in crops
  ]
  rows = [
    np.hstack(tiles[start : start + columns])
    for start in range(0, len(tiles), columns)
  ]
  return np.vstack(rows)


def negatives() -> list[Item]:
  """The images without a face: kind "negative", and the cat, kind "cat"."""
  _, others = lfw_crops()
  images = {
    name: _rgb(getattr(data, name)())
    for name in (
      "coffee",
      "rocket",
      "hubble_deep_field",
      "brick",
      "grass",
      "gravel",
      "horse",
      "text",
      "page",
      "coins",
    )
  }
  images["topobathy"] = landscape()
  images["chart"] = _figure(_chart)
  images["shapes"] = _figure(_shapes)
  images["lfw_others"] = _mosaic(others[:24], 6, 96)
  items = [
    Item(f"negative/{name}", image, []) for name, image in images.items()
  ]
  return items + [Item("cat/chelsea", data.chelsea(), [])]


def _group(
  name: str,
  faces: Sequence[Cutout],
  background: np.ndarray,
  rows: int,
  rng: np.random.Generator,
) -> Item:
  """`faces` pasted one to a cell of a grid of `rows`, each 0.3-0.4 of its
  cell wide (its cutout inside the cell), jittered and rolled a little."""
  height, width = background.shape[:2]
  columns = math.ceil(len(faces) / rows)
  cell_w, cell_h = width / columns, height / rows
  cell = min(cell_w, cell_h)
  centres, sides = [], []
  for index in range(len(faces)):
    row, column = divmod(index, columns)
    side = rng.uniform(0.3, 0.4) * cell
    room = 0.5 * (cell / 2 - side)
    centres.append(
      (
        (column + 0.5) * cell_w + rng.uniform(-room, room),
        (row + 0.5) * cell_h + rng.uniform(-room, room),
      )
    )
    sides.append(side)
  degrees = rng.uniform(-MAX_GROUP_ROLL, MAX_GROUP_ROLL, len(faces))
  image, boxes = paste(faces, background, centres, sides, degrees)
  return Item(f"group/{name}", image, boxes)


def _transformed(photos: dict[str, tuple[np.ndarray, Box]]) -> list[Item]:
  """Each face photo upright, mirrored, rolled by ROLLS and yawed by YAWS."""
  items = []
  for name, (image, box) in photos.items():
    items.append(Item(f"upright/{name}", image, [box]))
    items.append(Item(f"mirror/{name}", *mirror(image, [box])))
    for degrees in ROLLS:
      rolled = roll(image, [box], degrees)
      items.append(Item(f"roll/{name}{degrees:+d}", *rolled))
    for degrees in YAWS:
      turned = yaw(image, [box], degrees)
      items.append(Item(f"yaw/{name}{degrees:+d}", *turned))
  return items


def _small(photos: dict[str, tuple[np.ndarray, Box]]) -> list[Item]:
  """Each face photo shrunk so that its face is SMALL_SIDES wide, in the
  middle of the rocket, coffee or hubble photo enlarged to 1024x768."""
  size = (MAX_SIDE, MAX_SIDE * 3 // 4)
  backgrounds = [data.rocket(), data.coffee(), data.hubble_deep_field()]
  items = []
  for (name, (image, box)), background in zip(photos.items(), backgrounds):
    background = _cover(background, size)
    for side in SMALL_SIDES:
      shrunk = scale(image, [box], side / box.side)
      items.append(Item(f"small/{name}-{side}", *_inset(*shrunk, background)))
  return items


def _groups(
  photos: dict[str, tuple[np.ndarray, Box]],
  lfw: Sequence[Cutout],
  rng: np.random.Generator,
) -> list[Item]:
  """Six pictures of 3-5 faces: the photos' cutouts (the astronaut also
  mirrored) and LFW faces, on photos, the landscape, bricks or a plain grey."""
  astronaut, grace_hopper, cameraman = (
    cutout(image, box) for image, box in photos.values()
  )
  image, box = photos["astronaut"]
  flipped, (flipped_box,) = mirror(image, [box])
  mirrored = cutout(flipped, flipped_box)
  large, medium = (1024, 768), (900, 600)
  groups = [
    ("three_photos", [astronaut, grace_hopper, cameraman], data.rocket(), 1),
    ("photos_lfw", [astronaut, lfw[0], grace_hopper, lfw[1]], data.coffee(), 2),
    ("five_lfw", lfw[2:7], landscape(), 2),
    (
      "mixed",
      [mirrored, lfw[7], cameraman, lfw[8]],
      data.hubble_deep_field(),
      2,
    ),
    ("lfw_brick", [lfw[9], astronaut, lfw[10], lfw[11]], data.brick(), 2),
  ]
  sizes = [large, medium, (720, 546), large, medium]
  plain = _plain((960, 400), (170, 180, 190), rng)
  items = [
    _group(name, members, _cover(_rgb(background), size), rows, rng)
    for (name, members, background, rows), size in zip(groups, sizes)
  ]
  items.append(
    _group("plain", [grace_hopper, lfw[12], cameraman], plain, 1, rng)
  )
  return items


def _lfw_items(lfw: Sequence[Cutout], rng: np.random.Generator) -> list[Item]:
  """The first LFW_ITEMS LFW faces, each upscaled to a side in LFW_SIDES
  and pasted at a random place, whole, on bricks, grass, gravel or a plain
  random colour."""
  textures = [_rgb(data.brick()), _rgb(data.grass()), _rgb(data.gravel())]
  items = []
  for index in range(LFW_ITEMS):
    texture = index % (len(textures) + 1)
    if texture == len(textures):
      background = _plain(LFW_CANVAS, rng.integers(60, 220, 3), rng)
    else:
      background = _cover(textures[texture], LFW_CANVAS)
    side = rng.uniform(*LFW_SIDES)
    # The crop reaches 0.6 sides right of its face's centre: a margin left.
    room = min(LFW_CANVAS) / 2 - 0.75 * side
    centre = tuple(np.asarray(LFW_CANVAS) / 2 + rng.uniform(-room, room, 2))
    image, boxes = paste([lfw[index]], background, [centre], [side])
    items.append(Item(f"lfw/{index:02d}", image, boxes))
  return items


def labelled_set() -> list[Item]:
  """The labelled images, positives then negatives (see the module's
  docstring); the same on every call.

  Positives, by kind: "upright" (each face photo), "mirror", "roll" (by
  ROLLS about the face), "yaw" (by YAWS), "small" (each photo shrunk so its
  face is SMALL_SIDES wide, in a 1024x768 background), "group" (3-5 faces
  pasted on a background) and "lfw" (LFW_ITEMS LFW faces, one per image,
  upscaled to LFW_SIDES on a plain or textured background).
  """
  rng = np.random.default_rng(SEED)
  photos = face_photos()
  faces, _ = lfw_crops()
  lfw = [with_alpha(crop, Box(*LFW_FACE)) for crop in faces]
  return (
    _transformed(photos)
    + _small(photos)
    + _groups(photos, lfw[LFW_ITEMS:], rng)
    + _lfw_items(lfw, rng)
    + negatives()
  )


def match(found: Sequence[Box], truth: Sequence[Box]) -> list[tuple[int, int]]:
  """The (found, truth) index pairs of detections that match faces.

  A detection matches a face when its centre lies within half the face's
  side of the face's centre along both axes and its side is 0.5-2 times
  the face's. Detectors frame a face differently (brows to mouth, forehead
  to chin, with or without the ears), so intersection over union would
  fault a good detection for its framing; centre and size ask only that it
  found this face at about this scale. Pairs are taken one to one, nearest
  centres (relative to the face's side) first.
  """
  pairs = []
  for i, box in enumerate(found):
    for j, face in enumerate(truth):
      dx, dy = abs(box.cx - face.cx), abs(box.cy - face.cy)
      ratio = box.side / face.side
      if max(dx, dy) <= 0.5 * face.side and 0.5 <= ratio <= 2:
        pairs.append((math.hypot(dx, dy) / face.side, i, j))
  taken_found, taken_truth, matched = set(), set(), []
  for _, i, j in sorted(pairs):
    if i not in taken_found and j not in taken_truth:
      taken_found.add(i)
      taken_truth.add(j)
      matched.append((i, j))
  return matched


def _found_box(face) -> Box:
  """A detector's face as a Box: its square, else its box's square."""
  if hasattr(face, "side"):
    return Box(face.cx, face.cy, face.side)
  return Box.around(face.x, face.y, face.w, face.h)


def score(detect: Callable, items: Sequence[Item]) -> dict:
  """A face detector measured on labelled items.

  `detect(image)` returns the faces of an RGB image as objects with a
  square .cx .cy .side or a pixel box .x .y .w .h (`Box.around`); they are
  matched to the item's faces by `match`. Returns the counts of true positives, false
  positives and false negatives, precision and recall (1.0 where there is
  nothing to count), the mean milliseconds per image and per megapixel,
  and the names of the items with a missed face ("missed") or a false
  alarm ("false_alarms").
  """
  tp = fp = fn = 0
  seconds = megapixels = 0.0
  missed, false_alarms = [], []
  for item in items:
    start = time.perf_counter()
    found = detect(item.image)
    seconds += time.perf_counter() - start
    megapixels += item.image.shape[0] * item.image.shape[1] / 1e6
    boxes = [_found_box(face) for face in found]
    hits = len(match(boxes, item.boxes))
    tp += hits
    fp += len(boxes) - hits
    fn += len(item.boxes) - hits
    if hits < len(item.boxes):
      missed.append(item.name)
    if hits < len(boxes):
      false_alarms.append(item.name)
  return {
    "images": len(items),
    "tp": tp,
    "fp": fp,
    "fn": fn,
    "precision": tp / (tp + fp) if tp + fp else 1.0,
    "recall": tp / (tp + fn) if tp + fn else 1.0,
    "ms_per_image": 1000 * seconds / max(1, len(items)),
    "ms_per_megapixel": 1000 * seconds / megapixels if megapixels else 0.0,
    "missed": missed,
    "false_alarms": false_alarms,
  }


CLIP_KINDS = ("one", "leave_return", "two")


def _wave(t: float, period: float, phase: float = 0.0) -> float:
  return math.sin(2 * math.pi * t / period + phase)


def _leave_return_x(t: float, width: int, side: float) -> float:
  """The face's centre x at `t` s: it walks right, leaves the frame, stays
  wholly out (its cutout past the edge) for OUT_SECONDS and walks back."""
  # Its cutout, rolled up to 5 degrees, reaches 1.08 half-widths across.
  out = width + 1.1 * side * CONTEXT / 2
  times = [0.0, 1.4, 1.9, 1.9 + OUT_SECONDS, 2.4 + OUT_SECONDS]
  times.append(times[-1] + 1.4)
  places = [0.3 * width, 0.7 * width, out, out, 0.7 * width, 0.3 * width]
  return float(np.interp(t % times[-1], times, places))


def _clip_faces(
  kind: str, t: float, size: tuple[int, int]
) -> list[tuple[int, str, tuple[float, float], float, float]]:
  """Where the faces of a clip of `kind` are at `t` s: (person, photo,
  centre, side, roll) for each. Sides are in pixels of a 360-high frame,
  scaled with the frame."""
  width, height = size
  unit = height / 360
  if kind == "one":
    centre = (
      width * (0.5 + 0.3 * _wave(t, 8.0)),
      height * (0.5 + 0.08 * _wave(t, 5.0)),
    )
    side = unit * (170 + 30 * _wave(t, 6.0))
    return [(0, "astronaut", centre, side, MAX_CLIP_ROLL * _wave(t, 4.0))]
  if kind == "leave_return":
    side = unit * (160 + 10 * _wave(t, 3.0))
    centre = (
      _leave_return_x(t, width, side),
      height * (0.5 + 0.05 * _wave(t, 2.5)),
    )
    return [(0, "grace_hopper", centre, side, 5 * _wave(t, 3.3))]
  return [
    (
      0,
      "astronaut",
      (
        width * (0.27 + 0.05 * _wave(t, 5.0)),
        height * (0.5 + 0.1 * _wave(t, 3.7)),
      ),
      unit * (130 + 15 * _wave(t, 4.1)),
      8 * _wave(t, 4.5),
    ),
    (
      1,
      "grace_hopper",
      (
        width * (0.73 + 0.05 * _wave(t, 4.3, 1.0)),
        height * (0.5 + 0.1 * _wave(t, 3.1, 2.0)),
      ),
      unit * (125 + 15 * _wave(t, 3.6, 0.5)),
      8 * _wave(t, 5.2, 1.5),
    ),
  ]


def _clip_background(kind: str, size: tuple[int, int]) -> np.ndarray:
  if kind == "one":
    return _cover(data.rocket(), size)
  if kind == "leave_return":
    return _cover(data.coffee(), size)
  return _plain(size, (120, 140, 160), np.random.default_rng(SEED))


def write_clip(
  path: str,
  kind: str,
  *,
  frames: int,
  size: tuple[int, int] = (640, 360),
  fps: float = 25.0,
) -> list[list[tuple[int, Box]]]:
  """Writes an mp4 of moving faces, the same on every call; returns each
  frame's (person, Box) for every face whose centre is inside the frame.

  Kinds: "one" (the astronaut, 140-200 px, drifting across the rocket
  photo, zooming and rolling up to MAX_CLIP_ROLL degrees, always in view),
  "leave_return" (Grace Hopper, 150-170 px, walks out of the frame on the
  right, stays wholly out OUT_SECONDS, comes back) and "two" (the astronaut, person 0, and
  Grace Hopper, person 1, 110-145 px, each moving in their half of a plain
  frame). Sizes are for a 360-high frame and scale with it. Each face brings
  a square CONTEXT face sides wide from its photo.
  """
  if kind not in CLIP_KINDS:
    raise ValueError(f"clip kind {kind!r}: one of {CLIP_KINDS}")
  background = _clip_background(kind, size)
  cutouts = {name: cutout(*face) for name, face in face_photos().items()}
  writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
  if not writer.isOpened():
    raise RuntimeError(f"{path}: OpenCV cannot write mp4 here")
  width, height = size
  truth = []
  for index in range(frames):
    frame = background.copy()
    visible = []
    for person, name, centre, side, degrees in _clip_faces(
      kind, index / fps, size
    ):
      box = _draw(frame, cutouts[name], centre, side, degrees)
      if 0 <= box.cx < width and 0 <= box.cy < height:
        visible.append((person, box))
    writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    truth.append(visible)
  writer.release()
  return truth


def write_synthetic_video(
  path: str,
  *,
  frames: int,
  size: tuple[int, int] = (640, 480),
  fps: float = 25.0,
  face_side: int = 240,
  seed: int = 1,
) -> str:
  """An mp4 of one synthetic subject, its AUs moving, pasted on a grey background.

  The subject of seed 1 is one that the Haar cascades find in every frame
  (the synthetic faces are stylised: they miss many others). Returns `path`.
  """
  rng = np.random.default_rng(seed)
  identity = synthetic.sample_identity(rng)
  width, height = size
  left, top = (width - face_side) // 2, (height - face_side) // 2
  writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
  if not writer.isOpened():
    raise RuntimeError(f"{path}: OpenCV cannot write mp4 here")
  phases = rng.uniform(0, 2 * np.pi, 12)
  for index in range(frames):
    intensities = np.clip(5 * np.sin(index / 4 + phases), 0, 5)
    face = synthetic.render_face(identity, intensities, synthetic.Nuisance())
    frame = np.full((height, width, 3), 90, np.uint8)
    frame[top : top + face_side, left : left + face_side] = cv2.resize(
      face, (face_side, face_side), interpolation=cv2.INTER_LINEAR
    )
    writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
  writer.release()
  return path
