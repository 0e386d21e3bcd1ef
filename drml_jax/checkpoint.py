"""Orbax checkpoints of a DRML model: its state and the config that builds it.

A checkpoint directory is an `ocp.CheckpointManager` directory whose steps hold
an item `model` (parameters and BatchNorm statistics) and an item
`model_config` (the JSON keyword arguments of `DRML`). Training adds its own
items beside them (`TrainCheckpoints`); anything that only needs the network
reads these two.
"""

from __future__ import annotations

import logging
import os

import jax
import orbax.checkpoint as ocp
from flax import nnx
from orbax.checkpoint.checkpoint_managers import preservation_policy

from drml_jax.model import DRML

MODEL_ITEM = "model"
CONFIG_ITEM = "model_config"
OPT_ITEM = "opt_state"  # optax state
RNG_ITEM = "rng_counts"  # dropout RNG counters, so a resumed run draws the same masks
TRAIN_ITEM = "train_state"  # JSON: step, epoch, metrics
BEST_METRIC = "mean_f1"


def build_model(model_config: dict, seed: int = 0) -> DRML:
  """A DRML from its JSON config (keyword arguments of `DRML`)."""
  return DRML(**model_config, rngs=nnx.Rngs(seed))


def model_state(model: nnx.Module) -> dict:
  """Parameters and BatchNorm statistics as a pure dict (no RNG state)."""
  return nnx.to_pure_dict(nnx.state(model, nnx.Not(nnx.RngState)))


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


def _quiet_unevaluated_saves(record: logging.LogRecord) -> bool:
  # Steps saved between evaluations carry no metrics by design; orbax warns
  # about each of them.
  return "did not provide metrics" not in record.getMessage()


logging.getLogger("absl").addFilter(_quiet_unevaluated_saves)


def _best_metric(metrics: dict) -> float:
  return metrics[BEST_METRIC]


class TrainCheckpoints:
  """A training run's checkpoints: the latest (to resume) and the best by mean F1.

  Each step holds the network items plus the optimizer state, the dropout
  RNG counters and a JSON train state. Steps saved with `metrics` (after an
  evaluation) compete for best; the others only for latest. Orbax writes a
  step into a temporary folder and renames it when complete, so a killed
  save never touches the steps already there.
  """

  def __init__(self, directory, *, read_only: bool = False):
    policy = preservation_policy.AnyPreservationPolicy([
        preservation_policy.LatestN(1),
        preservation_policy.BestN(get_metric_fn=_best_metric, n=1,
                                  keep_checkpoints_without_metrics=False)])
    options = ocp.CheckpointManagerOptions(
        preservation_policy=policy, best_fn=_best_metric, best_mode="max",
        cleanup_tmp_directories=not read_only, create=not read_only,
        read_only=read_only)
    self.directory = os.path.abspath(directory)
    self.manager = ocp.CheckpointManager(
        self.directory, options=options,
        item_names=(MODEL_ITEM, CONFIG_ITEM, OPT_ITEM, RNG_ITEM, TRAIN_ITEM))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def best_step(self) -> int | None:
    return self.manager.best_step()

  def save(self, step: int, *, model_state: dict, model_config: dict, opt_state,
           rng_counts: dict, train_state: dict, metrics: dict | None = None) -> None:
    """Starts writing `step` (asynchronously: call `wait` before relying on it)."""
    self.manager.save(step, metrics=metrics, args=ocp.args.Composite(**{
        MODEL_ITEM: ocp.args.StandardSave(model_state),
        CONFIG_ITEM: ocp.args.JsonSave(model_config),
        OPT_ITEM: ocp.args.StandardSave(opt_state),
        RNG_ITEM: ocp.args.StandardSave(rng_counts),
        TRAIN_ITEM: ocp.args.JsonSave(train_state),
    }))

  def restore(self, step: int, *, model_state, opt_state, rng_counts) -> dict:
    """Items of `step`, arrays restored as the given (abstract) targets."""
    return self.manager.restore(step, args=ocp.args.Composite(**{
        MODEL_ITEM: ocp.args.StandardRestore(model_state),
        OPT_ITEM: ocp.args.StandardRestore(opt_state),
        RNG_ITEM: ocp.args.StandardRestore(rng_counts),
        TRAIN_ITEM: ocp.args.JsonRestore(),
    }))

  def train_state(self, step: int) -> dict:
    """The JSON train state of `step`."""
    return self.manager.restore(step, args=ocp.args.Composite(**{
        TRAIN_ITEM: ocp.args.JsonRestore()}))[TRAIN_ITEM]

  def wait(self) -> None:
    """Blocks until every started save is complete."""
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.close()
