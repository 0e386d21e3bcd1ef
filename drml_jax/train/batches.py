"""A built dataset (data_pipeline.registry.build) as this process's numpy batches.

A split is cut into `data_shards` disjoint parts (the pipeline's process
parts); process p of P reads parts p*k .. p*k+k-1 (k = data_shards / P) and
concatenates their batches. The global batch therefore depends on
`data_shards` alone, not on how many processes share it: a one-process run
with `data_shards=2` sees the very batches of a two-process run.

The pipeline yields uint8 images and crop windows; `model_inputs` (a
`model_inputs.ModelInputs`) turns them into the model's float32 inputs
inside the jitted steps, resized for a model built for another
`input_size` (small test models).
"""

from __future__ import annotations

import itertools
from typing import Iterator

import numpy as np

from data_pipeline import model_inputs, pipeline, splits


class Batches:
  """This process's batches of one dataset, from its `data_shards` parts."""

  def __init__(
    self,
    builder,
    *,
    data_shards: int,
    process_index: int,
    process_count: int,
    mode: str,
    normalization: str,
    input_size: int = model_inputs.INPUT_SIZE,
    mean: np.ndarray | None = None,
  ):
    if data_shards % process_count:
      raise ValueError(
        f"data_shards {data_shards} is not a multiple of the "
        f"{process_count} processes: pass --data-shards "
        f"{process_count} or a multiple of it"
      )
    self.builder = builder
    self.data_shards = data_shards
    per_process = data_shards // process_count
    self.shards = range(
      process_index * per_process, (process_index + 1) * per_process
    )
    if normalization == "bgr_mean" and mean is None:
      mean = splits.mean_image(builder)
    self.mean = mean  # the mean image of "bgr_mean", else None
    self.mode = mode
    self.model_inputs = model_inputs.ModelInputs(
      mode, normalization, mean=mean, input_size=input_size
    )

  def _shard_batch_size(self, batch_size: int) -> int:
    if batch_size % self.data_shards:
      raise ValueError(
        f"batch size {batch_size} does not split into {self.data_shards} "
        "data shards: choose a multiple of the number of processes"
      )
    return batch_size // self.data_shards

  def steps_per_epoch(self, split: str, batch_size: int) -> int:
    """Full global batches of `batch_size` per training epoch."""
    return splits.num_batches(
      self.builder,
      split,
      train=True,
      batch_size=self._shard_batch_size(batch_size),
      process_count=self.data_shards,
    )

  def _concat(self, split: str, batch_size: int, **kwargs) -> Iterator[dict]:
    per_shard = self._shard_batch_size(batch_size)
    parts = [
      pipeline.make_dataset(
        self.builder,
        split,
        batch_size=per_shard,
        process_index=shard,
        process_count=self.data_shards,
        mode=self.mode,
        **kwargs,
      )
      for shard in self.shards
    ]
    for batches in zip(*parts):
      yield {
        key: np.concatenate([b[key] for b in batches]) for key in batches[0]
      }

  def train(
    self,
    split: str,
    batch_size: int,
    *,
    seed: int,
    start_step: int,
    num_epochs: int,
  ) -> Iterator[dict]:
    """Training batches (this process's rows of each global batch) from
    `start_step` to the end of epoch `num_epochs`.

    Exactly that many: tf.data is never asked for the end of its last epoch
    after them, a call that waited long in some quick runs
    (benchmarks/README.md#the-quick-run)."""
    steps = self.steps_per_epoch(split, batch_size) * num_epochs - start_step
    batches = self._concat(
      split,
      batch_size,
      train=True,
      seed=seed,
      start_step=start_step,
      num_epochs=num_epochs,
    )
    return itertools.islice(batches, max(steps, 0))

  def evaluation(self, split: str, batch_size: int) -> Iterator[dict]:
    """One pass over this process's part of `split`, padded with `valid` False."""
    return self._concat(split, batch_size, train=False)
