"""What a predict run's figures and report page show, gathered frame by frame.

  gathered = Gathered(keep_faces=SHEET_FACES)
  for frame in stream(paths, on_error):   # on_error calls gathered.error
    gathered.add(frame)
  gathered.timelines(num_aus)              # each video's AUs over time
  gathered.timelines(num_aus, intensities=True)  # ... their intensities
  write_plots(gathered, predictor, planned)  # --plot's PNGs

It counts every file's frames, faces and frames without a face, how often
each AU is active (and, for a model with the intensity head, the sum of
each AU's intensities), and the inputs that failed; it keeps each video's
probabilities (and intensities) over time and the first `keep_faces` faces
of photos, with their crops (the rest are counted). `evidence`, when given, gives an RGB
image or PNG bytes per kept face (e.g. its saliency sheet), which the page
shows beside the crop.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Iterator

import numpy as np

from data_pipeline import errors
from drml_jax.predict import media
from drml_jax.predict.predictor import BatchedPredictor
from drml_jax.predict.stream import FaceAUs, FrameAUs
from drml_jax.store.workdir import write_atomic

SHEET_FACES = 64  # photos' faces shown on the contact sheet and the page


@dataclasses.dataclass
class KeptFace:
  """A photo's face as the sheet and the page show it."""

  file: str
  face_id: int
  crop: np.ndarray  # (200, 200, 3) uint8 RGB
  probabilities: np.ndarray  # (C,)
  occurrences: np.ndarray  # (C,) bool
  evidence: np.ndarray | bytes | None = None  # an RGB image or PNG bytes
  intensities: np.ndarray | None = None  # (C,) in [0, 5], with the head


@dataclasses.dataclass
class FileCounts:
  """One input file's frames (predicted), faces and frames without a face."""

  path: str
  video: bool
  frames: int = 0
  faces: int = 0
  without_face: int = 0


