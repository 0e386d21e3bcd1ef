"""Clips of moving faces with their ground truth, and a synthetic face's clip."""

from __future__ import annotations

import math

import cv2
import numpy as np
from skimage import data

from data_pipeline import synthetic
from drml_jax.benchmark.sample_media.photos import (
  CONTEXT,
  SEED,
  Box,
  cover,
  cutout,
  draw,
  face_photos,
  plain,
)

OUT_SECONDS = 0.6  # "leave_return": how long the face is wholly outside


MAX_CLIP_ROLL = 15  # degrees: the roll of the face of clip "one"


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
    return cover(data.rocket(), size)
  if kind == "leave_return":
    return cover(data.coffee(), size)
  return plain(size, (120, 140, 160), np.random.default_rng(SEED))


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
      box = draw(frame, cutouts[name], centre, side, degrees)
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


def write_y4m(path: str, video: str, frames: int | None = None) -> str:
  """The frames of `video` as a raw YUV4MPEG2 file (4:2:0), the form
  Chromium's fake camera plays (--use-file-for-fake-video-capture), at the
  video's frame rate; `frames` of them at most. Returns `path`."""
  capture = cv2.VideoCapture(video)
  fps = round(capture.get(cv2.CAP_PROP_FPS)) or 25
  width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
  height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
  with open(path, "wb") as out:
    out.write(
      f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode()
    )
    count = 0
    while frames is None or count < frames:
      ok, bgr = capture.read()
      if not ok:
        break
      out.write(b"FRAME\n")
      out.write(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).tobytes())
      count += 1
  capture.release()
  return path
