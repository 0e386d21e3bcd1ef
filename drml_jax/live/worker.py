"""The one thread that serves every live client: frames decoded, faces found, AUs predicted.

  worker = Worker(analysis.Analyst(predictor)); worker.start()
  replaced = worker.put_frame(connection, pending)  # a WebSocket's newest frame
  worker.put_photo(pending)                         # a POST's image
  ... await pending.answer                          # a record, or Refused

Each round takes every connection's newest frame and the waiting photos (at
most ROUND_JOBS), decodes them (`decode_frame`: MAX_FRAME_BYTES,
MAX_FRAME_SIDE) and runs all their faces through the model as one batch, so
clients served together share its cost. A connection holds at most one
frame waiting: a newer one replaces it, and its sender counts the replaced
one as dropped, so a client that floods gets its newest frames answered and
nothing piles up. At most MAX_WAITING_PHOTOS photos wait; another is
refused (503, busy). Answers are set on the futures of the server's event
loop.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import io
import threading
import time

import numpy as np
from PIL import Image

from data_pipeline.errors import first_line
from data_pipeline.sources.base import DataError
from drml_jax.live import analysis
from drml_jax.predict import media, tracking

MAX_FRAME_BYTES = 4 * 1024 * 1024
MAX_FRAME_SIDE = 4096  # pixels, either side
MAX_WAITING_PHOTOS = 8  # POST /aus requests waiting for the worker
ROUND_JOBS = 16  # frames the worker takes in one round


class Refused(Exception):
  """A frame or request the server will not process: an HTTP status and why."""

  def __init__(self, status: int, reason: str):
    super().__init__(reason)
    self.status = status
    self.reason = reason


def decode_frame(data: bytes) -> np.ndarray:
  """A received frame's bytes -> (H, W, 3) uint8 RGB; Refused otherwise."""
  if not data:
    raise Refused(400, "empty frame: send the bytes of a JPEG, PNG or WebP")
  if len(data) > MAX_FRAME_BYTES:
    raise Refused(
      413,
      f"frame of {len(data)} bytes; the limit is {MAX_FRAME_BYTES}: send a"
      " smaller image (faces are cropped to 200x200)",
    )
  try:
    with Image.open(io.BytesIO(data)) as header:
      width, height = header.size
  except Image.UnidentifiedImageError:
    raise Refused(
      400, "not an image PIL can read: send a JPEG, PNG, WebP or BMP"
    ) from None
  except Exception as error:  # pylint: disable=broad-except
    # PIL raises what a damaged header leads to.
    raise Refused(
      400,
      f"cannot read the image ({first_line(error, 120)}): send a JPEG,"
      " PNG, WebP or BMP",
    ) from None
  if max(width, height) > MAX_FRAME_SIDE:
    raise Refused(
      413,
      f"frame of {width}x{height} pixels; the limit is {MAX_FRAME_SIDE} a"
      " side: send a smaller image",
    )
  try:
    image, _ = media.decode_image(io.BytesIO(data), "frame")
  except DataError as error:
    raise Refused(400, str(error)) from None
  return image


@dataclasses.dataclass
class Pending:
  """A frame waiting for the worker, and where its answer goes."""

  data: bytes
  received: float  # time.time() when it arrived
  seconds: float  # its time on its connection's clock
  index: int
  answer: asyncio.Future
  viewer: tracking.Tracker | None  # None: a photo


class Worker:
  """The one thread that decodes frames, finds faces and runs the model."""

  def __init__(self, analyst: analysis.Analyst):
    self.analyst = analyst
    self.aus = analyst.predictor.aus
    self._frames: collections.OrderedDict = collections.OrderedDict()
    self._photos: collections.deque = collections.deque()
    self._ready = threading.Condition()
    self._stop = False
    self._thread = threading.Thread(target=self._run, daemon=True)

  def start(self) -> None:
    self._thread.start()

  def stop(self) -> None:
    with self._ready:
      self._stop = True
      self._ready.notify()
    self._thread.join()

  def put_frame(self, connection: int, pending: Pending) -> Pending | None:
    """Queues a connection's frame; returns the frame it replaced, if any."""
    with self._ready:
      replaced = self._frames.pop(connection, None)
      self._frames[connection] = pending
      self._ready.notify()
    return replaced

  def forget(self, connection: int) -> None:
    with self._ready:
      self._frames.pop(connection, None)

  def put_photo(self, pending: Pending) -> None:
    """Queues a photo; Refused (503) when MAX_WAITING_PHOTOS already wait."""
    with self._ready:
      if len(self._photos) >= MAX_WAITING_PHOTOS:
        raise Refused(
          503,
          f"busy: {len(self._photos)} images are waiting; retry in a moment",
        )
      self._photos.append(pending)
      self._ready.notify()

  def _take(self) -> list[Pending] | None:
    with self._ready:
      while not (self._frames or self._photos or self._stop):
        self._ready.wait()
      if self._stop:
        return None
      taken = []
      while self._frames and len(taken) < ROUND_JOBS:
        taken.append(self._frames.popitem(last=False)[1])
      while self._photos and len(taken) < ROUND_JOBS:
        taken.append(self._photos.popleft())
      return taken

  def _run(self) -> None:
    while (taken := self._take()) is not None:
      jobs, answers = [], {}
      for pending in taken:
        try:
          image = decode_frame(pending.data)
        except Refused as refused:
          answers[id(pending)] = refused
          continue
        jobs.append((pending, image))
      try:
        frames = self.analyst(
          [
            analysis.Job(p.viewer, "client", p.index, p.seconds, image)
            for p, image in jobs
          ]
        )
      except Exception as error:  # pylint: disable=broad-except
        # The worker serves on; each of the round's clients is told.
        frames = [Refused(500, first_line(error)) for _ in jobs]
      ready = time.time()
      for (pending, _), frame in zip(jobs, frames):
        answers[id(pending)] = (
          frame
          if isinstance(frame, Refused)
          else analysis.record(frame, self.aus, pending.received, ready)
        )
      for pending in taken:
        _resolve(pending.answer, answers[id(pending)])


def _resolve(future: asyncio.Future, value) -> None:
  """Sets a future of the server's loop from the worker's thread."""

  def settle():
    if not future.done():
      future.set_result(value)

  future.get_loop().call_soon_threadsafe(settle)
