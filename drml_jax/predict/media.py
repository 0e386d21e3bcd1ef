"""Images and videos as a stream of RGB frames, never a whole video in memory.

  paths, errors = expand(["photos/", "clip.mp4"])
  for frame in frames("clip.mp4", every=5): ...  # Frame(file, index, timestamp_s, image)

Folders are read recursively, in sorted order, keeping the files whose
extension is an image's or a video's; a folder with none is one error that
counts what it holds. A bad file is one `DataError` line naming it and saying
what to do; the other inputs are still read.

Images are decoded with PIL (`read_image`) to 8-bit RGB: upright by their EXIF
orientation, 16-bit ones scaled by 1/257 (PIL itself keeps the high byte of
16-bit RGB, within 1 of that), CMYK, grayscale, palette and alpha ones
converted (alpha dropped). An image whose longest side exceeds MAX_SIDE is
downscaled to it (INTER_AREA), a JPEG already while decoding (PIL's draft, by
1/2, 1/4 or 1/8): faces are cropped to 200x200 and detected at 640 pixels, so
nothing is lost but memory and time (`Frame.scale` takes face boxes back
to the file's pixels). PIL refuses images above twice `Image.MAX_IMAGE_PIXELS` (about
179 Mpx) as decompression bombs, before decoding.

Videos are decoded by OpenCV frame by frame, timestamped by the container (the
frame's presentation time) or, where it gives none, by index / fps. A frame
that fails to decode before the container's frame count is counted and
skipped, and the frames after it are still read; the lost ones are named in
one error once the rest is yielded. FFmpeg conceals much damage rather than
failing: in an mp4 a damaged frame may decode with grey or stale blocks, and
the frames that depend on a lost one decode from the last good picture until
the next keyframe. In an AVI whose chunk headers are damaged FFmpeg skips to
the next chunk without a failure, so the later frames are numbered early and
the loss shows only as missing frames at the end.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
import struct
import warnings
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

# FFmpeg's and OpenCV's own logs would add lines to a bad input's one-line error.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
import cv2  # pylint: disable=wrong-import-position

# The same, where another module imported OpenCV first.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

from data_pipeline.errors import first_line  # pylint: disable=wrong-import-position
from data_pipeline.sources.base import DataError  # pylint: disable=wrong-import-position

IMAGE_EXTENSIONS = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".avi", ".mkv", ".mov", ".mp4")
EXTENSIONS = ", ".join(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)
MAX_SIDE = 4096  # pixels: larger images are downscaled to this longest side
# Consecutive undecodable frames after which the rest of a video counts as lost
# (a damaged header can claim billions of frames, and each failed read takes
# time: benchmarks/README.md#predict-speed).
MAX_LOST_RUN = 100_000
SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")


@dataclasses.dataclass(frozen=True)
class Frame:
  file: str
  index: int  # the frame's number in its video (0 for an image)
  timestamp_s: float | None  # None for an image
  image: np.ndarray  # (H, W, 3) uint8 RGB
  scale: float = 1.0  # the file's pixels per pixel of `image` (> 1: downscaled)


def _kind(path: str) -> str | None:
  extension = os.path.splitext(path)[1].lower()
  if extension in IMAGE_EXTENSIONS:
    return "image"
  return "video" if extension in VIDEO_EXTENSIONS else None


def is_video(path: str) -> bool:
  return _kind(path) == "video"


def _folder(folder: str) -> tuple[list[str], collections.Counter]:
  """The folder's media files, recursively, sorted; and the other files'
  extensions, counted. Reads directory entries only, opening no file."""
  found, others = [], collections.Counter()
  for root, dirs, files in os.walk(folder):
    dirs.sort()
    media = []
    for name in files:
      if _kind(name):
        media.append(os.path.join(root, name))
      else:
        others[os.path.splitext(name)[1].lower() or "no extension"] += 1
    found += sorted(media)
  return found, others


def _no_media(folder: str, others: collections.Counter) -> DataError:
  total = sum(others.values())
  if not total:
    return DataError(
      f"{folder}: empty folder; pass a folder with images or videos"
      f" ({EXTENSIONS})"
    )
  held = ", ".join(f"{n} {ext}" for ext, n in others.most_common(3))
  if len(others) > 3:
    held += ", ..."
  return DataError(
    f"{folder}: no image or video among its {total}"
    f" file{'s' if total > 1 else ''} ({held});"
    f" pass a folder with some ({EXTENSIONS})"
  )


def expand(inputs: list[str]) -> tuple[list[str], list[DataError]]:
  """The media files of `inputs` in order, and an error for each bad input.

  A file is kept if its extension is an image's or a video's; a folder
  contributes its media files, recursively, sorted, skipping other files
  silently unless it holds no media at all.
  """
  paths, errors = [], []
  for path in inputs:
    if os.path.isdir(path):
      found, others = _folder(path)
      if not found:
        errors.append(_no_media(path, others))
      paths += found
    elif not os.path.exists(path):
      errors.append(
        DataError(f"{path}: no such file or folder; check the path")
      )
    elif _kind(path) is None:
      errors.append(
        DataError(
          f"{path}: not an image or video file ({EXTENSIONS});"
          " convert it or leave it out"
        )
      )
    else:
      paths.append(path)
  return paths, errors


def _check_not_empty(path: str) -> None:
  try:
    size = os.path.getsize(path)
  except OSError:
    raise DataError(f"{path}: no such file; check the path") from None
  if size == 0:
    raise DataError(
      f"{path}: empty file (0 bytes); replace it with a complete copy"
    )


def _to_rgb(image: Image.Image) -> np.ndarray:
  """(H, W, 3) uint8 RGB of a loaded image, 16-bit gray scaled by 1/257."""
  if image.mode == "RGB":
    return np.asarray(image)  # convert() would copy a large image once more
  if image.mode not in SIXTEEN_BIT_MODES:
    return np.asarray(image.convert("RGB"))
  values = np.clip(np.asarray(image), 0, 65535).astype(np.uint32)
  gray = ((values + 128) // 257).astype(np.uint8)  # value / 257, rounded
  return np.repeat(gray[..., None], 3, axis=-1)


def _fit(rgb: np.ndarray) -> np.ndarray:
  """`rgb` downscaled to MAX_SIDE on its longest side if it is larger."""
  height, width = rgb.shape[:2]
  scale = MAX_SIDE / max(height, width)
  if scale >= 1:
    return rgb
  size = (max(1, round(width * scale)), max(1, round(height * scale)))
  return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def read_image(path: str) -> tuple[np.ndarray, float]:
  """Decodes an image file to (H, W, 3) uint8 RGB, upright, its longest side
  at most MAX_SIDE, and the file's pixels per pixel of it; or raises
  `DataError`."""
  _check_not_empty(path)
  return decode_image(path, path)


def decode_image(source: str | BinaryIO, path: str) -> tuple[np.ndarray, float]:
  """`read_image` of a file or a file object (bytes received: a live frame),
  named `path` in its errors."""
  try:
    # PIL's warnings (a size near the bomb limit, odd EXIF) are about images it
    # still decodes; they would add lines to the output.
    with warnings.catch_warnings():
      warnings.filterwarnings("ignore", module="PIL")
      with Image.open(source) as image:
        width, height = image.size
        scale = MAX_SIDE / max(width, height)
        if scale < 1:  # a JPEG decodes at 1/2, 1/4 or 1/8 when that is enough
          image.draft(
            "RGB", (math.ceil(width * scale), math.ceil(height * scale))
          )
        ImageOps.exif_transpose(image, in_place=True)
        rgb = _to_rgb(image)
        longest = max(width, height)
  except Image.DecompressionBombError as error:
    raise DataError(
      f"{path}: image too large to decode ({first_line(error)});"
      " downscale it (faces are cropped to 200x200 anyway)"
    ) from None
  except Image.UnidentifiedImageError:
    raise DataError(
      f"{path}: not an image PIL can read, despite its extension; check the"
      " file, or convert it to PNG or JPEG"
    ) from None
  except (OSError, ValueError, EOFError, SyntaxError, struct.error) as error:
    raise DataError(
      f"{path}: cannot decode the image ({first_line(error, 200)});"
      " check that it opens, or convert it to PNG or JPEG"
    ) from None
  rgb = _fit(rgb)
  return rgb, longest / max(rgb.shape[:2])


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


def frame_size(path: str) -> tuple[int, int] | None:
  """(width, height) of an image's or a video's frames, from its header
  (None: unreadable, which reading it will report)."""
  try:
    if not is_video(path):
      with Image.open(path) as image:
        return image.size
    capture = cv2.VideoCapture(path)
    size = (
      int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
      int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
    )
    capture.release()
    return size if min(size) > 0 else None
  except (OSError, ValueError):
    return None


def _spans(runs: list[list[int]], limit: int = 5) -> str:
  """[first, last] runs of frame numbers as "3, 7-9, 12", the first `limit`."""
  text = ", ".join(
    str(first) if first == last else f"{first}-{last}"
    for first, last in runs[:limit]
  )
  rest = sum(last - first + 1 for first, last in runs[limit:])
  return f"{text} and {rest} more" if rest else text


def frames(path: str, every: int = 1) -> Iterator[Frame]:
  """An image's one frame, or every `every`-th frame of a video, decoded one by one.

  Raises DataError for a file that cannot be decoded, and for a video with
  undecodable frames after yielding all the others.
  """
  if not is_video(path):
    yield Frame(path, 0, None, *read_image(path))
    return
  _check_not_empty(path)
  capture = cv2.VideoCapture(path)
  try:
    if not capture.isOpened():
      raise DataError(
        f"{path}: cannot open the video; check that it plays, or"
        " convert it to H.264 mp4"
      )
    fps = capture.get(cv2.CAP_PROP_FPS)
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    index, decoded, lost = 0, 0, []  # lost: [first, last] runs of frames
    while True:
      if index % every:
        ok, bgr = capture.grab(), None
      else:
        ok, bgr = capture.read()
      if ok:
        decoded += 1
        if bgr is not None:
          yield Frame(
            path,
            index,
            _timestamp(capture, index, fps),
            cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
          )
      elif index >= count:
        break
      elif not lost or lost[-1][1] < index - 1:
        lost.append([index, index])
      elif index - lost[-1][0] < MAX_LOST_RUN:
        lost[-1][1] = index
      else:
        lost[-1][1] = count - 1
        break
      index += 1
    if not decoded:
      raise DataError(
        f"{path}: no frame could be decoded; check that the video"
        " plays, or convert it to H.264 mp4"
      )
    if lost:
      plural = "s" if len(lost) > 1 or lost[0][0] < lost[0][1] else ""
      raise DataError(
        f"{path}: frame{plural} {_spans(lost)} of {count} could not be"
        " decoded (the file is damaged there); the rows of the other frames"
        " are written"
      )
  finally:
    capture.release()


def _timestamp(capture, index: int, fps: float) -> float | None:
  """The frame just read's presentation time in seconds."""
  milliseconds = capture.get(cv2.CAP_PROP_POS_MSEC)
  if milliseconds > 0 or index == 0:
    return milliseconds / 1000
  return index / fps if fps > 0 else None
