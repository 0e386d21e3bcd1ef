"""Jit-compiled train and evaluation steps over `TrainState` pytrees.

The steps are plain `jax.jit` functions of state pytrees (no `nnx.jit`
per-call overhead); the train step differentiates exactly the parameters
and returns the next state, its buffers donated. A step takes a batch dict
with "labels", "intensity" where the network has the intensity head, and
"valid" to evaluate; `prepare` makes the model's inputs
from it inside the step: `model_inputs.ModelInputs` from the pipeline's
uint8 images and crop windows, or by default the batch's "image" as it is.
"""

from __future__ import annotations

from typing import Callable

import jax
import optax
from flax import nnx

from drml_jax.model.train_state import ModelState, TrainState, merge
from drml_jax.scoring.metrics import confusion_counts
from drml_jax.train.losses import drml_loss, multilabel_sigmoid_cross_entropy


def model_images(batch: dict) -> jax.Array:
  """A batch whose "image" is already the model's input."""
  return batch["image"]


def dropout_rngs(seed: int, step: jax.Array) -> nnx.Rngs:
  """The dropout stream of one step: a pure function of (seed, step)."""
  return nnx.Rngs(dropout=jax.random.fold_in(jax.random.key(seed), step))


def make_train_step(
  graphdef: nnx.GraphDef,
  tx: optax.GradientTransformation,
  *,
  seed: int = 0,
  loss_fn: Callable = drml_loss,
  prepare: Callable = model_images,
  donate: bool = True,
) -> Callable:
  """step(state, batch) -> (next state, loss); loss_fn(outputs, batch) is
  the loss of the network's `Outputs`."""

  def step(state: TrainState, batch: dict):
    images = prepare(batch)

    def loss_of(params):
      # Fresh Variables at this trace level: the region layer's nnx.vmap
      # refuses the ones jit created one level up.
      model = nnx.merge(graphdef, params, state.batch_stats, copy=True)
      outputs = model.outputs(images, rngs=dropout_rngs(seed, state.step))
      loss = loss_fn(outputs, batch)
      return loss, nnx.state(model, nnx.BatchStat)

    (loss, batch_stats), grads = jax.value_and_grad(loss_of, has_aux=True)(
      state.params
    )
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    return state.replace(
      params=optax.apply_updates(state.params, updates),
      batch_stats=batch_stats,
      opt_state=opt_state,
      step=state.step + 1,
    ), loss

  return jax.jit(step, donate_argnums=(0,) if donate else ())


def make_eval_step(
  graphdef: nnx.GraphDef,
  loss_fn: Callable = multilabel_sigmoid_cross_entropy,
  prepare: Callable = model_images,
) -> Callable:
  """step(model_state, batch) -> (counts (C,4), summed occurrence loss,
  probabilities (B,C), intensities (B,C) or None without the intensity
  head); the probabilities feed the host-side AUC, the intensities the
  intensity scores."""

  def step(state: ModelState, batch: dict):
    images, labels, valid = prepare(batch), batch["labels"], batch["valid"]
    outputs = merge(graphdef, state).outputs(images)
    logits, intensity = outputs.logits, outputs.intensity
    labels = labels * valid[:, None].astype(labels.dtype)
    return (
      confusion_counts(logits, labels, valid),
      loss_fn(logits, labels) * images.shape[0],
      jax.nn.sigmoid(logits.astype(jax.numpy.float32)),
      None if intensity is None else intensity.astype(jax.numpy.float32),
    )

  return jax.jit(step)
