"""An NNX DRML exported as one program: uint8 faces in, AU probabilities out.

  predictor = predictor_of(model, aus, thresholds=..., mode="resize", ...)

The forward pass of evaluation (preprocessing, then the eval-mode network)
is traced once with `jax.export`, its batch dimension symbolic, its weights
a flat list of arrays as its first argument: no Flax type appears in its
signature, so the program runs, and is read back from disk, without Flax.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from data_pipeline.inputs import INPUT_SIZE
from data_pipeline.sources.base import IMAGE_SIZE
from drml_jax.model import train_state
from drml_jax.predict.predictor import DEFAULT_BATCH_SIZE, Predictor
from drml_jax.predict.preprocessing import Preprocessing


def export_forward(
  model: nnx.Module, preprocess: Preprocessing
) -> tuple[jax.export.Exported, list]:
  """forward(weights, faces, logit_thresholds) -> (probabilities,
  occurrences), exported for any number of faces, and its weights."""
  graphdefs, state = train_state.split(model)
  weights, treedef = jax.tree.flatten(state)

  def forward(weights, faces, logit_thresholds):
    network = train_state.merge(
      graphdefs.eval, jax.tree.unflatten(treedef, weights)
    )
    logits = network(preprocess(faces))
    return jax.nn.sigmoid(logits), logits > logit_thresholds

  (batch,) = jax.export.symbolic_shape("batch")
  exported = jax.export.export(jax.jit(forward))(
    [jax.ShapeDtypeStruct(w.shape, w.dtype) for w in weights],
    jax.ShapeDtypeStruct((batch, IMAGE_SIZE, IMAGE_SIZE, 3), jnp.uint8),
    jax.ShapeDtypeStruct((model.fc3.out_features,), jnp.float32),
  )
  return exported, weights


def predictor_of(
  model: nnx.Module,
  aus,
  *,
  thresholds=None,
  mode: str = "resize",
  normalization: str = "rgb",
  mean: np.ndarray | None = None,
  input_size: int = INPUT_SIZE,
  batch_size: int = DEFAULT_BATCH_SIZE,
  description: str = "",
) -> Predictor:
  """The Predictor of an NNX DRML and its inputs (`mean`: the training
  split's BGR mean image, for normalization "bgr_mean")."""
  thresholds = (
    np.full(len(aus), 0.5) if thresholds is None else np.asarray(thresholds)
  )
  exported, weights = export_forward(
    model,
    Preprocessing(mode, normalization, mean=mean, input_size=input_size),
  )
  return Predictor(
    exported,
    weights,
    tuple(aus),
    thresholds,
    mode=mode,
    normalization=normalization,
    input_size=input_size,
    batch_size=batch_size,
    description=description,
  )
