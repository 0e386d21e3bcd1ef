"""Orbax checkpoints of DRML: the state pytree and the config that builds it.

Every checkpoint step holds an item `state` (a `ModelState` or a whole
`TrainState`), a JSON item `model_config` (the keyword arguments of `DRML`)
and its `Inputs`: the AUs of its outputs and the preprocessing of its
inputs (a JSON item `inputs`, and the mean image as the item `mean_image`
when the inputs are normalised by it), so that a checkpoint is used without
the dataset it was trained on. Training adds a JSON item `run`: the step,
the time spent, the evaluation metrics, the per-AU thresholds tuned on the
validation split and the resolved config the run was trained with.
Readers of the network alone restore the model part of `state` (orbax's
partial restore), whichever kind of step it is.
"""

from __future__ import annotations

import dataclasses
import logging
import os

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx
from orbax.checkpoint.checkpoint_managers import preservation_policy

from data_pipeline import errors
from drml_jax.model import train_state
from drml_jax.model.factory import build_model
from drml_jax.model.network import DRML
from drml_jax.model.train_state import ModelState, TrainState

STATE_ITEM = "state"
MODEL_CONFIG_ITEM = "model_config"
RUN_ITEM = "run"
INPUTS_ITEM = "inputs"
MEAN_ITEM = "mean_image"
ITEMS = (STATE_ITEM, MODEL_CONFIG_ITEM, RUN_ITEM, INPUTS_ITEM, MEAN_ITEM)
BEST_METRIC = "mean_f1"


class CheckpointError(ValueError):
  """A checkpoint that cannot be read, with a one-line message."""


@dataclasses.dataclass(frozen=True)
class Inputs:
  """What a checkpoint's network takes and gives: the AUs of its outputs, in
  order, and how a 200x200 RGB face becomes its input (evaluation's `mode`
  and `normalization`, then a resize to `input_size`:
  `data_pipeline.model_inputs.ModelInputs`).
  `mean` is the (200, 200, 3) float32 BGR mean image of the training split,
  for normalization "bgr_mean"; None otherwise."""

  aus: tuple[int, ...]
  mode: str = "resize"
  normalization: str = "rgb"
  input_size: int = 170
  mean: np.ndarray | None = None

  def to_json(self) -> dict:
    """The JSON item: every field but the mean image."""
    return {
      "aus": [int(a) for a in self.aus],
      "mode": self.mode,
      "normalization": self.normalization,
      "input_size": int(self.input_size),
    }


def _save_args(state, inputs: Inputs, **json_items) -> ocp.args.Composite:
  mean = (
    {}
    if inputs.mean is None
    else {MEAN_ITEM: ocp.args.PyTreeSave({"bgr": np.asarray(inputs.mean)})}
  )
  return ocp.args.Composite(
    **{STATE_ITEM: ocp.args.PyTreeSave(state)},
    **{INPUTS_ITEM: ocp.args.JsonSave(inputs.to_json())},
    **mean,
    **{k: ocp.args.JsonSave(v) for k, v in json_items.items()},
  )


def _restore_args(target, *, partial: bool = False) -> ocp.args.PyTreeRestore:
  target = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
  return ocp.args.PyTreeRestore(
    target,
    restore_args=ocp.checkpoint_utils.construct_restore_args(target),
    partial_restore=partial,
  )


def _manager(directory, **options) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
    os.path.abspath(directory),
    item_names=ITEMS,
    **options,
  )


def save_model(
  directory, model: DRML, model_config: dict, inputs: Inputs, *, step: int = 0
) -> None:
  """Writes the model, its config and its inputs as `step` of a checkpoint
  directory."""
  with _manager(directory) as manager:
    manager.save(
      step,
      args=_save_args(
        train_state.split(model)[1],
        inputs,
        **{MODEL_CONFIG_ITEM: model_config},
      ),
    )
    manager.wait_until_finished()


@dataclasses.dataclass
class Restored:
  """A checkpoint step as a usable network: the model (eval mode), its
  config, the step, its `Inputs` (None for a step written before steps
  stored them) and training's `run` item (None for a step written by
  anything else: drml_jax.convert, save_model)."""

  model: DRML
  model_config: dict
  step: int
  inputs: Inputs | None
  run: dict | None


def restore(
  directory, *, step: int | None = None, best: bool = False, **kernels
) -> Restored:
  """The network of a checkpoint directory, read through one manager.

  The step is `step`, else the best evaluated one when `best` (a training
  run's), else the latest.
  """
  if not os.path.isdir(directory):
    raise CheckpointError(f"no checkpoint directory at {directory}")
  with _manager(directory, options=_read_only_options()) as manager:
    if step is None and best:
      step = manager.best_step()
    step = manager.latest_step() if step is None else step
    if step is None:
      raise CheckpointError(
        f"{directory} is not a readable orbax DRML checkpoint (no step in it)"
      )
    stored = set(os.listdir(os.path.join(directory, str(step))))
    items = {
      item: ocp.args.JsonRestore()
      for item in (MODEL_CONFIG_ITEM, INPUTS_ITEM, RUN_ITEM)
      if item in stored or item == MODEL_CONFIG_ITEM
    }
    if MEAN_ITEM in stored:
      items[MEAN_ITEM] = ocp.args.PyTreeRestore()
    try:
      json_items = manager.restore(step, args=ocp.args.Composite(**items))
      model_config = json_items[MODEL_CONFIG_ITEM]
      # Shapes only: initialising the weights would compile and run the
      # initialisers just to overwrite them.
      model = nnx.eval_shape(lambda: build_model(model_config, **kernels))
      graphdefs, target = train_state.split(model)
      restored = manager.restore(
        step,
        args=ocp.args.Composite(
          **{
            STATE_ITEM: _restore_args(
              {"params": target.params, "batch_stats": target.batch_stats},
              partial=True,
            )
          }
        ),
      )[STATE_ITEM]
    except Exception as error:  # pylint: disable=broad-except
      raise CheckpointError(
        f"{directory} is not a readable orbax DRML checkpoint "
        f"(step {step}: {errors.first_line(error)})"
      ) from None
  model = train_state.merge(
    graphdefs.eval, ModelState(restored["params"], restored["batch_stats"])
  )
  return Restored(
    model,
    model_config,
    step,
    _inputs(json_items.get(INPUTS_ITEM), json_items.get(MEAN_ITEM)),
    json_items.get(RUN_ITEM),
  )