class Gathered:
  """Counts, timelines and kept faces of a predict run (see the module)."""

  def __init__(
    self,
    *,
    keep_faces: int = SHEET_FACES,
    evidence: Callable[[FaceAUs], np.ndarray | bytes | None] | None = None,
  ):
    self.keep_faces = keep_faces
    self.evidence = evidence
    self.files: dict[str, FileCounts] = {}
    # times, [{face_id: p}], [{face_id: intensities}] per frame
    self.videos: dict[str, tuple[list, list, list]] = {}
    self.faces: list[KeptFace] = []
    self.faces_left_out = 0
    self.active: np.ndarray | None = None  # (C,) faces with each AU active
    self.intensity_sum: np.ndarray | None = None  # (C,), with the head
    self.errors: list[str] = []

  def add(self, frame: FrameAUs) -> None:
    """Counts a predicted frame; keeps what the figures and the page need."""
    video = media.is_video(frame.file)
    counts = self.files.setdefault(frame.file, FileCounts(frame.file, video))
    counts.frames += 1
    counts.faces += len(frame.faces)
    counts.without_face += not frame.faces
    for item in frame.faces:
      if self.active is None:
        self.active = np.zeros(len(item.occurrences), np.int64)
      self.active += np.asarray(item.occurrences, bool)
      if item.intensities is not None:
        if self.intensity_sum is None:
          self.intensity_sum = np.zeros(len(item.intensities), np.float64)
        self.intensity_sum += item.intensities
    if video:
      times, probabilities, intensities = self.videos.setdefault(
        frame.file, ([], [], [])
      )
      times.append(frame.timestamp_s)
      probabilities.append(
        {item.face_id: item.probabilities for item in frame.faces}
      )
      intensities.append(
        {
          item.face_id: item.intensities
          for item in frame.faces
          if item.intensities is not None
        }
      )
      return
    for item in frame.faces:
      if len(self.faces) >= self.keep_faces:
        self.faces_left_out += 1
        continue
      self.faces.append(
        KeptFace(
          frame.file,
          item.face_id,
          item.crop,
          np.asarray(item.probabilities),
          np.asarray(item.occurrences, bool),
          self.evidence(item) if self.evidence else None,
          None if item.intensities is None else np.asarray(item.intensities),
        )
      )

  def error(self, error: Exception) -> None:
    """Records an input that failed, in one line."""
    self.errors.append(errors.first_line(error))

  @property
  def frames(self) -> int:
    return sum(counts.frames for counts in self.files.values())

  @property
  def face_count(self) -> int:
    return sum(counts.faces for counts in self.files.values())

  @property
  def without_face(self) -> int:
    return sum(counts.without_face for counts in self.files.values())

  @property
  def mean_intensities(self) -> np.ndarray | None:
    """(C,) each AU's mean intensity over every face, with the head."""
    if self.intensity_sum is None:
      return None
    return self.intensity_sum / max(self.face_count, 1)

  def timelines(
    self, num_aus: int, intensities: bool = False
  ) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Each video's (path, (T,) times, (T, face_ids, num_aus)
    probabilities, or with `intensities` intensities), NaN where a face is
    not in a frame (or has no intensities, or a frame has no time)."""
    for path, (times, *kinds) in self.videos.items():
      per_frame = kinds[1] if intensities else kinds[0]
      ids_seen = kinds[0]  # every face_id, whatever the values shown
      ids = 1 + max((max(p, default=0) for p in ids_seen), default=0)
      values = np.full((len(times), ids, num_aus), np.nan, np.float32)
      for t, frame_probabilities in enumerate(per_frame):
        for face_id, p in frame_probabilities.items():
          values[t, face_id] = p
      yield path, np.array([np.nan if t is None else t for t in times]), values


def active_aus(aus, occurrences) -> list[int]:
  """The AUs whose occurrence is on."""
  return [au for au, on in zip(aus, occurrences) if on]


def unique_name(name: str, taken: set[str]) -> str:
  """`name`, or `name_2`, `name_3`... the first not in `taken` (which gets it)."""
  candidate, copy = name, 1
  while candidate in taken:
    copy += 1
    candidate = f"{name}_{copy}"
  taken.add(candidate)
  return candidate


def plot_paths(out: str, paths: list[str]) -> dict[str | None, str]:
  """--plot's PNGs beside `out`: one per video (key: its path), one for the
  photos' faces (key None)."""
  stem = os.path.splitext(out)[0]
  planned, taken = {}, set()
  for path in paths:
    if media.is_video(path):
      name = f"{stem}_{os.path.splitext(os.path.basename(path))[0]}"
      planned[path] = f"{unique_name(name, taken)}.png"
    elif None not in planned:
      planned[None] = f"{stem}_faces.png"
  return planned


def timelines(
  gathered: Gathered, predictor: BatchedPredictor
) -> Iterator[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]]:
  """Each video's (path, times, probabilities, intensities or None without
  the intensity head), as `Gathered.timelines` gives them."""
  count = len(predictor.aus)
  shown = gathered.timelines(count, intensities=True)
  for path, times, values in gathered.timelines(count):
    intensities = next(shown)[2]
    yield path, times, values, intensities if predictor.has_intensity else None


def write_plots(
  gathered: Gathered,
  predictor: BatchedPredictor,
  planned: dict[str | None, str],
) -> list[str]:
  """--plot: each video's AU timeline (probabilities, and intensities for a
  model with the intensity head) at planned[path], the photos' faces at
  planned[None]; returns the paths written."""
  # Imported here: matplotlib slows the start-up, and only --plot needs it
  # (benchmarks/README.md#predict-speed).
  from drml_jax.rendering import plots  # pylint: disable=import-outside-toplevel

  written = []
  aus = predictor.aus
  for path, times, values, intensities in timelines(gathered, predictor):
    png = plots.au_timeline_png(
      times,
      values,
      aus,
      predictor.thresholds,
      os.path.basename(path),
      intensities,
    )
    write_atomic(planned[path], png)
    written.append(planned[path])
  if gathered.faces:
    captions = [
      f"{os.path.basename(face.file)} #{face.face_id}\nAU "
      + (" ".join(map(str, active_aus(aus, face.occurrences))) or "none")
      for face in gathered.faces
    ]
    png = plots.face_sheet_png([face.crop for face in gathered.faces], captions)
    write_atomic(planned[None], png)
    written.append(planned[None])
  return written
