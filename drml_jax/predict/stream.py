"""Files -> frames -> faces -> AU predictions, decoding overlapped with the model.

  stream = Stream(lambda: load_predictor(...), detect=True, every=1)
  for frame in stream(paths, on_error=report):  # FrameAUs, in input order
    rows = csv_rows(frame, predictor.aus, predictor.has_intensity)
  write_csv("out.csv", rows, predictor.aus, predictor.has_intensity)
  stream.timings                                # seconds in decode, detect, model

`load` runs in the caller's thread while the first frames are decoded and
their faces found, and compiles the program of the first batch: start-up
and detection overlap. A background thread
decodes each file's frames, finds their faces (a
photo: every pass of `detection.Detector`; a video: `tracking.Tracker`, which
follows each person with one face_id), crops them as their landmarks
align them (`alignment`), into a bounded queue; the caller's thread runs the model on
full batches of crops and yields each frame once all its faces are
predicted. Both sides release the GIL in their heavy parts (FFmpeg, OpenCV,
XLA).
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import io
import queue
import threading
import time
from typing import Callable, Iterable, Iterator

import numpy as np

from data_pipeline.sources.base import DataError
from drml_jax.predict import alignment, detection, media, tracking
from drml_jax.predict.predictor import Predictions, Predictor, au_name
from drml_jax.store.workdir import write_atomic

COLUMNS = (
  "file",
  "frame",
  "timestamp_s",
  "face_id",
  "face_x",
  "face_y",
  "face_w",
  "face_h",
  "face_roll",
  "face_score",
  *(f"{axis}_{id}" for axis in "xy" for id in alignment.LANDMARK_IDS),
  "success",
)
QUEUE_FRAMES = 64  # decoded frames waiting for the model
MAX_PENDING = 256  # frames held back for a batch before a partial one is run
FALLBACK_FPS = 25.0  # the tracker's clock for a video that gives no time


@dataclasses.dataclass
class FaceAUs:
  """A face (in its file's pixels), its id, its 200x200 crop and, once
  predicted, its AUs."""

  face_id: int
  face: alignment.Face
  crop: np.ndarray
  probabilities: np.ndarray | None = None
  occurrences: np.ndarray | None = None
  intensities: np.ndarray | None = None  # (C,) in [0, 5], with the head
  saliency: np.ndarray | None = None  # (C, S, S) evidence, when asked for


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
  saliency_s: float = 0.0


def au_columns(aus: Iterable[int], intensity: bool = False) -> list[str]:
  """Probabilities, occurrences, then (a model with the intensity head)
  intensities, named as OpenFace and Py-Feat do: AU01 .. AU01_c .. AU01_r .."""
  aus = list(aus)
  names = [au_name(au) for au in aus] + [f"{au_name(au)}_c" for au in aus]
  if intensity:
    names += [f"{au_name(au)}_r" for au in aus]
  return names


def face_fields(item: FaceAUs, aus: Iterable[int]) -> dict:
  """A predicted face as the CSV's and the live JSON's named values, from
  face_id to the last AU's occurrence, then its intensities where the model
  gave them, rounded as the CSV writes them (None where the CSV has a blank
  cell)."""
  x, y, w, h = item.face.box
  fields = {
    "face_id": item.face_id,
    "face_x": x,
    "face_y": y,
    "face_w": w,
    "face_h": h,
    "face_roll": round(item.face.roll, 1),
    "face_score": None
    if item.face.score is None
    else round(float(item.face.score), 4),
  }
  points = item.face.landmarks
  for axis, letter in enumerate("xy"):
    for index, id in enumerate(alignment.LANDMARK_IDS):
      fields[f"{letter}_{id}"] = (
        None if points is None else round(float(points[index][axis]), 1)
      )
  fields["success"] = 1
  intensity = item.intensities is not None
  names = au_columns(aus, intensity)
  values = [round(float(p), 6) for p in item.probabilities]
  values += [int(o) for o in item.occurrences]
  if intensity:
    values += [round(float(r), 6) for r in item.intensities]
  fields.update(zip(names, values, strict=True))
  return fields


def _cell(name: str, value) -> str | int:
  """A value of `face_fields` as its CSV cell."""
  if value is None:
    return ""
  if isinstance(value, float):
    places = 6 if name.startswith("AU") else 4 if name == "face_score" else 1
    return f"{value:.{places}f}"
  return value


def csv_rows(
  frame: FrameAUs, aus: Iterable[int], intensity: bool = False
) -> list[list]:
  """A frame's CSV cells (`au_columns(aus, intensity)` after COLUMNS): one
  row per face, or one with success 0 and no AUs."""
  aus = list(aus)
  where = [
    frame.file,
    frame.index,
    "" if frame.timestamp_s is None else f"{frame.timestamp_s:.3f}",
  ]
  if not frame.faces:
    blank = [""] * len(au_columns(aus, intensity))
    return [where + [""] * (len(COLUMNS) - 4) + [0] + blank]
  return [
    where + [_cell(n, v) for n, v in face_fields(item, aus).items()]
    for item in frame.faces
  ]


def write_csv(
  path: str, rows: Iterable[list], aus: Iterable[int], intensity: bool = False
) -> None:
  """Writes `rows` (`csv_rows`' cells) under the header, COLUMNS then
  `au_columns(aus, intensity)`, to `path` atomically: predict's --out and
  each CSV of a corpus."""
  text = io.StringIO()
  writer = csv.writer(text, lineterminator="\n")
  writer.writerow(list(COLUMNS) + au_columns(aus, intensity))
  writer.writerows(rows)
  write_atomic(path, text.getvalue())


def set_predictions(faces: list[FaceAUs], predictions: Predictions) -> None:
  """Gives each face its row of `predictions`."""
  intensities = predictions.intensities
  for index, item in enumerate(faces):
    item.probabilities = predictions.probabilities[index]
    item.occurrences = predictions.occurrences[index]
    item.intensities = None if intensities is None else intensities[index]


def found_faces(
  detector: detection.Detector,
  image: np.ndarray,
  tracker: tracking.Tracker | None,
  seconds: float,
  scale: float = 1.0,
) -> list[FaceAUs]:
  """An image's faces, each cropped as its landmarks align it: every pass
  of `detector` for a photo (ids in order), or the next frame of
  `tracker`'s video, at `seconds`. Boxes are given `scale` times larger
  (the file's pixels per pixel of `image`)."""
  if tracker is None:
    found = enumerate(detector(image))
  else:
    found = tracker(image, seconds)
  return [
    FaceAUs(face_id, face.scaled(scale), alignment.crop(image, face))
    for face_id, face in found
  ]


class _Failure:
  """An unexpected exception of the decoding thread, re-raised by the caller's."""

  def __init__(self, error: BaseException):
    self.error = error


_END = object()


class Stream:
  """Predicts the AUs of every face in a sequence of media files."""

  def __init__(
    self,
    load: Callable[[], Predictor],
    *,
    detect: bool = True,
    every: int = 1,
    explain: bool = False,
  ):
    self.load = load
    self.explain = explain  # each face's evidence maps too (`saliency`)
    self.predictor: Predictor | None = None  # loaded once frames flow
    self.detector = detection.Detector() if detect else None
    self.every = every
    self.timings = Timings()

  def faces(
    self, frame: media.Frame, tracker: tracking.Tracker | None
  ) -> list[FaceAUs]:
    """A frame's faces: found (a video's tracked) and cropped."""
    if self.detector is None:
      return [FaceAUs(0, *alignment.given(frame.image))]
    seconds = frame.timestamp_s
    if seconds is None:
      seconds = frame.index / FALLBACK_FPS
    return found_faces(
      self.detector, frame.image, tracker, seconds, frame.scale
    )

  def _frames(self, paths: list[str]) -> Iterator[FrameAUs | DataError]:
    """Each file's frames with their cropped faces, or the file's error."""
    for path in paths:
      frames = media.frames(path, self.every)
      tracker = None
      if self.detector is not None and media.is_video(path):
        tracker = tracking.Tracker(self.detector)
      try:
        while True:
          start = time.perf_counter()
          frame = next(frames, None)
          self.timings.decode_s += time.perf_counter() - start
          if frame is None:
            break
          start = time.perf_counter()
          found = self.faces(frame, tracker)
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
    predictions = self.predictor(np.stack([item.crop for item in waiting]))
    self.timings.model_s += time.perf_counter() - start
    set_predictions(waiting, predictions)
    if self.explain:
      start = time.perf_counter()
      maps = self.predictor.evidence(np.stack([item.crop for item in waiting]))
      self.timings.saliency_s += time.perf_counter() - start
      for item, evidence in zip(waiting, maps):
        item.saliency = evidence

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
    try:
      if self.predictor is None:
        self.predictor = self.load()
        # The first batch's program compiles while the first frames are
        # searched: a full batch for a video, else one face per image.
        videos = any(media.is_video(path) for path in paths)
        self.predictor.prepare(
          self.predictor.batch_size if videos else len(paths)
        )
      batch_size = self.predictor.batch_size
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
