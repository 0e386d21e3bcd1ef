"""tf.data input pipeline: a built dataset -> uint8 numpy batches.

  batches = make_dataset(builder, "train", batch_size=64, train=True)
  for batch in batches: ...  # image (64,200,200,3) u8, window (64,3) i32,
                             # labels (64,C) i8, intensity (64,C) i8,
                             # valid (64,) bool

`labels` are the occurrence labels in {-1, 0, +1} (0: ignore); `intensity`
the FACS intensities 0..5 in the same AU order, -1 where unknown (a dataset
without intensities, and the evaluation padding).

A batch holds each face as the uint8 image a cache keeps ("fixed") and the
crop window drawn for it; `model_inputs.ModelInputs` finishes it on the
device, inside the jitted steps: crop, mirror, normalise (the preprocessing
itself is described there, once).

Preprocessing modes (200x200 faces -> 170x170):
  resize: antialiased bilinear resize, rounded to uint8 like PIL's, the
          same at train and test (the reproduction report). Fixed images
          are the resized 170x170 ones; the window is (0, 0, 0).
  crop:   random 170 crop + random horizontal mirror for training, center
          crop for testing (the paper's Caffe setup). Fixed images are the
          200x200 faces. The 12 AUs are bilateral, so mirroring leaves the
          labels and intensities unchanged.
Normalisations:
  rgb:      RGB / 255.
  bgr_mean: BGR 0..255 minus the per-pixel mean image of the training split
            (`splits.mean_image`), cropped or resized like the image
            (`model_inputs.fixed_mean`).

A split is a split name or `splits.Subjects` (a split's examples of some
subjects only); `splits` holds the facts about a dataset's splits.

Training batches are full and each epoch's order is a pure function of
(seed, epoch), augmentation included, so `start_step` resumes a run with the
very batches it would have seen. Evaluation yields every example of the
process's part exactly once, the last batch padded with `valid` False.
"""

from __future__ import annotations

from typing import Iterable

import jax

from data_pipeline import model_inputs, splits
from data_pipeline.errors import check_name
from data_pipeline.model_inputs import INPUT_SIZE
from data_pipeline.sources.base import IMAGE_SIZE, UNKNOWN_INTENSITY
from data_pipeline.tf_cpu import tf, tfds

SHUFFLE_BUFFER = 10_000


def _process_part(
  builder, split: splits.Split, *, process_index: int, count: int, train: bool
) -> tuple[tf.data.Dataset, int]:
  """(records, how many) of this process's contiguous part of a split: equal
  parts when training (the remainder dropped), else sizes within one."""
  if not isinstance(split, splits.Subjects):
    part = tfds.split_for_jax_process(
      split,
      process_index=process_index,
      process_count=count,
      drop_remainder=train,
    )
    return splits.records(builder, part), builder.info.splits[part].num_examples
  total = splits.num_examples(builder, split)
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
  records = splits.records(builder, split)
  return records.skip(start).take(end - start), end - start


