"""Faces followed through a video: one face_id per person, a cheap search per frame.

  tracker = Tracker(Detector())
  for frame in video:
    for face_id, face in tracker(frame.image, seconds): ...

The rule (docs/predict.md states it for the CSV's face_id):
- Every frame, each followed face is looked for where it was last seen,
  turned upright by its last roll (`Detector.follow`: O-Net alone, else a
  search around it; benchmarks/README.md#predict-speed).
- Every DISCOVER_EVERY frames, one of the detector's full-frame passes (the
  frame at one of its rolls) runs, in turn, to find faces that came in, down to
  DISCOVER_SMALLEST of the frame's shorter side (a coarser, cheaper search
  than a photo's): a new face is found within 2 x DISCOVER_EVERY frames when
  is upright, and within 4 x DISCOVER_EVERY frames at any roll
  (`DISCOVERY`). All passes run, as for a photo, at the first frame,
  and again, at most every FULL_EVERY frames, after a face was lost.
- A face found in the whole frame is the face of a track seen this frame
  when their boxes overlap as one face's do (`detection.same_face`); else it
  takes up a track lost for at most MAX_GAP_S seconds whose last face was
  within REACH of its side and of a similar size; else it is a new person
  with the next face_id.
- A track not seen for more than MAX_GAP_S ends: a person seen again after
  a longer absence gets a new face_id. Ids count from 0 per video.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from drml_jax.predict.alignment import Face
from drml_jax.predict.detection import ROLLS, Detector, same_face

MAX_GAP_S = (
  1.5  # a track unseen for longer ends: about a second of misses, and the
)
# frames where a face leaving or coming back is cut by the edge
DISCOVER_EVERY = 6  # frames between two full-frame passes
DISCOVER_SMALLEST = 0.15  # of the frame's shorter side
FULL_EVERY = 10  # frames between full searches prompted by a lost face
REACH = 1.5  # a lost track's face may reappear this many sides away
SIZE_RATIO = 1.6  # ... and at most this much larger or smaller
# The rolls in turn, every other one upright: most faces.
DISCOVERY = tuple(item for other in ROLLS[1:] for item in (ROLLS[0], other))


@dataclasses.dataclass
class Track:
  face_id: int
  face: Face
  seen_s: float  # when it was last seen


class Tracker:
  """Assigns face_ids to the faces of one video's frames, in order."""

  def __init__(self, detector: Detector):
    self.detector = detector
    self.tracks: list[Track] = []
    self.next_id = 0
    self.frame = 0
    self.full_at: int | None = None  # the frame of the last full search
    self.lost = False  # a track was lost since then

  def _full_due(self) -> bool:
    if self.full_at is None:
      return True
    return self.lost and self.frame - self.full_at >= FULL_EVERY

  def __call__(
    self, image: np.ndarray, seconds: float
  ) -> list[tuple[int, Face]]:
    """The faces of the next frame, at `seconds`, with their ids, left to right."""
    self.tracks = [t for t in self.tracks if seconds - t.seen_s <= MAX_GAP_S]
    seen = []
    for track in self.tracks:
      face = self.detector.follow(image, track.face)
      if face is None:
        self.lost = True
        continue
      if any(same_face(face, other.face) for other in seen):
        continue  # two tracks on one face: the older keeps it
      track.face, track.seen_s = face, seconds
      seen.append(track)
    found = []
    if self._full_due():
      found = self.detector(image)
      self.full_at, self.lost = self.frame, False
    elif self.frame % DISCOVER_EVERY == 0:
      turn = self.frame // DISCOVER_EVERY
      found = self.detector(
        image, [DISCOVERY[turn % len(DISCOVERY)]], DISCOVER_SMALLEST
      )
    for face in found:
      if any(same_face(face, track.face) for track in seen):
        continue
      track = self._lost_track(face, seen, seconds)
      if track is None:
        track = Track(self.next_id, face, seconds)
        self.next_id += 1
        self.tracks.append(track)
      track.face, track.seen_s = face, seconds
      seen.append(track)
    self.frame += 1
    return sorted(
      ((track.face_id, track.face) for track in seen),
      key=lambda item: (item[1].cx, item[1].cy),
    )

  def _lost_track(
    self, face: Face, seen: list[Track], seconds: float
  ) -> Track | None:
    """The nearest track not seen this frame that `face` may continue."""
    candidates = []
    for track in self.tracks:
      if track in seen:
        continue
      last = track.face
      distance = math.hypot(face.cx - last.cx, face.cy - last.cy)
      ratio = max(face.side, last.side) / min(face.side, last.side)
      if distance <= REACH * last.side and ratio <= SIZE_RATIO:
        candidates.append((distance, track))
    return min(candidates, key=lambda c: c[0])[1] if candidates else None
