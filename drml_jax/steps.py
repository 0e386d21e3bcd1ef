"""Jit-compiled train and evaluation steps over split NNX state.

The model is split into a graph definition, its parameters and the rest of
its state (BatchNorm statistics, dropout RNG counters); the steps are plain
`jax.jit` functions of those pytrees, which avoids `nnx.jit`'s per-call
overhead and differentiates exactly the parameters.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import optax
from flax import nnx

from drml_jax.losses import multilabel_sigmoid_cross_entropy
from drml_jax.metrics import confusion_counts


@dataclasses.dataclass
class SplitModel:
  """A model as pytrees: train/eval graph definitions, params and the rest."""
  train_graphdef: Any
  eval_graphdef: Any
  params: nnx.State
  rest: nnx.State

  @classmethod
  def of(cls, model: nnx.Module) -> "SplitModel":
    model.eval()
    eval_graphdef = nnx.graphdef(model)
    model.train()
    train_graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    return cls(train_graphdef, eval_graphdef, params, rest)

  def merge(self, train: bool = False) -> nnx.Module:
    graphdef = self.train_graphdef if train else self.eval_graphdef
    return nnx.merge(graphdef, self.params, self.rest)


def make_train_step(graphdef, tx: optax.GradientTransformation,
                    loss_fn: Callable = multilabel_sigmoid_cross_entropy,
                    donate: bool = True) -> Callable:
  """step(params, rest, opt_state, images, labels) -> (params, rest, opt_state, loss)."""

  def step(params, rest, opt_state, images, labels):
    def loss_of(params):
      # Fresh Variables at this trace level: the region layer's nnx.vmap
      # refuses the ones jit created one level up.
      model = nnx.merge(graphdef, params, rest, copy=True)
      loss = loss_fn(model(images), labels)
      return loss, nnx.state(model, nnx.Not(nnx.Param))

    (loss, rest_out), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), rest_out, opt_state, loss

  return jax.jit(step, donate_argnums=(0, 1, 2) if donate else ())


def make_eval_step(graphdef,
                   loss_fn: Callable = multilabel_sigmoid_cross_entropy) -> Callable:
  """step(params, rest, images, labels, valid) -> (counts (C,4), summed loss)."""

  def step(params, rest, images, labels, valid):
    logits = nnx.merge(graphdef, params, rest)(images)
    labels = labels * valid[:, None].astype(labels.dtype)
    return confusion_counts(logits, labels, valid), loss_fn(logits, labels) * images.shape[0]

  return jax.jit(step)
