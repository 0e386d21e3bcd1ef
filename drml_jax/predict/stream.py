"""Files -> frames -> faces -> AU predictions, decoding overlapped with the model.

  stream = Stream(predictor, detect=True, every=1)
  for frame in stream(paths, on_error=report):  # FrameAUs, in input order
    rows = csv_rows(frame, len(predictor.aus))
  stream.timings                                # seconds in decode, detect, model

A background thread decodes each file's frames and finds and crops their
faces, into a bounded queue; the caller's thread runs the model on full
batches of crops and yields each frame once all its faces are predicted.
Both sides release the GIL in their heavy parts (FFmpeg, OpenCV, XLA).
"""

from __future__ import annotations

import collections
import dataclasses
import os
import queue
import tempfile
import threading
import time
from typing import Callable, Iterable, Iterator

import cv2
import numpy as np

from data_pipeline import synthetic
from data_pipeline.pipeline import INPUT_SIZE
from data_pipeline.sources.base import IMAGE_SIZE, DataError
from drml_jax.predict import faces, media
from drml_jax.predict.predictor import Predictor

COLUMNS = (
  "file",
  "frame",
  "timestamp_s",
  "face_id",
  "face_x",
  "face_y",
  "face_w",
  "face_h",
  "face_score",
  "success",
)
QUEUE_FRAMES = 64  # decoded frames waiting for the model
MAX_PENDING = 256  # frames held back for a batch before a partial one is run


@dataclasses.dataclass
class FaceAUs:
  """A face, its 200x200 crop and, once predicted, its AUs."""

  face: faces.Face
  crop: np.ndarray
  probabilities: np.ndarray | None = None
  occurrences: np.ndarray | None = None


@dataclasses.dataclass
class FrameAUs:
  """A frame (an image's only one, or a video's) and its faces, left to right."""

  file: str
  index: int
  timestamp_s: float | None
  faces: list[FaceAUs]


@dataclasses.dataclass
class Timings:
  """Frames yielded, and seconds spent decoding, detecting and cropping, in the model."""

  frames: int = 0
  decode_s: float = 0.0
  detect_s: float = 0.0
  model_s: float = 0.0


def au_columns(aus: Iterable[int]) -> list[str]:
  """Probabilities then occurrences, named as OpenFace and Py-Feat do: AU01 .. AU01_c .."""
  aus = list(aus)
  return [f"AU{au:02d}" for au in aus] + [f"AU{au:02d}_c" for au in aus]


def csv_rows(frame: FrameAUs, num_aus: int) -> list[list]:
  """A frame's CSV cells: one row per face, or one with success 0 and no AUs."""
  where = [
    frame.file,
    frame.index,
    "" if frame.timestamp_s is None else f"{frame.timestamp_s:.3f}",
  ]
  if not frame.faces:
    return [where + [""] * 6 + [0] + [""] * (2 * num_aus)]
  return [
    where
    + [
      face_id,
      item.face.x,
      item.face.y,
      item.face.w,
      item.face.h,
      "" if item.face.score is None else item.face.score,
      1,
    ]
    + [f"{p:.6f}" for p in item.probabilities]
    + [int(o) for o in item.occurrences]
    for face_id, item in enumerate(frame.faces)
  ]


class _Failure:
  """An unexpected exception of the decoding thread, re-raised by the caller's."""

  def __init__(self, error: BaseException):
    self.error = error


_END = object()


