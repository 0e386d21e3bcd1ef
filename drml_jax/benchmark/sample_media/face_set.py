"""A labelled set of images with and without faces, and a detector's score on it.

`labelled_set()`: the face photos transformed (mirrored, rolled, turned
toward profile, small), groups of faces, LFW faces, and images without a
face (`negatives()`); `score(detect, items)`: precision, recall and time.
"""

from __future__ import annotations

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
from skimage import data

from drml_jax.benchmark.sample_media.photos import (
  LFW_FACE,
  SEED,
  Box,
  Cutout,
  as_rgb,
  cover,
  cutout,
  face_photos,
  inset,
  lfw_crops,
  mirror,
  paste,
  plain,
  roll,
  scale,
  with_alpha,
  yaw,
)

LARGEST_SIDE = 1024  # no labelled image is larger


ROLLS = (-30, -20, -10, 10, 20, 30)  # degrees, counter-clockwise


YAWS = (-45, -25, 25, 45)  # degrees; positive turns the face to its right


SMALL_SIDES = (64, 40)  # face sides in pixels, in a 1024x768 background


LFW_ITEMS = 48


LFW_SIDES = (96, 128)  # the range of an LFW face's side, upscaled


LFW_CANVAS = (320, 320)


MAX_GROUP_ROLL = 10  # degrees


class Item(NamedTuple):
  """A labelled image: name "kind/detail", (H, W, 3) uint8 RGB, its faces."""

  name: str
  image: np.ndarray
  boxes: list[Box]

  @property
  def kind(self) -> str:
    return self.name.split("/")[0]


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
  return cv2.resize(as_rgb(shaded), (720, 546), interpolation=cv2.INTER_CUBIC)


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
    name: as_rgb(getattr(data, name)())
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
  size = (LARGEST_SIDE, LARGEST_SIDE * 3 // 4)
  backgrounds = [data.rocket(), data.coffee(), data.hubble_deep_field()]
  items = []
  for (name, (image, box)), background in zip(photos.items(), backgrounds):
    background = cover(background, size)
    for side in SMALL_SIDES:
      shrunk = scale(image, [box], side / box.side)
      items.append(Item(f"small/{name}-{side}", *inset(*shrunk, background)))
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
  grey = plain((960, 400), (170, 180, 190), rng)
  items = [
    _group(name, members, cover(as_rgb(background), size), rows, rng)
    for (name, members, background, rows), size in zip(groups, sizes)
  ]
  items.append(
    _group("plain", [grace_hopper, lfw[12], cameraman], grey, 1, rng)
  )
  return items


def _lfw_items(lfw: Sequence[Cutout], rng: np.random.Generator) -> list[Item]:
  """The first LFW_ITEMS LFW faces, each upscaled to a side in LFW_SIDES
  and pasted at a random place, whole, on bricks, grass, gravel or a plain
  random colour."""
  textures = [as_rgb(data.brick()), as_rgb(data.grass()), as_rgb(data.gravel())]
  items = []
  for index in range(LFW_ITEMS):
    texture = index % (len(textures) + 1)
    if texture == len(textures):
      background = plain(LFW_CANVAS, rng.integers(60, 220, 3), rng)
    else:
      background = cover(textures[texture], LFW_CANVAS)
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
