"""The test media: boxes move with their pixels, the labelled set and the
clips are deterministic, `score` counts as documented."""

import dataclasses
import itertools
import math
import subprocess
import sys

import cv2
import numpy as np
import pytest

from drml_jax.benchmark import sample_media as sm
from drml_jax.predict import detection


@dataclasses.dataclass(frozen=True)
class Found:
  """A detection as a pixel box, as OpenCV gives it."""

  x: float
  y: float
  w: float
  h: float


def _dots(shape, points):
  """A black (H, W, 3) image with a 3x3 white square around each point."""
  image = np.zeros((*shape, 3), np.uint8)
  for x, y in points:
    image[int(y) - 1 : int(y) + 2, int(x) - 1 : int(x) + 2] = 255
  return image


def _brightest(image, near, radius=6):
  """The continuous centre of mass of the bright pixels around `near`."""
  x, y = int(near[0]), int(near[1])
  patch = image[y - radius : y + radius + 1, x - radius : x + radius + 1, 0]
  weights = patch.astype(float)
  rows, cols = np.mgrid[: patch.shape[0], : patch.shape[1]]
  return (
    x - radius + (weights * cols).sum() / weights.sum() + 0.5,
    y - radius + (weights * rows).sum() / weights.sum() + 0.5,
  )


def test_box_around_keeps_the_centre_and_averages_the_sides():
  box = sm.Box.around(10, 20, 40, 90)
  assert (box.cx, box.cy, box.side) == (30, 65, 60)


def test_mirror_moves_the_centre_to_width_minus_cx():
  image = _dots((100, 160), [(40.5, 30.5)])
  mirrored, (box,) = sm.mirror(image, [sm.Box(40.5, 30.5, 20)])
  assert box == sm.Box(160 - 40.5, 30.5, 20)
  assert _brightest(mirrored, (box.cx, box.cy)) == pytest.approx((119.5, 30.5))


def test_roll_rotates_other_centres_about_the_face():
  face, other = sm.Box(100.5, 100.5, 40), sm.Box(150.5, 100.5, 20)
  image = _dots((200, 240), [(150.5, 100.5)])
  rolled, boxes = sm.roll(image, [face, other], 90)
  assert boxes[0] == face
  # Counter-clockwise as seen: a point right of the centre goes above it.
  assert (boxes[1].cx, boxes[1].cy) == pytest.approx((100.5, 50.5))
  assert boxes[1].side == 20
  assert _brightest(rolled, (100.5, 50.5)) == pytest.approx(
    (100.5, 50.5), abs=0.05
  )
  _, (turned,) = sm.roll(image, [other], -30, centre=(100.5, 100.5))
  angle = math.radians(-30)
  expected = (100.5 + 50 * math.cos(angle), 100.5 - 50 * math.sin(angle))
  assert (turned.cx, turned.cy) == pytest.approx(expected)


def test_roll_fills_or_reflects_the_uncovered_corners():
  image = np.zeros((100, 200, 3), np.uint8)
  image[:, 100:] = 200
  box = sm.Box(100, 50, 20)
  # The top-left corner comes from above the right half: (149.5, -49).
  filled, _ = sm.roll(image, [box], 90)
  reflected, _ = sm.roll(image, [box], 90, border="reflect")
  assert tuple(filled[0, 0]) == (100, 100, 100)  # the mean colour
  assert tuple(reflected[0, 0]) == (200, 200, 200)
  with pytest.raises(ValueError, match="border"):
    sm.roll(image, [box], 45, border="wrap")


def test_scale_moves_and_resizes_the_box():
  image = _dots((100, 200), [(60.5, 40.5)])
  scaled, (box,) = sm.scale(image, [sm.Box(60.5, 40.5, 30)], 2.0)
  assert scaled.shape == (200, 400, 3)
  assert box == sm.Box(121, 81, 60)
  assert _brightest(scaled, (121, 81)) == pytest.approx((121, 81), abs=0.05)


