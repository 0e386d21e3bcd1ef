"""Writing the synthetic dataset in the DISFA+ release layout, and reading it.

`generate(root)` writes, for each subject SN101, SN102, ...:

  Labels/<SN>/<trial>/AU<n>.txt                "NNN.jpg intensity" lines
  FaceLandmarks/<SN>/<trial>_FaceCropped.mat   FaceImg_CropResize: 1xN cell
      of 1x1 structs imgID ("000.jpg"), ImgCropped (200x200x3 uint8 RGB),
      LndPntCropped (49x2, 1-based x, y)

and synthetic.json (the settings and the subject split). It fills a
temporary folder beside `root` and renames it to `root` when complete, so a
`root` with synthetic.json is always whole. Everything follows from the
seed: subject k draws from its own generator, seeded (seed, k).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import scipy.io
from tqdm import tqdm

from data_pipeline.sources.base import DISFA_PLUS_AUS, DataError
from data_pipeline.sources.disfa_plus import (
  FACES_DIR,
  LABELS_DIR,
  MAT_KEY,
  MAT_SUFFIX,
  DisfaPlus,
)
from data_pipeline.synthetic.faces import render_frame, sample_identity
from data_pipeline.synthetic.pose import sample_nuisance
from data_pipeline.synthetic.sequences import subject_trials

GENERATOR_VERSION = 1  # Bump whenever what a seed generates changes.
FRAMES_PER_SUBJECT = 150  # the 16 default subjects: well under a minute
METADATA = "synthetic.json"
FIRST_SUBJECT = 101  # Names SN101...: apart from DISFA+'s SN001..SN032.


def _settings(
  seed: int,
  num_train_subjects: int,
  num_test_subjects: int,
  frames_per_subject: int,
) -> dict:
  names = [
    f"SN{FIRST_SUBJECT + k}"
    for k in range(num_train_subjects + num_test_subjects)
  ]
  test = set(
    np.random.default_rng([seed, len(names)]).choice(
      names, size=num_test_subjects, replace=False
    )
  )
  return {
    "format": GENERATOR_VERSION,
    "seed": seed,
    "num_train_subjects": num_train_subjects,
    "num_test_subjects": num_test_subjects,
    "frames_per_subject": frames_per_subject,
    "aus": list(DISFA_PLUS_AUS),
    "train_subjects": [n for n in names if n not in test],
    "test_subjects": [n for n in names if n in test],
  }


def _write_subject(
  root: Path, name: str, rng: np.random.Generator, frames: int, bar: tqdm
) -> None:
  face = sample_identity(rng)
  for trial, intensities in subject_trials(rng, frames):
    label_dir = root / LABELS_DIR / name / trial
    label_dir.mkdir(parents=True)
    frame_names = [f"{i:03d}.jpg" for i in range(len(intensities))]
    for column, au in enumerate(DISFA_PLUS_AUS):
      (label_dir / f"AU{au}.txt").write_text(
        "".join(
          f"{frame} {value}\n"
          for frame, value in zip(frame_names, intensities[:, column])
        )
      )
    cell = np.empty((1, len(intensities)), object)
    for i, (frame, values) in enumerate(zip(frame_names, intensities)):
      image, landmarks = render_frame(face, values, sample_nuisance(rng))
      cell[0, i] = {
        "imgID": frame,
        "ImgCropped": image,
        "LndPntCropped": landmarks,
      }
      bar.update()
    mat_dir = root / FACES_DIR / name
    mat_dir.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(
      mat_dir / f"{trial}{MAT_SUFFIX}", {MAT_KEY: cell}, do_compression=True
    )


def _read_settings(root: Path) -> dict | None:
  try:
    return json.loads((root / METADATA).read_text())
  except FileNotFoundError:
    return None


def generate(
  root: os.PathLike,
  *,
  seed: int = 0,
  num_train_subjects: int = 12,
  num_test_subjects: int = 4,
  frames_per_subject: int = FRAMES_PER_SUBJECT,
  progress: bool = True,
) -> Path:
  """Writes the dataset under `root` (if not there already); returns root.

  A `root` already holding this very dataset is kept as it is; a `root`
  holding anything else is an error, never overwritten.
  """
  if min(num_train_subjects, num_test_subjects, frames_per_subject) < 1:
    raise ValueError(
      "need at least one train subject, one test subject and"
      " one frame per subject"
    )
  root = Path(root)
  settings = _settings(
    seed, num_train_subjects, num_test_subjects, frames_per_subject
  )
  existing = _read_settings(root)
  if existing == settings:
    return root
  if existing is not None or (root.exists() and any(root.iterdir())):
    raise DataError(
      f"{root}: holds something other than this synthetic"
      " dataset; delete it or generate into another folder"
    )
  partial = root.with_name(f".{root.name}.partial")
  shutil.rmtree(partial, ignore_errors=True)
  partial.mkdir(parents=True)
  names = settings["train_subjects"] + settings["test_subjects"]
  with tqdm(
    total=len(names) * frames_per_subject,
    unit="frame",
    desc="synthetic",
    disable=not progress,
  ) as bar:
    for name in sorted(names):
      rng = np.random.default_rng([seed, int(name[2:]) - FIRST_SUBJECT])
      _write_subject(partial, name, rng, frames_per_subject, bar)
  (partial / METADATA).write_text(json.dumps(settings, indent=1))
  if root.exists():
    root.rmdir()  # empty, as checked above
  os.replace(partial, root)
  return root


def source(root: os.PathLike, **kwargs) -> DisfaPlus:
  """The DISFA+ reader over a generated root, with its subject split.

  `kwargs` go to `DisfaPlus` (e.g. `threshold`, `image_dir`).
  """
  settings = _read_settings(Path(root))
  if settings is None:
    raise DataError(
      f"{Path(root) / METADATA}: missing, so {root} is not a"
      " complete synthetic dataset; run python -m"
      " data_pipeline.prepare synthetic --out ROOT"
    )
  return DisfaPlus(
    root,
    train_subjects=settings["train_subjects"],
    test_subjects=settings["test_subjects"],
    **kwargs,
  )
