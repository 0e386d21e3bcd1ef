"""Evaluating a DRML on a split: summed confusion counts and loss, every
example exactly once (the last batch's padding is masked), over all devices."""

from __future__ import annotations

from typing import Iterable

import jax.numpy as jnp
import numpy as np

from drml_jax import data, parallel, train_state
from drml_jax.steps import make_eval_step
from drml_jax.train_state import ModelState


def evaluate_split(
  eval_step, state: ModelState, batches: Iterable[dict], mesh
) -> tuple[np.ndarray, float]:
  """Summed (C, 4) confusion counts and summed loss over every batch."""
  counts, loss = None, jnp.zeros(())
  for batch in batches:
    batch = parallel.shard_batch(batch, mesh)
    batch_counts, batch_loss = eval_step(
      state, batch["image"], batch["labels"], batch["valid"]
    )
    counts = batch_counts if counts is None else counts + batch_counts
    loss = loss + batch_loss
  counts, loss = parallel.fetch((counts, loss))
  return counts, float(loss)


def evaluate_model(
  model,
  *,
  builder,
  batch_size: int,
  mode: str,
  normalization: str,
  input_size: int,
  mean: np.ndarray | None = None,
  split: str = "test",
) -> tuple[np.ndarray, float]:
  """Counts and mean loss of `model` on a split of a built dataset."""
  mesh = parallel.make_mesh()
  parallel.check_batch_size(batch_size, "--batch-size")
  graphdefs, state = train_state.split(model)
  batches = data.Batches(
    builder,
    data_shards=1,
    process_index=0,
    process_count=1,
    mode=mode,
    normalization=normalization,
    mean=mean,
    input_size=input_size,
  )
  counts, loss = evaluate_split(
    make_eval_step(graphdefs.eval),
    parallel.replicate(state, mesh),
    batches.evaluation(split, batch_size),
    mesh,
  )
  return counts, loss / builder.info.splits[split].num_examples