class Stream:
  """Predicts the AUs of every face in a sequence of media files."""

  def __init__(
    self, predictor: Predictor, *, detect: bool = True, every: int = 1
  ):
    self.predictor = predictor
    self.detector = faces.Detector() if detect else None
    self.every = every
    self.timings = Timings()

  def _faces(self, image: np.ndarray) -> list[FaceAUs]:
    if self.detector is None:
      return [FaceAUs(*faces.aligned(image))]
    return [
      FaceAUs(face, faces.crop(image, face)) for face in self.detector(image)
    ]

  def _frames(self, paths: list[str]) -> Iterator[FrameAUs | DataError]:
    """Each file's frames with their cropped faces, or the file's error."""
    for path in paths:
      frames = media.frames(path, self.every)
      try:
        while True:
          start = time.perf_counter()
          frame = next(frames, None)
          self.timings.decode_s += time.perf_counter() - start
          if frame is None:
            break
          start = time.perf_counter()
          found = self._faces(frame.image)
          self.timings.detect_s += time.perf_counter() - start
          yield FrameAUs(frame.file, frame.index, frame.timestamp_s, found)
      except DataError as error:
        yield error

  def _produce(
    self, paths: list[str], out: queue.Queue, stop: threading.Event
  ) -> None:
    def put(item) -> bool:
      while not stop.is_set():
        try:
          out.put(item, timeout=0.1)
          return True
        except queue.Full:
          pass
      return False

    try:
      for item in self._frames(paths):
        if not put(item):
          return
      put(_END)
    except BaseException as error:  # pylint: disable=broad-except
      put(_Failure(error))

  def _predict(self, waiting: list[FaceAUs]) -> None:
    start = time.perf_counter()
    probabilities, occurrences = self.predictor(
      np.stack([item.crop for item in waiting])
    )
    self.timings.model_s += time.perf_counter() - start
    for item, p, o in zip(waiting, probabilities, occurrences):
      item.probabilities, item.occurrences = p, o

  def _ready(self, pending: collections.deque) -> Iterator[FrameAUs]:
    while pending and all(
      item.probabilities is not None for item in pending[0].faces
    ):
      self.timings.frames += 1
      yield pending.popleft()

  def __call__(
    self, paths: list[str], on_error: Callable[[DataError], None]
  ) -> Iterator[FrameAUs]:
    """Every frame of `paths` with its faces' AUs; a file that fails goes to `on_error`."""
    out = queue.Queue(maxsize=QUEUE_FRAMES)
    stop = threading.Event()
    thread = threading.Thread(
      target=self._produce, args=(paths, out, stop), daemon=True
    )
    thread.start()
    pending, waiting = collections.deque(), []
    batch_size = self.predictor.batch_size
    try:
      while (item := out.get()) is not _END:
        if isinstance(item, DataError):
          on_error(item)
          continue
        if isinstance(item, _Failure):
          raise item.error
        pending.append(item)
        waiting += item.faces
        while len(waiting) >= batch_size:
          self._predict(waiting[:batch_size])
          waiting = waiting[batch_size:]
        if waiting and len(pending) > MAX_PENDING:
          self._predict(waiting)
          waiting = []
        yield from self._ready(pending)
      if waiting:
        self._predict(waiting)
      yield from self._ready(pending)
    finally:
      stop.set()
      thread.join()


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

  The subject of seed 1 is one that the Haar cascade finds in every frame
  (the synthetic faces are stylised: it misses many others). Returns `path`.
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


def benchmark_predict(
  model, *, frames: int, batch_size: int, input_size: int = INPUT_SIZE
) -> dict:
  """Frames/s of `--faces detect` on a synthetic 640x480 video, and where the time goes.

  Writes the video to a temporary folder, compiles first (not timed), then
  predicts every frame. decode_s and detect_s run in the background thread,
  overlapped with model_s (preprocessing and the forward pass).
  """
  aus = range(1, model.fc3.out_features + 1)  # names only
  predictor = Predictor.of(
    model, aus, batch_size=batch_size, input_size=input_size
  )
  predictor(np.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8))  # compiles
  with tempfile.TemporaryDirectory() as folder:
    path = write_synthetic_video(
      os.path.join(folder, "synthetic.mp4"), frames=frames
    )
    stream = Stream(predictor)
    start = time.perf_counter()
    found = sum(len(frame.faces) for frame in stream([path], on_error=_raise))
    wall = time.perf_counter() - start
  timings = stream.timings
  return {
    "frames": timings.frames,
    "faces": found,
    "batch_size": batch_size,
    "frames_per_s": timings.frames / wall,
    "wall_s": wall,
    "decode_s": timings.decode_s,
    "detect_s": timings.detect_s,
    "model_s": timings.model_s,
  }


def _raise(error: DataError) -> None:
  raise error
