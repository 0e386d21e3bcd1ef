"""Orbax checkpoints of a DRML model: its state and the config that builds it.

A checkpoint directory is an `ocp.CheckpointManager` directory whose steps hold
an item `model` (parameters and BatchNorm statistics) and an item
`model_config` (the JSON keyword arguments of `DRML`). Training adds its own
items beside them; anything that only needs the network reads these two.
"""

from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp
from flax import nnx

from drml_jax.model import DRML

MODEL_ITEM = "model"
CONFIG_ITEM = "model_config"


def build_model(model_config: dict, seed: int = 0) -> DRML:
  """A DRML from its JSON config (keyword arguments of `DRML`)."""
  return DRML(**model_config, rngs=nnx.Rngs(seed))


def model_state(model: nnx.Module) -> dict:
  """Parameters and BatchNorm statistics as a pure dict (no RNG state)."""
  return nnx.state(model, nnx.Not(nnx.RngState)).to_pure_dict()


def _manager(directory, **options) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(os.path.abspath(directory),
                               item_names=(MODEL_ITEM, CONFIG_ITEM), **options)


def save_model(directory, model: DRML, model_config: dict, *, step: int = 0) -> None:
  """Writes the model and its config as `step` of a checkpoint directory."""
  with _manager(directory) as manager:
    manager.save(step, args=ocp.args.Composite(**{
        MODEL_ITEM: ocp.args.StandardSave(model_state(model)),
        CONFIG_ITEM: ocp.args.JsonSave(model_config),
    }))
    manager.wait_until_finished()


def restore_into(model: DRML, manager: ocp.CheckpointManager, step: int) -> None:
  """Loads step's `model` item into an already built model."""
  target = jax.tree.map(ocp.utils.to_shape_dtype_struct, model_state(model))
  restored = manager.restore(step, args=ocp.args.Composite(**{
      MODEL_ITEM: ocp.args.StandardRestore(target)}))[MODEL_ITEM]
  state = nnx.state(model, nnx.Not(nnx.RngState))
  nnx.replace_by_pure_dict(state, restored)
  nnx.update(model, state)


def restore_model(directory, *, step: int | None = None) -> tuple[DRML, dict]:
  """The model and its config from a checkpoint directory (latest step by default)."""
  if not os.path.isdir(directory):
    raise FileNotFoundError(f"no checkpoint directory at {directory}")
  with _manager(directory, options=ocp.CheckpointManagerOptions(create=False)) as manager:
    step = manager.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"{directory} holds no checkpoint step")
    model_config = manager.restore(step, args=ocp.args.Composite(**{
        CONFIG_ITEM: ocp.args.JsonRestore()}))[CONFIG_ITEM]
    model = build_model(model_config)
    restore_into(model, manager, step)
  return model, model_config
