"""The facts about a built dataset's splits, for the input pipeline and runs.

A split is a split name or `Subjects` (a split's examples of some subjects
only): `validation_split` cuts the training subjects into a train part and
a validation part, never a subject in both. Here too: examples per subject
and per split, batches per epoch, AU label counts, and the training split's
mean image. What is computed from the records (examples per subject, the
mean image) is stored once beside them.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Union

import jax
import numpy as np
from etils import epath

from data_pipeline.builders import check_split
from data_pipeline.sources.base import IMAGE_SIZE
from data_pipeline.tf_cpu import tf, tfds

MEAN_FILE = "mean_bgr_train.npy"  # beside the dataset's records
SUBJECTS_FILE = "subjects_{split}.json"  # beside them: examples per subject
# The validation subjects by default: this fraction of the training subjects
# (the last in sorted order, at least one).
VAL_FRACTION = 0.15


@dataclasses.dataclass(frozen=True)
class Subjects:
  """The examples of `split` whose subject is one of `subjects`."""

  split: str
  subjects: tuple[str, ...]

  def __str__(self) -> str:
    return f"{self.split} ({len(self.subjects)} subjects)"


Split = Union[str, Subjects]


def check(builder: tfds.core.DatasetBuilder, split: Split) -> None:
  """Raises unless `split` (a name, or Subjects of one) is a split of the
  built dataset."""
  check_split(builder, split.split if isinstance(split, Subjects) else split)


def _write_atomic(path: epath.Path, data: bytes) -> None:
  partial = path.with_name(f"{path.name}.{uuid.uuid4().hex}.partial")
  partial.write_bytes(data)
  partial.replace(path)


def subject_counts(builder: tfds.core.DatasetBuilder, split: str) -> dict:
  """{subject: examples} of a split, sorted by subject; computed once and
  stored as SUBJECTS_FILE beside the records."""
  check_split(builder, split)
  path = epath.Path(builder.data_dir) / SUBJECTS_FILE.format(split=split)
  if not path.exists():
    subjects = builder.as_dataset(
      split, decoders={"image": tfds.decode.SkipDecoding()}, batch_size=4096
    ).map(lambda example: example["subject"])
    counts = {}
    for batch in tfds.as_numpy(subjects):
      for subject in batch:
        counts[subject.decode()] = counts.get(subject.decode(), 0) + 1
    _write_atomic(path, json.dumps(dict(sorted(counts.items()))).encode())
  return json.loads(path.read_text())


def num_examples(builder: tfds.core.DatasetBuilder, split: Split) -> int:
  """The examples in a split."""
  check(builder, split)
  if isinstance(split, Subjects):
    counts = subject_counts(builder, split.split)
    return sum(counts[s] for s in split.subjects)
  return builder.info.splits[split].num_examples


def validation_split(
  builder: tfds.core.DatasetBuilder, val_subjects: str = ""
) -> tuple[Subjects, Subjects]:
  """(train, validation): the train split's subjects cut in two.

  `val_subjects` is a comma-separated list of training subjects; "" takes
  the last VAL_FRACTION of them in sorted order (at least one).
  """
  subjects = list(subject_counts(builder, "train"))
  names = [s.strip() for s in val_subjects.split(",") if s.strip()]
  if not names:
    names = subjects[-max(1, round(VAL_FRACTION * len(subjects))) :]
  unknown = [s for s in names if s not in subjects]
  if unknown:
    raise ValueError(
      f"--val-subjects {unknown[0]!r} is not a subject of {builder.name} "
      f"train: choose among {', '.join(subjects)}"
    )
  kept = tuple(s for s in subjects if s not in names)
  if not kept:
    raise ValueError(
      f"--val-subjects {val_subjects!r} leaves no training subject: "
      f"keep some of {', '.join(subjects)} for training"
    )
  return Subjects("train", kept), Subjects("train", tuple(sorted(names)))


def num_batches(
  builder: tfds.core.DatasetBuilder,
  split: Split,
  *,
  batch_size: int,
  train: bool,
  process_count: int | None = None,
) -> int:
  """Batches per epoch for each process, the same on every process.

  Training batches are full (the remainder is dropped); evaluation batches
  cover every example, the last one padded.
  """
  count = process_count or jax.process_count()
  total = num_examples(builder, split)
  if train:
    return total // count // batch_size
  per_process = -(-total // count)  # the largest part, rounded up
  return -(-per_process // batch_size)


def mean_image(builder: tfds.core.DatasetBuilder) -> np.ndarray:
  """(200, 200, 3) float32 BGR per-pixel mean of the train split, 0..255.

  Computed on first use and stored atomically as MEAN_FILE in the dataset's
  folder, so every later run (and process) reads the same image.
  """
  path = epath.Path(builder.data_dir) / MEAN_FILE
  if not path.exists():
    if "train" not in builder.info.splits:
      raise ValueError(
        f"{builder.name} has no train split to compute a mean"
        " image from; pass the training dataset's mean"
      )
    images = builder.as_dataset("train", batch_size=256).map(
      lambda example: example["image"]
    )
    total = np.zeros((IMAGE_SIZE, IMAGE_SIZE, 3), np.float64)
    for batch in tfds.as_numpy(images):
      total += batch.sum(axis=0, dtype=np.float64)
    mean = total[..., ::-1] / builder.info.splits["train"].num_examples
    partial = path.with_name(f"{MEAN_FILE}.{uuid.uuid4().hex}.partial")
    with partial.open("wb") as f:
      np.save(f, mean.astype(np.float32))
    partial.replace(path)
  with path.open("rb") as f:
    return np.load(f)


def label_counts(
  builder: tfds.core.DatasetBuilder, split: Split
) -> tuple[np.ndarray, np.ndarray]:
  """(positives, labelled) per AU over a split: labels +1, and labels not 0."""
  check(builder, split)
  labels = (
    records(builder, split).batch(4096).map(lambda example: example["labels"])
  )
  num_aus = len(builder.info.metadata["aus"])
  positives, labelled = np.zeros(num_aus, np.int64), np.zeros(num_aus, np.int64)
  for batch in tfds.as_numpy(labels):
    positives += (batch > 0).sum(axis=0)
    labelled += (batch != 0).sum(axis=0)
  return positives, labelled


def records(builder, split: Split) -> tf.data.Dataset:
  """A split's records in file order, images left encoded."""
  name = split.split if isinstance(split, Subjects) else split
  records = builder.as_dataset(
    name,
    shuffle_files=False,
    decoders={"image": tfds.decode.SkipDecoding()},
    read_config=tfds.ReadConfig(try_autocache=False),
  )
  if isinstance(split, Subjects):
    wanted = tf.constant(split.subjects)
    records = records.filter(
      lambda example: tf.reduce_any(tf.equal(example["subject"], wanted))
    )
  return records
