"""DISFA+ in its release layout.

Under `root` (an extra `<SN>/` level below `Labels/`, `FaceLandmarks/` or the
image folder, as some archives add, is tolerated):

  Labels/<SN>/<trial>/AU<n>.txt              "NNN.jpg intensity" per frame
  FaceLandmarks/<SN>/<trial>_FaceCropped.mat  FaceImg_CropResize, one entry
                                              (imgID, ImgCropped 200x200x3
                                              RGB, LndPntCropped) per frame

or faces from `<image_dir>/<SN>/<trial>/<NNN>.png`, what `python -m
data_pipeline.prepare disfa_plus` extracts from the .mat files; by default
`image_dir` is `<root>/FaceImages` when that folder exists (prepare's default
output), so the extracted images serve every command that takes the root.

The label files define the examples. Every trial must have the 12 files
AU1.txt ... AU26.txt and they must list the same frames: a missing file, or
a frame one file lists and another lacks, makes the whole trial bad (a
`DataError`; skipped with `skip_bad=True`) rather than silently dropping an AU
or a frame. Faces are matched to labels by frame name; faces without labels
are ignored. Order: subject, trial, frame, each in natural order (2 < 10).

Each example carries the AU files' intensities (int8 0..5, `intensity`) and
the occurrence labels made from them: +1 at intensity >= `threshold`, else
-1. An intensity that is not an integer in 0..5 is a `DataError` naming the
file and line.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import scipy.io

from data_pipeline.labels import convert_rows, from_intensity, intensity_values
from data_pipeline.sources.base import (
  DISFA_PLUS_AUS,
  BadInputs,
  DataError,
  Example,
  check_face,
  read_rgb,
)

DISFA_PLUS_TRAIN = (
  "SN001",
  "SN003",
  "SN004",
  "SN007",
  "SN009",
  "SN010",
  "SN013",
)
DISFA_PLUS_TEST = ("SN025", "SN027")

LABELS_DIR = "Labels"
FACES_DIR = "FaceLandmarks"
EXTRACTED_DIR = "FaceImages"  # prepare's default output, inside the root
MAT_SUFFIX = "_FaceCropped.mat"
MAT_KEY = "FaceImg_CropResize"


def natural_key(name: str) -> list:
  """Sort key that orders digit runs by value: "A2" < "A10", "99" < "100"."""
  return [
    int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)
  ]


def subject_dir(base: Path, subject: str) -> Path:
  """`base/<SN>`, or `base/<SN>/<SN>` where an archive added that level."""
  nested = base / subject / subject
  return nested if nested.is_dir() else base / subject


@dataclasses.dataclass(frozen=True)
class Trial:
  """The labels and intensities of one trial folder."""

  subject: str
  name: str
  frames: tuple[str, ...]  # frame names without extension, e.g. "000"
  labels: np.ndarray  # (len(frames), 12) int8 in {-1, +1}
  intensities: np.ndarray  # (len(frames), 12) int8 in 0..5


def _read_au_file(path: Path) -> tuple[list[str], np.ndarray, list[int]]:
  """Frame names, intensities and line numbers of one AU<n>.txt."""
  try:
    text = path.read_text(errors="replace")  # bad bytes fail as a bad line
  except FileNotFoundError:
    raise DataError(
      f"{path}: label file missing; every trial needs"
      f" AU<n>.txt for the AUs {DISFA_PLUS_AUS}; restore it"
      " from the DISFA+ archive"
    ) from None
  frames, values, numbers = [], [], []
  for number, line in enumerate(text.splitlines(), 1):
    fields = line.split()
    if not fields:
      continue
    try:
      if len(fields) != 2:
        raise ValueError
      value = float(fields[1])
    except ValueError:
      raise DataError(
        f"{path}:{number}: expected 'NNN.jpg intensity', got"
        f" {line.strip()!r}; restore the file from the DISFA+"
        " archive"
      ) from None
    frames.append(os.path.splitext(fields[0])[0])
    values.append(value)
    numbers.append(number)
  if not frames:
    raise DataError(
      f"{path}: no label lines; restore the file from the DISFA+ archive"
    )
  return frames, np.array(values), numbers


def read_trial(label_dir: Path, subject: str, threshold: int = 2) -> Trial:
  """The labels and intensities of one trial folder, frames in natural
  order; labels are +1 at intensity >= `threshold`, else -1."""
  per_au = {
    au: _read_au_file(label_dir / f"AU{au}.txt") for au in DISFA_PLUS_AUS
  }
  frames = sorted(
    set().union(*(set(f) for f, _, _ in per_au.values())), key=natural_key
  )
  columns = []
  for au, (names, values, numbers) in per_au.items():
    path = label_dir / f"AU{au}.txt"
    index = {name: i for i, name in enumerate(names)}
    if len(index) != len(names):
      duplicate = next(n for n in names if names.count(n) > 1)
      raise DataError(
        f"{path}: frame {duplicate} is listed twice; restore"
        " the file from the DISFA+ archive"
      )
    missing = [frame for frame in frames if frame not in index]
    if missing:
      raise DataError(
        f"{path}: no line for frame {missing[0]}, which another"
        " AU file of the trial lists; all AU files of a trial"
        " must list the same frames"
      )
    intensities = convert_rows(intensity_values, values, numbers, path)
    columns.append(intensities[[index[frame] for frame in frames]])
  intensities = np.stack(columns, axis=1)
  return Trial(
    subject,
    label_dir.name,
    tuple(frames),
    from_intensity(intensities, threshold),
    intensities,
  )


def _struct(item, path: Path) -> np.void:
  """The struct inside a cell entry (1x1 struct) or a struct-array entry."""
  while isinstance(item, np.ndarray):
    if item.size != 1:
      raise DataError(
        f"{path}: {MAT_KEY} entries must be 1x1 structs;"
        " restore the file from the DISFA+ archive"
      )
    item = item.flat[0]
  names = item.dtype.names if isinstance(item, np.void) else None
  if not names or "imgID" not in names or "ImgCropped" not in names:
    raise DataError(
      f"{path}: {MAT_KEY} entries need the fields imgID and"
      " ImgCropped; restore the file from the DISFA+ archive"
    )
  return item


def read_faces(path: Path) -> list[tuple[str, np.ndarray]]:
  """(frame name without extension, ImgCropped) for each entry of a .mat."""
  if not path.is_file():
    raise DataError(
      f"{path}: face file missing; restore it from the DISFA+"
      " archive (FaceLandmarks/)"
    )
  try:
    mat = scipy.io.loadmat(path, variable_names=[MAT_KEY])
  except Exception as error:  # scipy raises many types on corrupt files.
    raise DataError(
      f"{path}: cannot read the .mat file ({error}); restore it"
      " from the DISFA+ archive"
    ) from None
  if MAT_KEY not in mat:
    raise DataError(
      f"{path}: no {MAT_KEY} variable; is this a DISFA+ *{MAT_SUFFIX} file?"
    )
  faces = []
  for item in mat[MAT_KEY].flat:
    entry = _struct(item, path)
    image_id = np.asarray(entry["imgID"]).ravel()
    name = str(image_id[0]).strip() if image_id.size else ""
    faces.append((os.path.splitext(name)[0], np.asarray(entry["ImgCropped"])))
  return faces


def face_files(root: Path) -> list[tuple[str, str, Path]]:
  """(subject, trial, path) of every FaceLandmarks .mat, in sorted order."""
  base = Path(root) / FACES_DIR
  if not base.is_dir():
    raise DataError(
      f"{base}: folder not found; pass the DISFA+ root that"
      f" holds {FACES_DIR}/ and {LABELS_DIR}/"
    )
  found = []
  for subject in sorted(
    (d.name for d in base.iterdir() if d.is_dir()), key=natural_key
  ):
    for path in subject_dir(base, subject).glob(f"*{MAT_SUFFIX}"):
      found.append((subject, path.name[: -len(MAT_SUFFIX)], path))
  return sorted(found, key=lambda f: (natural_key(f[0]), natural_key(f[1])))


class DisfaPlus:
  """DISFA+ as released (see the module docstring for the layout)."""

  name = "disfa_plus"
  aus = DISFA_PLUS_AUS
  splits = ("train", "test")

  def __init__(
    self,
    root: os.PathLike,
    *,
    image_dir: os.PathLike | None = None,
    train_subjects: Sequence[str] = DISFA_PLUS_TRAIN,
    test_subjects: Sequence[str] = DISFA_PLUS_TEST,
    threshold: int = 2,
    skip_bad: bool = False,
  ):
    self.root = Path(root)
    if image_dir is None and (self.root / EXTRACTED_DIR).is_dir():
      image_dir = self.root / EXTRACTED_DIR
    self.image_dir = Path(image_dir) if image_dir is not None else None
    self.threshold = threshold
    self.skip_bad = skip_bad
    overlap = set(train_subjects) & set(test_subjects)
    if overlap:
      raise ValueError(f"subjects in both splits: {sorted(overlap)}")
    self._subjects = {
      "train": sorted(train_subjects, key=natural_key),
      "test": sorted(test_subjects, key=natural_key),
    }
    if not self.root.is_dir():
      raise DataError(
        f"{self.root}: DISFA+ root not found; pass the folder"
        f" that holds {LABELS_DIR}/ and {FACES_DIR}/"
      )
    if not (self.root / LABELS_DIR).is_dir():
      raise DataError(
        f"{self.root / LABELS_DIR}: folder not found; pass the"
        " DISFA+ root, the folder that holds it"
      )
    if self.image_dir is None and not (self.root / FACES_DIR).is_dir():
      raise DataError(
        f"{self.root / FACES_DIR}: folder not found; restore it, or extract"
        f" the faces to {self.root / EXTRACTED_DIR} with python -m"
        " data_pipeline.prepare disfa_plus --src ROOT"
      )
    if self.image_dir is not None and not self.image_dir.is_dir():
      raise DataError(
        f"{self.image_dir}: image folder not found; run python"
        " -m data_pipeline.prepare disfa_plus --src ROOT --out"
        " DIR and pass DIR"
      )

  def subjects(self, split: str) -> list[str]:
    """The split's subjects, sorted."""
    if split not in self.splits:
      raise ValueError(
        f"unknown split {split!r}; {self.name} has {self.splits}"
      )
    return self._subjects[split]

  def trials(self, split: str) -> Iterator[Trial]:
    """The split's trials (labels only), in order."""
    bad = BadInputs(f"{self.name} {split}", self.skip_bad)
    try:
      yield from self._trials(split, bad)
    finally:
      bad.report()

  def _trials(self, split: str, bad: BadInputs) -> Iterator[Trial]:
    for subject in self.subjects(split):
      label_root = subject_dir(self.root / LABELS_DIR, subject)
      if not label_root.is_dir():
        raise DataError(
          f"{label_root}: subject folder not found; restore it"
          " from the DISFA+ archive or change the subject split"
        )
      for trial_dir in sorted(
        (d for d in label_root.iterdir() if d.is_dir()),
        key=lambda d: natural_key(d.name),
      ):
        try:
          yield read_trial(trial_dir, subject, self.threshold)
        except DataError as error:
          bad(error)

  def examples(self, split: str) -> Iterator[Example]:
    """The split's examples: subject, trial, frame in natural order."""
    bad = BadInputs(f"{self.name} {split}", self.skip_bad)
    try:
      for trial in self._trials(split, bad):
        yield from self._trial_examples(trial, bad)
    finally:
      bad.report()

  def _trial_examples(self, trial: Trial, bad: BadInputs) -> Iterator[Example]:
    if self.image_dir is None:
      path = (
        subject_dir(self.root / FACES_DIR, trial.subject)
        / f"{trial.name}{MAT_SUFFIX}"
      )
      try:
        faces = dict(read_faces(path))
      except DataError as error:
        bad(error)
        return
    for i, frame in enumerate(trial.frames):
      try:
        if self.image_dir is None:
          if frame not in faces:
            raise DataError(
              f"{path}: no face for frame {frame}, which the"
              " labels list; restore the file from the DISFA+"
              " archive"
            )
          image = check_face(faces[frame], f"{path} frame {frame}")
        else:
          image_path = (
            subject_dir(self.image_dir, trial.subject)
            / trial.name
            / f"{frame}.png"
          )
          image = check_face(read_rgb(image_path), str(image_path))
      except DataError as error:
        bad(error)
        continue
      yield Example(
        image=image,
        labels=trial.labels[i],
        subject=trial.subject,
        frame_id=f"{trial.subject}/{trial.name}/{frame}",
        intensity=trial.intensities[i],
      )

  def subject_counts(self, split: str) -> dict[str, int]:
    """Labelled frames per subject (examples, unless images are bad)."""
    counts = dict.fromkeys(self.subjects(split), 0)
    for trial in self.trials(split):
      counts[trial.subject] += len(trial.frames)
    return counts

  def num_examples(self, split: str) -> int:
    """Labelled frames in the split, read from the label files only."""
    return sum(self.subject_counts(split).values())

  def describe(self) -> str:
    """Examples per split and subject, and each AU's positive rate."""
    lines = [
      f"{self.name}: {self.root}, AUs {' '.join(map(str, self.aus))},"
      f" positive at intensity >= {self.threshold}"
    ]
    for split in self.splits:
      counts = dict.fromkeys(self.subjects(split), 0)
      positives = np.zeros(len(self.aus), np.int64)
      for trial in self.trials(split):
        counts[trial.subject] += len(trial.frames)
        positives += (trial.labels > 0).sum(axis=0)
      total = sum(counts.values())
      lines.append(
        f"  {split}: {total:,} examples from {len(counts)}"
        " subjects: " + ", ".join(f"{s} {n:,}" for s, n in counts.items())
      )
      rates = positives / max(total, 1)
      lines.append(
        "    positive %: "
        + " ".join(f"AU{au} {100 * r:.1f}" for au, r in zip(self.aus, rates))
      )
    return "\n".join(lines)
