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
import os
from typing import Callable

import jax
import numpy as np
from flax import nnx

from data_pipeline import errors, pipeline, registry
from data_pipeline.sources.base import DISFA_AUS, DISFA_PLUS_AUS, DataError
from drml_jax.model import train_state
from drml_jax.model.train_state import ModelState
from drml_jax.store import checkpoint as checkpoints
from drml_jax.store import workdir as workdirs
from drml_jax.train import batches

DEFAULT_AUS = {len(DISFA_PLUS_AUS): DISFA_PLUS_AUS, len(DISFA_AUS): DISFA_AUS}
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


def _checked_thresholds(
  thresholds, num_aus: int, where: str
) -> np.ndarray | None:
  if thresholds is None:
    return None
  values = np.asarray(thresholds, np.float64)
  if values.shape != (num_aus,) or not ((values > 0) & (values < 1)).all():
    raise ValueError(
      f"{where}: thresholds {list(thresholds)} are not {num_aus} "
      "probabilities in (0, 1); fix or remove them"
    )
  return values


def load_predictor(
  *,
  workdir: str | None = None,
  checkpoint: str | None = None,
  aus: tuple[int, ...] | None = None,
  batch_size: int = DEFAULT_BATCH_SIZE,
) -> Predictor:
  """The predictor of a training work directory or of a checkpoint.

  A work directory gives its best checkpoint, its preprocessing and its
  dataset's AUs (and, for bgr_mean, its training split's mean image: the
  dataset is built if needed). A bare checkpoint (orbax directory or a
  PyTorch DRML file) is read with the protocol's preprocessing (resize,
  RGB / 255); its AUs are `aus`, else DISFA+'s (12) or DISFA's (8).
  Raises ValueError / FileNotFoundError with a one-line message.
  """
  run = workdirs.read_config(workdir) if workdir else {}
  trained_on = run.get("data", {})
  path = (
    os.path.join(workdir, workdirs.CHECKPOINT_DIR) if workdir else checkpoint
  )
  if not os.path.exists(path):
    raise FileNotFoundError(
      f"no checkpoint at {path}: pass a drml_jax.train work directory, "
      "an orbax checkpoint directory or a PyTorch DRML .pth file"
    )
  try:
    model, model_config, description = checkpoints.load_model(path)
  except ValueError as error:
    message = errors.first_line(error)
    raise ValueError(
      message
      if path in message
      else f"{path}: {message}; pass a DRML checkpoint"
    ) from None
  num_aus = model_config["num_aus"]
  normalization = trained_on.get("normalization", "rgb")
  builder = None
  if run and (aus is None or normalization == "bgr_mean"):
    try:
      builder = registry.build(
        trained_on["dataset"],
        fold=trained_on["fold"],
        dataset_config=trained_on["dataset_config"],
        data_dir=trained_on["data_dir"],
        manual_dir=trained_on["manual_dir"],
      )
    except (
      DataError
    ) as error:  # the run's dataset is gone: --aus does without it (rgb)
      hint = (
        ""
        if normalization == "bgr_mean"
        else "; or name the AUs with --aus 1,2,..."
      )
      raise ValueError(errors.first_line(error) + hint) from None
  if aus is None:
    aus = registry.aus(builder) if builder else DEFAULT_AUS.get(num_aus)
    if aus is None:
      raise ValueError(
        f"{path} predicts {num_aus} AUs: name them with --aus 1,2,..."
      )
  if len(aus) != num_aus:
    raise ValueError(
      f"{path} predicts {num_aus} AUs but --aus names {len(aus)}: "
      f"name {num_aus}"
    )
  thresholds = _checked_thresholds(
    checkpoints.read_thresholds(path) if os.path.isdir(path) else None,
    num_aus,
    path,
  )
  return Predictor.of(
    model,
    aus,
    thresholds=thresholds,
    mode=trained_on.get("mode", "resize"),
    normalization=normalization,
    mean=pipeline.mean_image(builder) if normalization == "bgr_mean" else None,
    input_size=model_config["input_size"],
    batch_size=batch_size,
    description=description,
  )
