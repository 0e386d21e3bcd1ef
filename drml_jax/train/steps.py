"""Jit-compiled train and evaluation steps over `TrainState` pytrees.

The steps are plain `jax.jit` functions of state pytrees (no `nnx.jit`
per-call overhead); the train step differentiates exactly the parameters
and returns the next state, its buffers donated.
"""

from __future__ import annotations

from typing import Callable

import jax
import optax
from flax import nnx

from drml_jax.model.train_state import ModelState, TrainState, merge
from drml_jax.scoring.metrics import confusion_counts
from drml_jax.train.losses import multilabel_sigmoid_cross_entropy


def dropout_rngs(seed: int, step: jax.Array) -> nnx.Rngs:
  """The dropout stream of one step: a pure function of (seed, step)."""
  return nnx.Rngs(dropout=jax.random.fold_in(jax.random.key(seed), step))


def make_train_step(
  graphdef: nnx.GraphDef,
  tx: optax.GradientTransformation,
  *,
  seed: int = 0,
  loss_fn: Callable = multilabel_sigmoid_cross_entropy,
  donate: bool = True,
) -> Callable:
  """step(state, images, labels) -> (next state, loss)."""

  def step(state: TrainState, images, labels):
    def loss_of(params):
      # Fresh Variables at this trace level: the region layer's nnx.vmap
      # refuses the ones jit created one level up.
      model = nnx.merge(graphdef, params, state.batch_stats, copy=True)
      loss = loss_fn(model(images, rngs=dropout_rngs(seed, state.step)), labels)
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
  graphdef: nnx.GraphDef, loss_fn: Callable = multilabel_sigmoid_cross_entropy
) -> Callable:
  """step(model_state, images, labels, valid) -> (counts (C,4), summed loss,
  probabilities (B,C)); the probabilities feed the host-side AUC."""

  def step(state: ModelState, images, labels, valid):
    logits = merge(graphdef, state)(images)
    labels = labels * valid[:, None].astype(labels.dtype)
    return (
      confusion_counts(logits, labels, valid),
      loss_fn(logits, labels) * images.shape[0],
      jax.nn.sigmoid(logits.astype(jax.numpy.float32)),
    )

  return jax.jit(step)
