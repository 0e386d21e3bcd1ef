"""Live frames to records: faces tracked per viewer, AUs from one model for all.

  analyst = Analyst(predictor)
  viewer = analyst.viewer()                     # one per camera or browser
  [frame] = analyst([Job(viewer, "camera 0", live_frame)])
  record(frame, predictor.aus, capture_time, time.time())   # the JSON object

A viewer is a `tracking.Tracker`: each person keeps a face_id across the
frames it is shown, dropped frames between them or not. A job without a
viewer (one photo) runs every pass of the detector. The faces of all the
jobs of a call run through the model as one batch, so clients served
together share its cost.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from drml_jax.predict import detection, stream, tracking
from drml_jax.predict.predictor import BatchedPredictor

# The live CSV's columns after predict's: when the frame was captured and
# its result ready (seconds since the epoch), and the difference.
TIME_COLUMNS = ("capture_time", "ready_time", "latency_ms")
LATENCY_BINS_MS = 60_000  # the histogram's 1 ms bins; longer ones count last


@dataclasses.dataclass
class Job:
  viewer: tracking.Tracker | None  # None: a photo, every detector pass
  source: str  # the frame's source, as the CSV's file column names it
  index: int
  timestamp_s: float
  image: np.ndarray  # (H, W, 3) uint8 RGB


class Analyst:
  """Finds, tracks and predicts the faces of live frames."""

  def __init__(self, predictor: BatchedPredictor):
    self.predictor = predictor
    self.detector = detection.Detector()
    predictor.prepare(1)  # the first frame waits for no compilation

  def viewer(self) -> tracking.Tracker:
    """A new sequence of frames to follow faces through."""
    return tracking.Tracker(self.detector)

  def __call__(self, jobs: list[Job]) -> list[stream.FrameAUs]:
    """Each job's frame with its faces' AUs, in order."""
    frames = [
      stream.FrameAUs(
        job.source,
        job.index,
        job.timestamp_s,
        stream.found_faces(
          self.detector, job.image, job.viewer, job.timestamp_s
        ),
      )
      for job in jobs
    ]
    faces = [face for frame in frames for face in frame.faces]
    if faces:
      stream.set_predictions(
        faces, self.predictor(np.stack([face.crop for face in faces]))
      )
    return frames


def record(
  frame: stream.FrameAUs,
  aus,
  capture_time: float,
  ready_time: float,
  **fields,
) -> dict:
  """A processed frame as the JSON object a program reads: where and when,
  `fields` (counts), and each face with the CSV's names and values."""
  return {
    "source": frame.file,
    "frame": frame.index,
    "timestamp_s": round(frame.timestamp_s, 3),
    "capture_time": round(capture_time, 3),
    "ready_time": round(ready_time, 3),
    "latency_ms": round(1000 * (ready_time - capture_time), 1),
    **fields,
    "faces": [stream.face_fields(face, aus) for face in frame.faces],
  }


def csv_rows(
  frame: stream.FrameAUs, aus, fields: dict, intensity: bool = False
) -> list[list]:
  """predict's CSV rows of the frame (`intensity`: with the AUxx_r columns),
  then the TIME_COLUMNS' cells of its `record`."""
  times = [
    f"{fields['capture_time']:.3f}",
    f"{fields['ready_time']:.3f}",
    f"{fields['latency_ms']:.1f}",
  ]
  return [row + times for row in stream.csv_rows(frame, aus, intensity)]


class Latencies:
  """Latencies in a fixed histogram of 1 ms bins: percentiles in constant
  memory however long a run."""

  def __init__(self):
    self.counts = np.zeros(LATENCY_BINS_MS + 1, np.int64)

  def add(self, milliseconds: float) -> None:
    self.counts[min(int(milliseconds), LATENCY_BINS_MS)] += 1

  def percentile(self, q: float) -> float | None:
    """The q-th percentile, to the millisecond (None before any)."""
    total = self.counts.sum()
    if not total:
      return None
    return float(np.searchsorted(np.cumsum(self.counts), q / 100 * total))
