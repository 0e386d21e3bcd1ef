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
from drml_jax.scoring import scores
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
    intensity: (N, C) predicted intensities, None without the intensity head.
    intensity_labels: (N, C) their intensities 0..5 (-1: unknown), None
      without the head.
  """

  counts: np.ndarray
  loss: float
  probabilities: np.ndarray
  labels: np.ndarray
  intensity: np.ndarray | None = None
  intensity_labels: np.ndarray | None = None


def evaluate_split(
  eval_step, state: ModelState, batches: Iterable[dict], mesh
) -> SplitResult:
  """Counts, loss, probabilities and intensities over every batch of a split."""
  counts, loss, rows = None, jnp.zeros(()), []
  for batch in batches:
    batch = parallel.shard_batch(batch, mesh)
    batch_counts, batch_loss, probabilities, intensity = eval_step(state, batch)
    counts = batch_counts if counts is None else counts + batch_counts
    loss = loss + batch_loss
    row = {
      "probabilities": probabilities,
      "labels": batch["labels"],
      "valid": batch["valid"],
    }
    if intensity is not None:
      row.update(intensity=intensity, intensity_labels=batch["intensity"])
    rows.append(row)
  counts, loss = parallel.fetch((counts, loss))
  gathered = [
    multihost_utils.process_allgather(row, tiled=True) for row in rows
  ]
  columns = {
    key: np.concatenate([row[key] for row in gathered]) for key in rows[0]
  }
  valid = columns.pop("valid")
  return SplitResult(
    counts=counts,
    loss=float(loss) / max(int(valid.sum()), 1),
    **{key: column[valid] for key, column in columns.items()},
  )


def scored_intensity(result: SplitResult, aus) -> dict | None:
  """`scores.intensity_scores` of an evaluation; None without the intensity
  head or where the split codes no intensity at all."""
  if result.intensity is None or not (result.intensity_labels >= 0).any():
    return None
  return scores.intensity_scores(result.intensity, result.intensity_labels, aus)


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