def _inputs(fields: dict | None, mean: dict | None) -> Inputs | None:
  if fields is None:
    return None
  return Inputs(
    aus=tuple(fields["aus"]),
    mode=fields["mode"],
    normalization=fields["normalization"],
    input_size=fields["input_size"],
    mean=None if mean is None else np.asarray(mean["bgr"], np.float32),
  )


def _read_only_options() -> ocp.CheckpointManagerOptions:
  # Not orbax's read_only mode, which warns on every use; nothing is saved.
  return ocp.CheckpointManagerOptions(
    create=False, best_fn=_best_metric, best_mode="max"
  )


# Orbax's log lines that this module turns into its own errors or that say
# nothing to a user: steps saved between evaluations carry no metrics by
# design, and a failed background save (logged with its traceback by each of
# orbax's threads) is raised as one CheckpointError by `TrainCheckpoints`.
# "Waiting for previous save to complete took N seconds" is no stall: orbax
# adds up every wait_until_finished since its last save, including the one
# `Run.save` makes on purpose right after saving (the save is written before
# training goes on, drml_jax/train/run.py), and reports that write's own
# time again at the next save.
_QUIET_ORBAX_LOGS = (
  "did not provide metrics",
  "raised an exception",
  "Handler Commit operations",
  "Save Finalize thread",
  "Waiting for previous save to complete",
)


def _quiet_orbax(record: logging.LogRecord) -> bool:
  return not any(text in record.getMessage() for text in _QUIET_ORBAX_LOGS)


logging.getLogger("absl").addFilter(_quiet_orbax)


def _save_failure(directory: str, error: Exception) -> CheckpointError:
  reason = (
    "no space left on the device"
    if "No space left" in str(error)
    else errors.first_line(error, limit=200)
  )
  return CheckpointError(
    f"writing a checkpoint into {directory} failed: {reason}"
  )


def _best_metric(metrics: dict) -> float:
  return metrics[BEST_METRIC]


class TrainCheckpoints:
  """A training run's checkpoints: the latest (to resume) and the best by mean
  F1 on the run's selection split.

  Steps saved with `metrics` (after an evaluation) compete for best; the
  others only for latest. Orbax writes a step into a temporary folder and
  renames it when complete, so a killed save never touches the steps
  already there.
  """

  def __init__(self, directory):
    policy = preservation_policy.AnyPreservationPolicy(
      [
        preservation_policy.LatestN(1),
        preservation_policy.BestN(
          get_metric_fn=_best_metric,
          n=1,
          keep_checkpoints_without_metrics=False,
        ),
      ]
    )
    options = ocp.CheckpointManagerOptions(
      preservation_policy=policy,
      best_fn=_best_metric,
      best_mode="max",
      cleanup_tmp_directories=True,
    )
    self.directory = os.path.abspath(directory)
    self.manager = _manager(self.directory, options=options)

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def best_step(self) -> int | None:
    """The evaluated step with the highest BEST_METRIC."""
    return self.manager.best_step()

  def all_steps(self) -> list[int]:
    """The complete steps on disk, oldest first."""
    return sorted(self.manager.all_steps())

  def save(
    self,
    state: TrainState,
    *,
    model_config: dict,
    inputs: Inputs,
    run: dict,
    metrics: dict | None = None,
  ) -> None:
    """Starts writing the state's step (asynchronously: `wait` before
    relying on it). Raises CheckpointError when this or an earlier save
    failed."""
    try:
      self.manager.save(
        int(jax.device_get(state.step)),
        metrics=metrics,
        args=_save_args(
          state, inputs, **{MODEL_CONFIG_ITEM: model_config, RUN_ITEM: run}
        ),
      )
    except Exception as error:  # pylint: disable=broad-except
      raise _save_failure(self.directory, error) from None

  def restore(self, step: int, target: TrainState) -> TrainState:
    """The state of `step`, restored as `target`'s (abstract) arrays."""
    return self.manager.restore(
      step, args=ocp.args.Composite(**{STATE_ITEM: _restore_args(target)})
    )[STATE_ITEM]

  def run(self, step: int) -> dict:
    """The JSON `run` item of `step`."""
    return self.manager.restore(
      step, args=ocp.args.Composite(**{RUN_ITEM: ocp.args.JsonRestore()})
    )[RUN_ITEM]

  def wait(self) -> None:
    """Blocks until every started save is complete; raises CheckpointError
    when one failed."""
    try:
      self.manager.wait_until_finished()
    except Exception as error:  # pylint: disable=broad-except
      raise _save_failure(self.directory, error) from None

  def close(self) -> None:
    self.manager.close()
