"""Images and videos as a stream of RGB frames, never a whole video in memory.

  paths, errors = expand(["photos/", "clip.mp4"])
  for frame in frames("clip.mp4", every=5): ...  # Frame(file, index, timestamp_s, image)

Folders are read recursively, in sorted order, keeping the files whose
extension is an image's or a video's. Images are decoded with PIL; videos
with OpenCV frame by frame, timestamped by the container (the frame's
presentation time) or, where it gives none, by index / fps.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Iterator

import numpy as np

# FFmpeg's and OpenCV's own logs would add lines to a bad input's one-line error.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
import cv2  # pylint: disable=wrong-import-position

from data_pipeline.sources.base import DataError, read_rgb  # pylint: disable=wrong-import-position

IMAGE_EXTENSIONS = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".avi", ".mkv", ".mov", ".mp4")


@dataclasses.dataclass(frozen=True)
class Frame:
  file: str
  index: int  # the frame's number in its video (0 for an image)
  timestamp_s: float | None  # None for an image
  image: np.ndarray  # (H, W, 3) uint8 RGB


def _kind(path: str) -> str | None:
  extension = os.path.splitext(path)[1].lower()
  if extension in IMAGE_EXTENSIONS:
    return "image"
  return "video" if extension in VIDEO_EXTENSIONS else None


def is_video(path: str) -> bool:
  return _kind(path) == "video"


def _folder(folder: str) -> list[str]:
  found = []
  for root, dirs, files in os.walk(folder):
    dirs.sort()
    found += sorted(os.path.join(root, name) for name in files if _kind(name))
  return found


def expand(inputs: list[str]) -> tuple[list[str], list[DataError]]:
  """The media files of `inputs` in order, and an error for each bad input.

  A file is kept if its extension is an image's or a video's; a folder
  contributes its media files, recursively, sorted.
  """
  paths, errors = [], []
  extensions = ", ".join(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)
  for path in inputs:
    if os.path.isdir(path):
      found = _folder(path)
      if not found:
        errors.append(
          DataError(
            f"{path}: folder holds no image or video ({extensions});"
            " pass a folder with some"
          )
        )
      paths += found
    elif not os.path.exists(path):
      errors.append(
        DataError(f"{path}: no such file or folder; check the path")
      )
    elif _kind(path) is None:
      errors.append(
        DataError(
          f"{path}: not an image or video file ({extensions});"
          " convert it or leave it out"
        )
      )
    else:
      paths.append(path)
  return paths, errors


def frame_count(path: str, every: int = 1) -> int | None:
  """Frames `frames(path, every)` will yield, as the container tells (None: unknown)."""
  if not is_video(path):
    return 1
  capture = cv2.VideoCapture(path)
  count = (
    int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
  )
  capture.release()
  return math.ceil(count / every) if count > 0 else None


def frames(path: str, every: int = 1) -> Iterator[Frame]:
  """An image's one frame, or every `every`-th frame of a video, decoded one by one.

  Raises DataError for a file that cannot be decoded.
  """
  if not is_video(path):
    yield Frame(path, 0, None, read_rgb(path))
    return
  capture = cv2.VideoCapture(path)
  try:
    if not capture.isOpened():
      raise DataError(
        f"{path}: cannot open the video; check that it plays, or"
        " convert it to H.264 mp4"
      )
    fps = capture.get(cv2.CAP_PROP_FPS)
    index = 0
    while True:
      if index % every:
        if not capture.grab():
          break
      else:
        ok, bgr = capture.read()
        if not ok:
          break
        yield Frame(
          path,
          index,
          _timestamp(capture, index, fps),
          cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
        )
      index += 1
    if index == 0:
      raise DataError(
        f"{path}: no frame could be decoded; check that the video"
        " plays, or convert it to H.264 mp4"
      )
  finally:
    capture.release()


def _timestamp(capture, index: int, fps: float) -> float | None:
  """The frame just read's presentation time in seconds."""
  milliseconds = capture.get(cv2.CAP_PROP_POS_MSEC)
  if milliseconds > 0 or index == 0:
    return milliseconds / 1000
  return index / fps if fps > 0 else None