@pytest.mark.parametrize("degrees", [30, -30])
def test_yaw_keeps_the_face_and_shrinks_the_receding_side(degrees):
  face, left = sm.Box(200.5, 100.5, 60), sm.Box(100.5, 100.5, 60)
  image = _dots((200, 400), [(200.5, 100.5), (100.5, 100.5)])
  turned, (moved_face, moved_left) = sm.yaw(image, [face, left], degrees)
  assert (moved_face.cx, moved_face.cy) == pytest.approx((200.5, 100.5))
  assert moved_face.side == 60
  # A plane turned about the face's vertical, the camera D away: a point
  # dx from the axis goes to cos * dx / depth, depth = 1 - sin * dx / D.
  theta, distance = math.radians(degrees), sm.YAW_DISTANCE * 400
  depth = 1 - math.sin(theta) * -100 / distance
  assert moved_left.cx == pytest.approx(200.5 - 100 * math.cos(theta) / depth)
  assert moved_left.cy == pytest.approx(100.5)
  assert moved_left.side == pytest.approx(60 / depth)
  # Positive degrees turn the face to its right: the image's left recedes.
  assert (moved_left.side < 60) == (degrees > 0)
  for box in (moved_face, moved_left):
    assert _brightest(turned, (box.cx, box.cy)) == pytest.approx(
      (box.cx, box.cy), abs=0.3
    )


def test_paste_puts_each_face_at_its_centre_and_side():
  source = np.zeros((120, 120, 3), np.uint8)
  source[40:80, 40:80] = (255, 0, 0)  # the face: Box(60, 60, 40)
  face = sm.cutout(source, sm.Box(60, 60, 40))
  assert face.rgba.shape == (80, 80, 4)
  background = np.full((300, 400, 3), 90, np.uint8)
  image, boxes = sm.paste(
    [face, face], background, [(100, 150), (300.5, 120.5)], [40, 80]
  )
  assert boxes == [sm.Box(100, 150, 40), sm.Box(300.5, 120.5, 80)]
  assert (background == 90).all()
  for box in boxes:
    half = box.side / 2
    top, bottom = round(box.cy - half) + 5, round(box.cy + half) - 5
    left, right = round(box.cx - half) + 5, round(box.cx + half) - 5
    inside = image[top:bottom, left:right].astype(int)
    assert np.abs(inside - (255, 0, 0)).max() <= 10
    assert image[round(box.cy), round(box.cx + half) + 4, 0] < 10
    assert image[round(box.cy - half) - 4, round(box.cx), 0] < 10
  assert tuple(image[5, 5]) == (90, 90, 90)


def test_labelled_set_is_deterministic_with_positives_and_negatives():
  first, second = sm.labelled_set(), sm.labelled_set()
  assert [item.name for item in first] == [item.name for item in second]
  for a, b in zip(first, second):
    assert np.array_equal(a.image, b.image) and a.boxes == b.boxes, a.name
  kinds = {}
  for item in first:
    kinds.setdefault(item.kind, []).append(item)
    height, width, channels = item.image.shape
    assert item.image.dtype == np.uint8 and channels == 3, item.name
    assert max(height, width) <= sm.LARGEST_SIDE, item.name
    for box in item.boxes:
      assert 0 < box.cx < width and 0 < box.cy < height, item.name
  assert 100 <= len(first) <= 200
  assert len(kinds["roll"]) == 3 * len(sm.ROLLS)
  assert len(kinds["lfw"]) == sm.LFW_ITEMS
  assert all(3 <= len(item.boxes) <= 5 for item in kinds["group"])
  for kind in ("upright", "mirror", "yaw", "small", "lfw"):
    assert all(len(item.boxes) == 1 for item in kinds[kind]), kind
  assert len(kinds["negative"]) >= 12
  assert not any(item.boxes for item in kinds["negative"] + kinds["cat"])


def test_match_takes_the_nearest_pairs_one_to_one():
  truth = [sm.Box(100, 100, 40), sm.Box(130, 100, 40)]
  found = [sm.Box(118, 100, 40), sm.Box(128, 100, 40)]
  assert sorted(sm.match(found, truth)) == [(0, 0), (1, 1)]
  assert sm.match([sm.Box(100, 121, 40)], truth[:1]) == []  # 21 > 20 below
  assert sm.match([sm.Box(100, 100, 81)], truth[:1]) == []  # over 2x
  assert sm.match([sm.Box(100, 100, 19)], truth[:1]) == []  # under 0.5x
  assert sm.match([sm.Box(119, 119, 79)], truth[:1]) == [(0, 0)]


