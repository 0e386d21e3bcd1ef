"""tf.data input pipeline: a built dataset -> NHWC float32 numpy batches.

  batches = make_dataset(builder, "train", batch_size=64, train=True)
  for batch in batches: ...  # image (64,170,170,3) f32, labels (64,C) i8,
                             # valid (64,) bool

Preprocessing modes (200x200 faces -> 170x170):
  resize: antialiased bilinear resize, rounded to uint8 like PIL's, the
          same at train and test (the reproduction report).
  crop:   random 170 crop + random horizontal mirror for training, center
          crop for testing (the paper's Caffe setup). The 12 AUs are
          bilateral, so mirroring leaves the labels unchanged.
Normalisations:
  rgb:      RGB / 255.
  bgr_mean: BGR 0..255 minus the per-pixel mean image of the training split
            (`mean_image`), cropped or resized like the image.

A split is a split name or `Subjects` (a split's examples of some subjects
only): `validation_split` cuts the training subjects into a train part and
a validation part, never a subject in both.

Training batches are full and each epoch's order is a pure function of
(seed, epoch), augmentation included, so `start_step` resumes a run with the
very batches it would have seen. Evaluation yields every example of the
process's part exactly once, the last batch padded with `valid` False.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Iterable, Union

import jax
import numpy as np
from etils import epath

from data_pipeline.builders import check_name, check_split
from data_pipeline.sources.base import IMAGE_SIZE
from data_pipeline.tf_cpu import tf, tfds

INPUT_SIZE = 170
MODES = ("resize", "crop")
NORMALIZATIONS = ("rgb", "bgr_mean")
SHUFFLE_BUFFER = 10_000
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


def _check(builder: tfds.core.DatasetBuilder, split: Split) -> None:
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
  _check(builder, split)
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
  _check(builder, split)
  labels = (
    _records(builder, split).batch(4096).map(lambda example: example["labels"])
  )
  num_aus = len(builder.info.metadata["aus"])
  positives, labelled = np.zeros(num_aus, np.int64), np.zeros(num_aus, np.int64)
  for batch in tfds.as_numpy(labels):
    positives += (batch > 0).sum(axis=0)
    labelled += (batch != 0).sum(axis=0)
  return positives, labelled


def _records(builder, split: Split) -> tf.data.Dataset:
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


def _process_part(
  builder, split: Split, *, process_index: int, count: int, train: bool
) -> tuple[tf.data.Dataset, int]:
  """(records, how many) of this process's contiguous part of a split: equal
  parts when training (the remainder dropped), else sizes within one."""
  if not isinstance(split, Subjects):
    part = tfds.split_for_jax_process(
      split,
      process_index=process_index,
      process_count=count,
      drop_remainder=train,
    )
    return _records(builder, part), builder.info.splits[part].num_examples
  total = num_examples(builder, split)
  if train:
    start, end = (
      process_index * (total // count),
      (process_index + 1) * (total // count),
    )
  else:
    start, end = (
      process_index * total // count,
      (process_index + 1) * total // count,
    )
  return _records(builder, split).skip(start).take(end - start), end - start


def make_dataset(
  builder: tfds.core.DatasetBuilder,
  split: Split,
  *,
  batch_size: int,
  train: bool,
  mode: str = "resize",
  normalization: str = "rgb",
  mean: np.ndarray | None = None,
  seed: int = 0,
  start_step: int = 0,
  num_epochs: int | None = None,
  cache: bool = False,
  shuffle_buffer: int = SHUFFLE_BUFFER,
  process_index: int | None = None,
  process_count: int | None = None,
) -> Iterable[dict]:
  """Batches of `split` for this process, as numpy dicts.

  Args:
    builder: a built dataset (`data_pipeline.registry.build`).
    split: one of the dataset's splits, or `Subjects` of one.
    batch_size: examples per batch on this process.
    train: shuffled, augmented (crop mode), full batches, epoch after epoch;
      else one pass in file order, padded to full batches.
    mode: one of MODES.
    normalization: one of NORMALIZATIONS.
    mean: the bgr_mean image; default `mean_image(builder)`. Pass the
      training dataset's to evaluate on another dataset (e.g. CK+).
    seed: shuffling and augmentation seed (training).
    start_step: training step to start at; epochs are
      `num_batches(..., train=True)` steps long.
    num_epochs: training stops after this many epochs (counted from epoch
      0); None repeats forever.
    cache: keep the decoded (resize mode: resized) uint8 images in memory
      from the first epoch on; augmentation still differs every epoch.
    shuffle_buffer: examples in the shuffle buffer (training).
    process_index, process_count: this process's part of the data, each a
      disjoint contiguous slice; default from jax.

  Returns:
    An iterable of dicts: image float32 (B, 170, 170, 3), labels int8
    (B, C), valid bool (B,). Iterating it again starts over.
  """
  _check(builder, split)
  check_name("mode", mode, MODES)
  check_name("normalization", normalization, NORMALIZATIONS)
  if process_index is None:
    process_index = jax.process_index()
  count = process_count or jax.process_count()
  if normalization == "bgr_mean" and mean is None:
    mean = mean_image(builder)
  records, own = _process_part(
    builder, split, process_index=process_index, count=count, train=train
  )
  preprocess = _Preprocess(
    mode, normalization, mean, builder.info.features["image"].decode_example
  )
  if cache:
    records = records.map(
      preprocess.fixed, num_parallel_calls=tf.data.AUTOTUNE
    ).cache()
  if train:
    steps = num_batches(
      builder, split, batch_size=batch_size, train=True, process_count=count
    )
    if steps == 0:
      raise ValueError(
        f"{builder.name} {split} has fewer than batch_size"
        f" {batch_size} examples per process"
      )
    batches = _train_batches(
      records,
      preprocess,
      batch_size=batch_size,
      steps=steps,
      seed=seed,
      start_step=start_step,
      num_epochs=num_epochs,
      buffer=min(shuffle_buffer, steps * batch_size),
    )
  else:
    padded = (
      num_batches(
        builder, split, batch_size=batch_size, train=False, process_count=count
      )
      * batch_size
    )
    batches = _eval_batches(
      records,
      preprocess,
      batch_size=batch_size,
      padding=padded - own,
      num_aus=len(builder.info.metadata["aus"]),
    )
  return tfds.as_numpy(batches.prefetch(tf.data.AUTOTUNE))


def preprocess_eval(
  images: np.ndarray,
  *,
  mode: str,
  normalization: str,
  mean: np.ndarray | None = None,
) -> np.ndarray:
  """Evaluation's preprocessing of faces from elsewhere: float32 (B,170,170,3).

  `images` are (B, 200, 200, 3) uint8 RGB faces; each goes through the very
  `_Preprocess` steps that `make_dataset(..., train=False)` maps over a
  split's records (resize or centre crop, then normalisation). `mean` is the
  training split's `mean_image`, required for bgr_mean.
  """
  check_name("mode", mode, MODES)
  check_name("normalization", normalization, NORMALIZATIONS)
  if normalization == "bgr_mean" and mean is None:
    raise ValueError(
      "bgr_mean normalization needs the training split's mean"
      " image (mean_image)"
    )
  if images.ndim != 4 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
    raise ValueError(
      f"expected (B, {IMAGE_SIZE}, {IMAGE_SIZE}, 3) faces, got {images.shape}"
    )
  preprocess = _Preprocess(mode, normalization, mean, decode=None)
  return np.stack(
    [
      preprocess.model_input(preprocess.fixed_image(image)).numpy()
      for image in tf.constant(images, tf.uint8)
    ]
  )


class _Preprocess:
  """Face record -> model input.

  `fixed` is the deterministic part (decode; resize mode: the resize, to
  uint8 as PIL does), the part a cache keeps; calling also crops, mirrors
  (with a key) and normalises (`model_input`), on the image and the mean
  alike.
  """

  def __init__(self, mode: str, normalization: str, mean, decode):
    self.mode = mode
    self.normalization = normalization
    self.decode = decode
    self.mean = None
    if mean is not None:
      mean = tf.constant(mean, tf.float32)
      self.mean = _resize(mean) if mode == "resize" else mean

  def fixed(self, example: dict) -> dict:
    """Decoded image (resize mode: resized) and labels."""
    return {
      "image": self.fixed_image(self.decode(example["image"])),
      "labels": example["labels"],
    }

  def fixed_image(self, image: tf.Tensor) -> tf.Tensor:
    """A 200x200 uint8 face; resize mode: resized, rounded to uint8."""
    if self.mode == "resize":
      image = tf.saturate_cast(tf.round(_resize(image)), tf.uint8)
    return image

  def __call__(self, example: dict, key: tf.Tensor | None = None) -> dict:
    """`key` (a stateless seed) augments: random crop and mirror."""
    if example["image"].dtype == tf.string:
      example = self.fixed(example)
    return {
      "image": self.model_input(example["image"], key),
      "labels": example["labels"],
      "valid": tf.constant(True),
    }

  def model_input(
    self, image: tf.Tensor, key: tf.Tensor | None = None
  ) -> tf.Tensor:
    """A fixed image -> float32 170x170 input: cropped, normalised."""
    mean = self.mean
    if self.mode == "crop":
      window = _window(key)
      image = _cut(image, *window)
      mean = None if mean is None else _cut(mean, *window)
    image = tf.cast(image, tf.float32)
    if self.normalization == "rgb":
      return image / 255.0
    return tf.reverse(image, axis=[-1]) - mean


def _resize(image: tf.Tensor) -> tf.Tensor:
  return tf.image.resize(
    image, (INPUT_SIZE, INPUT_SIZE), method="bilinear", antialias=True
  )


def _window(key: tf.Tensor | None) -> tuple:
  """(top, left, mirrored) of a crop: random with a key, else central."""
  if key is None:
    center = (IMAGE_SIZE - INPUT_SIZE) // 2
    return center, center, tf.constant(False)
  crop_key, mirror_key = tf.unstack(
    tf.random.experimental.stateless_split(key, 2)
  )
  top, left = tf.unstack(
    tf.random.stateless_uniform(
      [2],
      seed=crop_key,
      minval=0,
      maxval=IMAGE_SIZE - INPUT_SIZE + 1,
      dtype=tf.int32,
    )
  )
  return top, left, tf.random.stateless_uniform([], seed=mirror_key) < 0.5


def _cut(image: tf.Tensor, top, left, mirrored) -> tf.Tensor:
  image = tf.slice(image, [top, left, 0], [INPUT_SIZE, INPUT_SIZE, 3])
  return tf.cond(mirrored, lambda: tf.reverse(image, axis=[1]), lambda: image)


def _train_batches(
  records: tf.data.Dataset,
  preprocess: _Preprocess,
  *,
  batch_size: int,
  steps: int,
  seed: int,
  start_step: int,
  num_epochs: int | None,
  buffer: int,
) -> tf.data.Dataset:
  """Epochs of `steps` full batches from `start_step` on.

  Epoch e shuffles with a seed drawn from (seed, e) and augments example i
  of it with a key folded from (seed, e, i): any step can be recomputed.
  """
  augment = preprocess.mode == "crop"
  first_epoch, skipped = divmod(start_step, steps)

  def epoch(index):
    shuffle_seed = tf.random.stateless_uniform(
      [], seed=[seed, index], minval=None, maxval=None, dtype=tf.int64
    )
    examples = records.shuffle(
      buffer, seed=shuffle_seed, reshuffle_each_iteration=False
    ).enumerate()
    examples = examples.skip(
      tf.where(
        index == first_epoch, tf.constant(skipped * batch_size, tf.int64), 0
      )
    )
    epoch_key = tf.random.experimental.stateless_fold_in(
      tf.constant([seed, 0], tf.int64), index
    )

    def model_input(i, example):
      key = tf.random.experimental.stateless_fold_in(epoch_key, i)
      return preprocess(example, key if augment else None)

    examples = examples.map(model_input, num_parallel_calls=tf.data.AUTOTUNE)
    return examples.batch(batch_size, drop_remainder=True)

  if num_epochs is None:
    epochs = tf.data.Dataset.counter(first_epoch)
  else:
    epochs = tf.data.Dataset.range(first_epoch, num_epochs)
  return epochs.flat_map(epoch)


def _eval_batches(
  records: tf.data.Dataset,
  preprocess: _Preprocess,
  *,
  batch_size: int,
  padding: int,
  num_aus: int,
) -> tf.data.Dataset:
  """One pass in file order, then `padding` blank examples, valid False."""
  examples = records.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)
  blank = tf.data.Dataset.from_tensors(
    {
      "image": tf.zeros((INPUT_SIZE, INPUT_SIZE, 3), tf.float32),
      "labels": tf.zeros((num_aus,), tf.int8),
      "valid": tf.constant(False),
    }
  ).repeat(padding)
  return examples.concatenate(blank).batch(batch_size)
