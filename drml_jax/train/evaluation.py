"""Evaluating a DRML on a split: summed confusion counts and loss, every
example exactly once (the last batch's padding is masked), over all devices,
and the per-example probabilities that AUC is computed from."""

from __future__ import annotations

import dataclasses
from typing import Iterable

import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

from drml_jax.model import train_state
from drml_jax.model.train_state import ModelState
from drml_jax.runtime import parallel
from drml_jax.train import batches
from drml_jax.train.steps import make_eval_step


@dataclasses.dataclass
class SplitResult:
  """One evaluation of a split.

  Attributes:
    counts: (C, 4) summed confusion counts [tp, fp, tn, fn] at 0.5.
    loss: the loss per example.
    probabilities: (N, C) predicted probabilities of the split's examples
      (padding left out), in no particular order.
    labels: (N, C) their labels in {-1, 0, +1} (0: ignored).
  """

  counts: np.ndarray
  loss: float
  probabilities: np.ndarray
  labels: np.ndarray


def evaluate_split(
  eval_step, state: ModelState, batches: Iterable[dict], mesh
) -> SplitResult:
  """Counts, loss and probabilities over every batch of a split."""
  counts, loss, rows = None, jnp.zeros(()), []
  for batch in batches:
    batch = parallel.shard_batch(batch, mesh)
    batch_counts, batch_loss, probabilities = eval_step(state, batch)
    counts = batch_counts if counts is None else counts + batch_counts
    loss = loss + batch_loss
    rows.append((probabilities, batch["labels"], batch["valid"]))
  counts, loss = parallel.fetch((counts, loss))
  probabilities, labels, valid = (
    np.concatenate(part)
    for part in zip(
      *(multihost_utils.process_allgather(row, tiled=True) for row in rows)
    )
  )
  return SplitResult(
    counts=counts,
    loss=float(loss) / max(int(valid.sum()), 1),
    probabilities=probabilities[valid],
    labels=labels[valid],
  )


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
) -> SplitResult:
  """The evaluation of `model` on a split of a built dataset."""
  mesh = parallel.make_mesh()
  parallel.check_batch_size(batch_size, "--batch-size")
  graphdefs, state = train_state.split(model)
  source = batches.Batches(
    builder,
    data_shards=1,
    process_index=0,
    process_count=1,
    mode=mode,
    normalization=normalization,
    mean=mean,
    input_size=input_size,
  )
  return evaluate_split(
    make_eval_step(graphdefs.eval, prepare=source.model_inputs),
    parallel.replicate(state, mesh),
    source.evaluation(split, batch_size),
    mesh,
  )