def test_score_counts_hits_misses_and_false_alarms():
  image = np.zeros((100, 200, 3), np.uint8)
  items = [
    sm.Item("a/exact", image, [sm.Box(50, 50, 40)]),
    sm.Item("a/far", image.copy(), [sm.Box(50, 50, 40)]),
    sm.Item("b/none", image.copy(), []),
  ]
  answers = {
    id(items[0].image): [Found(30, 30, 40, 40), Found(32, 31, 40, 38)],
    id(items[1].image): [sm.Box(140, 50, 40)],  # a square: cx, cy, side
    id(items[2].image): [],
  }
  result = sm.score(lambda frame: answers[id(frame)], items)
  assert (result["tp"], result["fp"], result["fn"]) == (1, 2, 1)
  assert result["precision"] == pytest.approx(1 / 3)
  assert result["recall"] == pytest.approx(1 / 2)
  assert result["missed"] == ["a/far"]
  assert result["false_alarms"] == ["a/exact", "a/far"]
  assert result["images"] == 3
  assert result["ms_per_image"] >= 0
  empty = sm.score(lambda frame: [], items[2:])
  assert (empty["precision"], empty["recall"]) == (1.0, 1.0)


def _read(path):
  capture = cv2.VideoCapture(path)
  frames = []
  while True:
    ok, frame = capture.read()
    if not ok:
      break
    frames.append(frame)
  capture.release()
  return frames


@pytest.mark.slow
def test_one_face_clip_has_the_requested_frames_and_the_face_in_each(
  tmp_path,
):
  path = str(tmp_path / "one.mp4")
  truth = sm.write_clip(path, "one", frames=400)
  frames = _read(path)
  assert len(frames) == len(truth) == 400
  assert frames[0].shape == (360, 640, 3)
  for visible in truth:
    ((person, box),) = visible
    assert person == 0 and 138 <= box.side <= 202
    assert box.side / 2 <= box.cx <= 640 - box.side / 2
    assert box.side / 2 <= box.cy <= 360 - box.side / 2
  steps = [
    math.dist((a[0][1].cx, a[0][1].cy), (b[0][1].cx, b[0][1].cy))
    for a, b in itertools.pairwise(truth)
  ]
  assert 0 < max(steps) < 15  # smooth: a few pixels a frame
  again = sm.write_clip(str(tmp_path / "again.mp4"), "one", frames=50)
  assert again == truth[:50]


def test_leave_return_clip_loses_the_face_for_a_while(tmp_path):
  path = str(tmp_path / "leave.mp4")
  truth = sm.write_clip(path, "leave_return", frames=125)
  frames = _read(path)
  assert len(frames) == 125
  present = [bool(visible) for visible in truth]
  assert all(person == 0 for visible in truth for person, _ in visible)
  gone = [index for index, here in enumerate(present) if not here]
  assert gone == list(range(gone[0], gone[-1] + 1))  # one stretch
  assert present[0] and present[-1]
  assert sm.OUT_SECONDS * 25 <= len(gone) <= 1.5 * 25
  middle = (gone[0] + gone[-1]) // 2
  # Wholly out: the frames there show the same background.
  still = np.abs(
    frames[middle - 2].astype(int) - frames[middle + 2].astype(int)
  )
  moving = np.abs(frames[2].astype(int) - frames[6].astype(int))
  assert still.mean() < 1.5 < moving.mean()


def test_two_face_clip_keeps_two_people_apart(tmp_path):
  path = str(tmp_path / "two.mp4")
  truth = sm.write_clip(path, "two", frames=60, size=(640, 360), fps=25.0)
  assert len(_read(path)) == 60
  for visible in truth:
    assert [person for person, _ in visible] == [0, 1]
    (_, left), (_, right) = visible
    assert right.cx - left.cx > (left.side + right.side) / 2
  with pytest.raises(ValueError, match="clip kind"):
    sm.write_clip(str(tmp_path / "x.mp4"), "three", frames=1)


def test_frontal_haar_finds_the_upright_frontal_photos():
  photos = sm.face_photos()
  upright = [
    sm.Item(f"upright/{name}", image, [box])
    for name, (image, box) in photos.items()
    if name != "cameraman"
  ]
  result = sm.score(detection.Detector(), upright)
  assert (result["tp"], result["fn"]) == (2, 0)


def test_the_module_imports_no_deep_learning_framework():
  code = (
    "import sys, drml_jax.benchmark.sample_media;"
    "print(sorted({'jax', 'tensorflow', 'torch'} & set(sys.modules)))"
  )
  result = subprocess.run(
    [sys.executable, "-c", code], capture_output=True, text=True, check=True
  )
  assert result.stdout.strip() == "[]"
