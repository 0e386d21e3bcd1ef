"""The training state: one pytree in and out of the jitted step, saved whole.

A DRML splits into static graph definitions (train and eval mode differ only
there) and two state pytrees: its parameters and its BatchNorm statistics.
`TrainState` adds the optimizer state and the step count; dropout needs no
state of its own, its key is derived from the step (`steps.dropout_rngs`).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct


@dataclasses.dataclass(frozen=True)
class GraphDefs:
  """The model's structure in train and eval mode (static, never saved)."""

  train: nnx.GraphDef
  eval: nnx.GraphDef


@struct.dataclass
class ModelState:
  """What a trained network is: parameters and BatchNorm statistics."""

  params: nnx.State
  batch_stats: nnx.State


@struct.dataclass
class TrainState(ModelState):
  """ModelState plus the optimizer state and the number of steps taken."""

  opt_state: optax.OptState
  step: jax.Array


def split(model: nnx.Module) -> tuple[GraphDefs, ModelState]:
  """The model's graph definitions and state (the model is left in eval mode)."""
  model.train()
  train_graphdef, params, batch_stats = nnx.split(
    model, nnx.Param, nnx.BatchStat
  )
  model.eval()
  return GraphDefs(train_graphdef, nnx.graphdef(model)), ModelState(
    params, batch_stats
  )


def merge(graphdef: nnx.GraphDef, state: ModelState) -> nnx.Module:
  """The model a graph definition and a state describe."""
  return nnx.merge(graphdef, state.params, state.batch_stats)


def create(
  model: nnx.Module, tx: optax.GradientTransformation
) -> tuple[GraphDefs, TrainState]:
  """Step 0 of training `model` with `tx`."""
  graphdefs, state = split(model)
  return graphdefs, TrainState(
    params=state.params,
    batch_stats=state.batch_stats,
    opt_state=tx.init(state.params),
    step=jnp.zeros((), jnp.int32),
  )


def model_state(state: ModelState) -> ModelState:
  """The network part of a (train) state."""
  return ModelState(state.params, state.batch_stats)