def make_dataset(
  builder: tfds.core.DatasetBuilder,
  split: splits.Split,
  *,
  batch_size: int,
  train: bool,
  mode: str = "resize",
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
    split: one of the dataset's splits, or `splits.Subjects` of one.
    batch_size: examples per batch on this process.
    train: shuffled, augmented (crop mode), full batches, epoch after epoch;
      else one pass in file order, padded to full batches.
    mode: one of model_inputs.MODES.
    seed: shuffling and augmentation seed (training).
    start_step: training step to start at; epochs are
      `splits.num_batches(..., train=True)` steps long.
    num_epochs: training stops after this many epochs (counted from epoch
      0); None repeats forever.
    cache: keep the decoded (resize mode: resized) uint8 images in memory
      from the first epoch on; augmentation still differs every epoch.
    shuffle_buffer: examples in the shuffle buffer (training).
    process_index, process_count: this process's part of the data, each a
      disjoint contiguous slice; default from jax.

  Returns:
    An iterable of dicts: image uint8 (B, S, S, 3) (S: 200 in crop mode,
    170 in resize mode), window int32 (B, 3) (top, left, mirrored), labels
    int8 (B, C), intensity int8 (B, C) (0..5, -1 unknown and in padding),
    valid bool (B,). Iterating it again starts over.
  """
  splits.check(builder, split)
  check_name("mode", mode, model_inputs.MODES)
  if process_index is None:
    process_index = jax.process_index()
  count = process_count or jax.process_count()
  records, own = _process_part(
    builder, split, process_index=process_index, count=count, train=train
  )
  preprocess = _Preprocess(mode, builder.info.features["image"].decode_example)
  if cache:
    records = records.map(
      preprocess.fixed, num_parallel_calls=tf.data.AUTOTUNE
    ).cache()
  if train:
    steps = splits.num_batches(
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
      splits.num_batches(
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
      image_size=preprocess.fixed_size,
    )
  return tfds.as_numpy(batches.prefetch(tf.data.AUTOTUNE))


class _Preprocess:
  """Face record -> fixed uint8 image and crop window.

  `fixed` is the deterministic part (decode; resize mode: the resize, to
  uint8 as PIL does), the part a cache keeps; calling also draws the window
  (random with a key in crop mode, else central).
  """

  def __init__(self, mode: str, decode):
    self.mode = mode
    self.decode = decode
    self.fixed_size = model_inputs.fixed_size(mode)

  def fixed(self, example: dict) -> dict:
    """Decoded image (resize mode: resized), labels and intensities."""
    image = self.decode(example["image"])
    if self.mode == "resize":
      image = tf.saturate_cast(tf.round(_resize(image)), tf.uint8)
    return {
      "image": image,
      "labels": example["labels"],
      "intensity": example["intensity"],
    }

  def __call__(self, example: dict, key: tf.Tensor | None = None) -> dict:
    """`key` (a stateless seed) augments: random crop and mirror."""
    if example["image"].dtype == tf.string:
      example = self.fixed(example)
    return {
      "image": example["image"],
      "window": self.window(key),
      "labels": example["labels"],
      "intensity": example["intensity"],
      "valid": tf.constant(True),
    }

  def window(self, key: tf.Tensor | None) -> tf.Tensor:
    """int32 (top, left, mirrored): random with a key, else central."""
    if key is None or self.mode == "resize":
      return tf.constant(model_inputs.central_window(self.mode))
    crop_key, mirror_key = tf.unstack(
      tf.random.experimental.stateless_split(key, 2)
    )
    corner = tf.random.stateless_uniform(
      [2],
      seed=crop_key,
      minval=0,
      maxval=IMAGE_SIZE - INPUT_SIZE + 1,
      dtype=tf.int32,
    )
    mirrored = tf.random.stateless_uniform([], seed=mirror_key) < 0.5
    return tf.concat([corner, tf.cast(mirrored, tf.int32)[None]], 0)


def _resize(image: tf.Tensor) -> tf.Tensor:
  return tf.image.resize(
    image, (INPUT_SIZE, INPUT_SIZE), method="bilinear", antialias=True
  )


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
  image_size: int,
) -> tf.data.Dataset:
  """One pass in file order, then `padding` blank examples, valid False,
  labels 0 (ignore) and intensity UNKNOWN_INTENSITY."""
  examples = records.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)
  blank = tf.data.Dataset.from_tensors(
    {
      "image": tf.zeros((image_size, image_size, 3), tf.uint8),
      "window": preprocess.window(None),
      "labels": tf.zeros((num_aus,), tf.int8),
      "intensity": tf.fill((num_aus,), tf.constant(UNKNOWN_INTENSITY, tf.int8)),
      "valid": tf.constant(False),
    }
  ).repeat(padding)
  return examples.concatenate(blank).batch(batch_size)
