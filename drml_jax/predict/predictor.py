"""A trained DRML as a function of face crops: AU probabilities and occurrences.

  predictor = load_predictor(workdir="workdirs/quick")
  probabilities, occurrences = predictor(faces)  # (N, 200, 200, 3) uint8 RGB

Faces go through evaluation's own preprocessing
(`data_pipeline.pipeline.preprocess_eval`, then `batches.resize_inputs` for a
model built for another input size), then a jitted forward pass in batches
padded to `batch_size`, so it compiles once. An AU occurs when its
probability exceeds its threshold (0.5, the protocol's, unless the
checkpoint holds per-AU thresholds tuned on a validation split), compared
as logits, as evaluation's metrics do.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import numpy as np
from flax import nnx

from data_pipeline import pipeline
from drml_jax.model import train_state
from drml_jax.model.train_state import ModelState
from drml_jax.store import saved_run
from drml_jax.train import batches

DEFAULT_BATCH_SIZE = 16


def _forward(graphdef: nnx.GraphDef) -> Callable:
  """forward(state, images, logit_thresholds) -> (probabilities, occurrences)."""

  def forward(state: ModelState, images, logit_thresholds):
    logits = train_state.merge(graphdef, state)(images)
    return jax.nn.sigmoid(logits), logits > logit_thresholds

  return jax.jit(forward)


@dataclasses.dataclass
class Predictor:
  """A DRML with its preprocessing, AU names and thresholds."""

  graphdef: nnx.GraphDef  # eval mode
  state: ModelState
  aus: tuple[int, ...]
  thresholds: np.ndarray  # (C,) probabilities
  mode: str = "resize"
  normalization: str = "rgb"
  mean: np.ndarray | None = None
  input_size: int = pipeline.INPUT_SIZE
  batch_size: int = DEFAULT_BATCH_SIZE
  description: str = ""
  forward: Callable = dataclasses.field(init=False, repr=False)
  logit_thresholds: np.ndarray = dataclasses.field(init=False, repr=False)

  def __post_init__(self):
    self.forward = _forward(self.graphdef)
    self.logit_thresholds = np.log(
      self.thresholds / (1 - self.thresholds)
    ).astype(np.float32)

  @classmethod
  def of(
    cls, model: nnx.Module, aus, *, thresholds=None, **options
  ) -> "Predictor":
    """A predictor of an NNX DRML; `options` are the dataclass fields."""
    thresholds = (
      np.full(len(aus), 0.5) if thresholds is None else np.asarray(thresholds)
    )
    graphdefs, state = train_state.split(model)
    return cls(
      graphdefs.eval,
      state,
      tuple(aus),
      thresholds.astype(np.float64),
      **options,
    )

  def __call__(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 200, 200, 3) uint8 faces -> float32 probabilities and bool occurrences, (N, C)."""
    inputs = batches.resize_inputs(
      pipeline.preprocess_eval(
        faces, mode=self.mode, normalization=self.normalization, mean=self.mean
      ),
      self.input_size,
    )
    probabilities, occurrences = [], []
    for start in range(0, len(inputs), self.batch_size):
      batch = inputs[start : start + self.batch_size]
      padded = np.zeros((self.batch_size, *batch.shape[1:]), np.float32)
      padded[: len(batch)] = batch
      p, o = self.forward(self.state, padded, self.logit_thresholds)
      probabilities.append(np.asarray(p)[: len(batch)])
      occurrences.append(np.asarray(o)[: len(batch)])
    return np.concatenate(probabilities), np.concatenate(occurrences)


def load_predictor(
  *,
  workdir: str | None = None,
  checkpoint: str | None = None,
  aus: tuple[int, ...] | None = None,
  batch_size: int = DEFAULT_BATCH_SIZE,
) -> Predictor:
  """The predictor of a training work directory (its best checkpoint) or of
  a checkpoint (`drml_jax.store.saved_run.load`): the preprocessing, AUs and
  thresholds stored with it; a PyTorch file is read with the protocol's
  preprocessing (resize, RGB / 255) and its AUs are `aus`, else DISFA+'s
  (12) or DISFA's (8). Raises ValueError / FileNotFoundError in one line.
  """
  trained = saved_run.load(workdir=workdir, checkpoint=checkpoint, aus=aus)
  inputs = trained.inputs
  if not inputs.aus:
    raise ValueError(
      f"{trained.description} predicts {trained.model_config['num_aus']} "
      "AUs: name them with --aus 1,2,..."
    )
  return Predictor.of(
    trained.model,
    inputs.aus,
    thresholds=trained.thresholds,
    mode=inputs.mode,
    normalization=inputs.normalization,
    mean=inputs.mean,
    input_size=inputs.input_size,
    batch_size=batch_size,
    description=trained.description,
  )
