"""Live frames: a camera, a network stream, or a video file played at its own rate.

  with Latest(open_source("0")) as latest:   # or "rtsp://...", "clip.mp4"
    while (frame := latest.next()) is not None:
      ...                                     # LiveFrame: the newest one
  latest.seen, latest.dropped, latest.ended   # counts, and why it stopped

A background thread reads the source as fast as it gives frames and keeps
only the newest: a frame that arrives before the one before it was taken is
dropped and counted, so a slow consumer never builds a queue and memory
stays flat however long the stream runs. Each frame carries its capture
time (the wall clock when it was read, seconds since the epoch) and its
time in the stream (a file's own timestamps; else seconds since the first
frame).

A source that cannot be opened is one `DataError` line. A stream that gives
no frame for `stall_s` seconds (FFmpeg's own read timeout for a URL, the
consumer's wait for any source) ends, and `ended` says so: a live run stops
cleanly rather than retrying a camera or server that is gone; run the
command again once the source is back.
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
import time

import cv2
import numpy as np

from data_pipeline.sources.base import DataError
from drml_jax.predict import media

URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp")
STALL_S = 10.0  # seconds without a frame after which a stream has stalled
OPEN_TIMEOUT_S = 10.0  # seconds FFmpeg may take to open a URL


@dataclasses.dataclass(frozen=True)
class LiveFrame:
  index: int  # the frame's number from the source's start, dropped ones too
  capture_time: float  # when it was read: seconds since the epoch
  timestamp_s: float  # its time in the stream
  image: np.ndarray  # (H, W, 3) uint8 RGB


@dataclasses.dataclass
class Source:
  """An opened capture and how to read it."""

  name: str  # as the user gave it
  capture: cv2.VideoCapture
  paced: bool  # a file: frames released at their own timestamps
  stall_s: float = STALL_S


def _is_url(spec: str) -> bool:
  match = re.match(r"([a-z][a-z0-9+.-]*)://", spec, re.IGNORECASE)
  return bool(match) and match.group(1).lower() in URL_SCHEMES


def open_source(spec: str, stall_s: float = STALL_S) -> Source:
  """A camera index ("0"), a stream URL (rtsp, http, udp, tcp ...) or a
  video file, opened; DataError in one line when it cannot be."""
  if spec.isdigit():
    capture = cv2.VideoCapture(int(spec))
    if not capture.isOpened():
      raise DataError(
        f"camera {spec} cannot be opened (no such camera, or another program"
        " holds it): pass another index, or a stream URL or video file"
      )
    return Source(f"camera {spec}", capture, paced=False, stall_s=stall_s)
  if _is_url(spec):
    milliseconds = int(1000 * min(OPEN_TIMEOUT_S, stall_s))
    capture = cv2.VideoCapture(
      spec,
      cv2.CAP_FFMPEG,
      [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
        milliseconds,
        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
        int(1000 * stall_s),
      ],
    )
    if not capture.isOpened():
      raise DataError(
        f"{spec}: the stream cannot be opened (no answer, or not a video"
        " stream FFmpeg reads); check the address and that it plays"
      )
    return Source(spec, capture, paced=False, stall_s=stall_s)
  if not os.path.exists(spec):
    raise DataError(
      f"{spec}: no such file, and not a camera index or a stream URL"
      f" ({', '.join(URL_SCHEMES)}); check the source"
    )
  if not media.is_video(spec):
    raise DataError(
      f"{spec}: not a video file ({', '.join(media.VIDEO_EXTENSIONS)}); a"
      " live source is a camera index, a stream URL or a video file"
    )
  capture = cv2.VideoCapture(spec)
  if not capture.isOpened():
    raise DataError(
      f"{spec}: cannot open the video; check that it plays, or convert it"
      " to H.264 mp4"
    )
  return Source(spec, capture, paced=True, stall_s=stall_s)


class Latest:
  """The newest frame of a source, read in a background thread."""

  def __init__(self, source: Source):
    self.source = source
    self.seen = 0  # frames read
    self.taken = 0  # frames handed to the consumer
    self.ended: str | None = None  # why the source stopped, once it has
    self._newest: tuple | None = None  # (index, capture, stream time, BGR)
    self._changed = threading.Condition()
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._read, daemon=True)

  @property
  def dropped(self) -> int:
    """Frames read but never handed out: newer ones replaced them."""
    with self._changed:
      waiting = self._newest is not None
    return self.seen - self.taken - waiting

  def __enter__(self) -> Latest:
    self._thread.start()
    return self

  def __exit__(self, *exc) -> None:
    self._stop.set()
    # A capture blocked in FFmpeg's read is left to its timeout: the thread
    # is a daemon, and releasing a capture under a read is unsafe.
    self._thread.join(timeout=1.0)
    if not self._thread.is_alive():
      self.source.capture.release()

  def _read(self) -> None:
    capture, start = self.source.capture, None
    fps = capture.get(cv2.CAP_PROP_FPS)
    while not self._stop.is_set():
      ok, bgr = capture.read()
      now = time.time()
      if not ok or bgr is None:
        self._end(
          "the stream ended" if not self.source.paced else "end of file"
        )
        return
      if self.source.paced:
        stream_s = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000
        if stream_s <= 0 and self.seen and fps > 0:
          stream_s = self.seen / fps
        if start is None:
          start = now - stream_s
        delay = start + stream_s - time.time()
        if delay > 0 and self._stop.wait(delay):
          return
        now = time.time()
      else:
        start = now if start is None else start
        stream_s = now - start
      with self._changed:
        self._newest = (self.seen, now, stream_s, bgr)
        self.seen += 1
        self._changed.notify_all()

  def _end(self, reason: str) -> None:
    with self._changed:
      self.ended = self.ended or reason
      self._changed.notify_all()

  def next(self) -> LiveFrame | None:
    """The newest frame not yet taken, waiting for it; None once the source
    has ended or has stalled for `stall_s` (see `ended`)."""
    with self._changed:
      deadline = time.monotonic() + self.source.stall_s
      while self._newest is None and self.ended is None:
        left = deadline - time.monotonic()
        if left <= 0:
          self.ended = (
            f"no frame for {self.source.stall_s:g} s: the stream stalled"
          )
          break
        self._changed.wait(left)
      if self._newest is None:
        return None
      index, capture_time, stream_s, bgr = self._newest
      self._newest = None
      self.taken += 1
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return LiveFrame(index, capture_time, stream_s, rgb)
