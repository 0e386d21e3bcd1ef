"""An NNX DRML exported as one program: uint8 faces in, AU probabilities out
(and intensities, for a model with the intensity head).

  predictor = predictor_of(model, aus, thresholds=..., mode="resize", ...)

The forward pass of evaluation (preprocessing, then the eval-mode network)
is traced once with `jax.export`, its batch dimension symbolic, its weights
a flat list of arrays as its first argument: no Flax type appears in its
signature, so the program runs, and is read back from disk, without Flax.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from data_pipeline.model_inputs import INPUT_SIZE, ModelInputs
from data_pipeline.sources.base import IMAGE_SIZE
from drml_jax.model import train_state
from drml_jax.predict import saliency
from drml_jax.predict.predictor import DEFAULT_BATCH_SIZE, Predictor

# Faces per evidence program call. One: a photo's face pays for no padding,
# and its 12 AUs' backward passes already run as a batch of 12.
EXPLAIN_BATCH = 1


def network_of(
  model: nnx.Module, outputs: bool = False
) -> tuple[Callable, list]:
  """(logits(weights, images): the eval-mode network as a pure function,
  its weights as a flat list). The network is merged inside each call, so
  the function can be traced and differentiated. With `outputs`, the
  function gives (logits, intensities or None) (`DRML.outputs`)."""
  graphdefs, state = train_state.split(model)
  weights, treedef = jax.tree.flatten(state)

  def logits(weights, images):
    network = train_state.merge(
      graphdefs.eval, jax.tree.unflatten(treedef, weights)
    )
    if not outputs:
      return network(images)
    computed = network.outputs(images)
    return computed.logits, computed.intensity

  return logits, weights


def argument_specs(weights, batch, image_shape, dtype) -> tuple:
  """An exported function's (weights, images) arguments: the weights'
  shapes, then `batch` images of `image_shape` (batch may be symbolic)."""
  return (
    [jax.ShapeDtypeStruct(w.shape, w.dtype) for w in weights],
    jax.ShapeDtypeStruct((batch, *image_shape), dtype),
  )


FACES = (IMAGE_SIZE, IMAGE_SIZE, 3)  # a Predictor's uint8 inputs


def export_forward(
  model: nnx.Module, preprocess: ModelInputs
) -> tuple[jax.export.Exported, list]:
  """forward(weights, faces, logit_thresholds) -> (probabilities,
  occurrences), and intensities third for a model with the intensity head,
  exported for any number of faces, and its weights."""
  network, weights = network_of(model, outputs=True)

  def forward(weights, faces, logit_thresholds):
    logits, intensities = network(weights, preprocess.faces(faces))
    predicted = (jax.nn.sigmoid(logits), logits > logit_thresholds)
    return predicted if intensities is None else (*predicted, intensities)

  (batch,) = jax.export.symbolic_shape("batch")
  exported = jax.export.export(jax.jit(forward))(
    *argument_specs(weights, batch, FACES, jnp.uint8),
    jax.ShapeDtypeStruct((model.fc3.out_features,), jnp.float32),
  )
  return exported, weights


def export_evidence(
  model: nnx.Module, preprocess: ModelInputs
) -> jax.export.Exported:
  """evidence(weights, faces) -> (N, C, S, S) per-AU evidence maps
  (`saliency.evidence`), exported for EXPLAIN_BATCH faces: the layers'
  own backward passes (convs.py, network.py) need a concrete batch."""
  network, weights = network_of(model)

  def explain(weights, faces):
    return saliency.evidence(network, weights, preprocess.faces(faces))

  return jax.export.export(jax.jit(explain))(
    *argument_specs(weights, EXPLAIN_BATCH, FACES, jnp.uint8)
  )


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
  explains: bool = False,
) -> Predictor:
  """The Predictor of an NNX DRML and its inputs (`mean`: the training
  split's BGR mean image, for normalization "bgr_mean"); with `explains`,
  also its evidence maps (`Predictor.evidence`)."""
  thresholds = (
    np.full(len(aus), 0.5) if thresholds is None else np.asarray(thresholds)
  )
  preprocess = ModelInputs(
    mode, normalization, mean=mean, input_size=input_size
  )
  exported, weights = export_forward(model, preprocess)
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
    explainer=export_evidence(model, preprocess) if explains else None,
  )
