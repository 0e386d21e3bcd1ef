"""A trained DRML as a function of face crops: AU probabilities, occurrences
and, for a model with the intensity head, intensities.

  predictor = saved_predictor.load_predictor(workdir="workdirs/quick")
  predictions = predictor(faces)  # (N, 200, 200, 3) uint8 RGB -> Predictions
  predictions.probabilities, predictions.occurrences  # (N, C)
  predictions.intensities  # (N, C) in [0, 5], or None without the head

A Predictor is an exported forward pass (`jax.export`, made by
`drml_jax.predict.programs`) and its weights: evaluation's preprocessing and
the network in one program, faces in as uint8, whatever their number. It
needs neither Flax nor the checkpoint, so a saved one starts in a moment
(`saved_predictor`). A call's faces run in batches of `batch_size`; a
smaller remainder is padded to the next power of two, so a photo's one face
compiles a batch of 1 and a video a few sizes at most, each kept across runs
by the persistent compilation cache. An AU occurs when its probability
exceeds its threshold (0.5, the protocol's, unless the checkpoint holds
per-AU thresholds tuned on a validation split), compared as logits, as
evaluation's metrics do. The batching and the thresholds are
`BatchedPredictor`'s, which an ONNX file's predictor shares
(`onnx_predictor`). Every predictor returns `Predictions`; its
`has_intensity` says whether they hold intensities.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import jax
import numpy as np

from data_pipeline.model_inputs import INPUT_SIZE
from data_pipeline.sources.base import IMAGE_SIZE

DEFAULT_BATCH_SIZE = 16


def au_name(au: int) -> str:
  """An AU's name in the CSV, the report and exported files: AU01."""
  return f"AU{int(au):02d}"


def require_intensity(has_intensity: bool, description: str) -> None:
  """ValueError in one line unless the model has the intensity head: what
  --intensity (predict, live, serve, export) asks for."""
  if not has_intensity:
    raise ValueError(
      f"--intensity: {description} has no intensity head, so it gives no AU "
      "intensities; train a model with one (python -m drml_jax.train "
      "--intensity), or drop --intensity"
    )


class Predictions(NamedTuple):
  """A predictor's answer for N faces."""

  probabilities: np.ndarray  # (N, C) float32
  occurrences: np.ndarray  # (N, C) bool
  # (N, C) float32 in [0, 5] (0 absent, 5 maximal), None without the head.
  intensities: np.ndarray | None = None


class BatchedPredictor:
  """What every predictor shares: faces in batches of `batch_size`, a
  smaller remainder padded (`padded_size`), AUs occurring where their
  logits exceed the thresholds' logits. A subclass holds `aus`,
  `thresholds`, `mode`, `normalization`, `input_size`, `batch_size` and
  `description`, calls `set_thresholds` once, and gives `run` and
  `has_intensity`."""

  batch_size: int
  thresholds: np.ndarray  # (C,) probabilities
  logit_thresholds: np.ndarray  # (C,) float32, the same as logits

  def set_thresholds(self) -> None:
    """Sets `logit_thresholds` from `thresholds`."""
    self.thresholds = np.asarray(self.thresholds, np.float64)
    self.logit_thresholds = np.log(
      self.thresholds / (1 - self.thresholds)
    ).astype(np.float32)

  @property
  def has_intensity(self) -> bool:
    """Whether the model has the intensity head: `Predictions.intensities`."""
    raise NotImplementedError

  def run(self, faces: np.ndarray) -> tuple:
    """A padded batch of uint8 faces -> (probabilities, occurrences) and,
    with the head, intensities."""
    raise NotImplementedError

  def padded_size(self, count: int) -> int:
    """The batch `count` faces run in: the next power of two, at most batch_size."""
    return min(self.batch_size, 1 << max(count - 1, 0).bit_length())

  def prepare(self, count: int) -> None:
    """Compiles (or reads from the cache) the program that `count` faces
    run in, by running it once on blank faces."""
    size = min(count, self.batch_size)
    self(np.zeros((max(size, 1), IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8))

  def __call__(self, faces: np.ndarray) -> Predictions:
    """(N, 200, 200, 3) uint8 faces -> float32 probabilities, bool
    occurrences and (with the head) float32 intensities, each (N, C)."""
    return Predictions(*self._batched(self.run, faces))

  def _batched(
    self, run: Callable, faces: np.ndarray, fixed: int | None = None
  ) -> tuple:
    """`run`'s outputs over `faces` in batches, concatenated: batches of
    `fixed`, else of batch_size with the remainder padded (`padded_size`)."""
    if faces.ndim != 4 or faces.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
      raise ValueError(
        f"expected (N, {IMAGE_SIZE}, {IMAGE_SIZE}, 3) faces, got {faces.shape}"
      )
    step = fixed or self.batch_size
    outputs = []
    for start in range(0, len(faces), step):
      batch = faces[start : start + step]
      padded = np.zeros(
        (fixed or self.padded_size(len(batch)), *batch.shape[1:]), np.uint8
      )
      padded[: len(batch)] = batch
      outputs.append([np.asarray(x)[: len(batch)] for x in run(padded)])
    return tuple(np.concatenate(parts) for parts in zip(*outputs))


@dataclasses.dataclass
class Predictor(BatchedPredictor):
  """An exported DRML with its weights, AU names, thresholds and inputs."""

  # (weights, faces, logit thresholds) -> (p, o), or (p, o, intensities)
  exported: jax.export.Exported
  weights: list  # the exported functions' first argument: arrays
  aus: tuple[int, ...]
  thresholds: np.ndarray  # (C,) probabilities
  mode: str = "resize"
  normalization: str = "rgb"
  input_size: int = INPUT_SIZE
  batch_size: int = DEFAULT_BATCH_SIZE
  description: str = ""
  # (weights, faces) -> (N, C, S, S) evidence maps (`saliency`), if exported.
  explainer: jax.export.Exported | None = None
  forward: Callable = dataclasses.field(init=False, repr=False)
  logit_thresholds: np.ndarray = dataclasses.field(init=False, repr=False)
  explain: Callable | None = dataclasses.field(init=False, repr=False)

  def __post_init__(self):
    self.forward = jax.jit(self.exported.call)
    self.explain = (
      None if self.explainer is None else jax.jit(self.explainer.call)
    )
    self.weights = [jax.device_put(w) for w in self.weights]
    self.set_thresholds()

  @property
  def has_intensity(self) -> bool:
    """Whether the program gives intensities (a third output)."""
    return len(self.exported.out_avals) == 3

  def run(self, faces: np.ndarray) -> tuple:
    """A padded batch of uint8 faces -> (probabilities, occurrences) and,
    with the head, intensities."""
    return self.forward(self.weights, faces, self.logit_thresholds)

  def evidence(self, faces: np.ndarray) -> np.ndarray:
    """(N, 200, 200, 3) uint8 faces -> (N, C, S, S) float32 evidence maps,
    each AU's over the model's S x S input (`drml_jax.predict.saliency`)."""
    if self.explainer is None:
      raise ValueError("this predictor was loaded without saliency")
    (maps,) = self._batched(
      lambda batch: (self.explain(self.weights, batch),),
      faces,
      self.explainer.in_avals[-1].shape[0],  # the faces, last
    )
    return maps
