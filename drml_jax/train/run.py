"""One training run's state: its work directory, data, model, steps and checkpoints.

`Run(config)` checks that the work directory may be resumed with `config`
(`configs.resumable`, against the config stored in the checkpoint), builds
the dataset's batches, the model, the optimizer and the jitted steps, and
restores the newest checkpoint when there is one. The loop
(`drml_jax.train.loop`) drives it.
"""

from __future__ import annotations

import functools
import json
import logging
import os

import jax
import jax.numpy as jnp

from data_pipeline import errors, registry, splits
from drml_jax import configs
from drml_jax.configs import default
from drml_jax.model import factory, train_state
from drml_jax.model.factory import build_model
from drml_jax.model.train_state import TrainState
from drml_jax.runtime import host_memory, parallel
from drml_jax.store import checkpoint, saved_run, workdir
from drml_jax.train import batches
from drml_jax.train.evaluation import SplitResult, evaluate_split
from drml_jax.train.losses import drml_loss, positive_weights
from drml_jax.train.optim import make_optimizer
from drml_jax.train.steps import make_eval_step, make_train_step

logger = logging.getLogger(__name__)


class TrainingError(RuntimeError):
  """A run that cannot go on, with a one-line message saying what to do."""


def kept_message(run_dir: str, then: str) -> str:
  """What a stopped run left in `run_dir`, then what to do (`then`)."""
  step = saved_run.newest_step(run_dir)
  if step is None:
    return f"no checkpoint of {run_dir} was completed"
  return (
    f"step {step}, the newest complete checkpoint, stays in "
    f"{os.path.join(run_dir, workdir.CHECKPOINT_DIR)}: {then}"
  )


def is_primary() -> bool:
  """Whether this is the process that writes the work directory's files."""
  return jax.process_index() == 0


def _lookup(tree: dict, path: str):
  for part in path.split("."):
    if not isinstance(tree, dict) or part not in tree:
      return None
    tree = tree[part]
  return tree


def _check_resumable(config, saved: dict) -> None:
  """Raises unless `config` asks for the computation of the saved config; a
  field the saved config lacks (added since) has its default value."""
  resolved = json.loads(config.to_json())
  defaults = json.loads(default.get_config().to_json())
  for path in configs.paths(config):
    old, new = _lookup(saved, path), _lookup(resolved, path)
    if old is None:
      old = _lookup(defaults, path)
    if not configs.resumable(path) and old != new:
      flag = configs.flag(path)
      raise TrainingError(
        f"{config.workdir} holds a run with {flag} {old!r}, not {new!r}: rerun with "
        "the same settings to resume it, or pass a new --workdir"
      )


class Run:
  """One training run: state, steps, data and checkpoints of a work directory."""

  def __init__(self, config):
    self.config = config
    self.mesh = parallel.make_mesh()
    parallel.check_batch_size(config.batch_size, "--batch-size")
    parallel.check_batch_size(config.eval_batch_size, "--eval-batch-size")
    os.makedirs(config.workdir, exist_ok=True)
    self.checkpoints = checkpoint.TrainCheckpoints(
      os.path.join(config.workdir, workdir.CHECKPOINT_DIR)
    )
    latest = self.checkpoints.latest_step()
    saved = (
      self._read(latest, self.checkpoints.run) if latest is not None else None
    )
    if saved is not None:
      _check_resumable(config, saved["config"])
    if is_primary():
      workdir.write_atomic(
        os.path.join(config.workdir, workdir.CONFIG_FILE),
        config.to_json(indent=2) + "\n",
      )

    d = config.data
    self.builder = registry.build(
      d.dataset,
      fold=d.fold,
      dataset_config=d.dataset_config,
      data_dir=d.data_dir,
      manual_dir=d.manual_dir,
    )
    self.aus = registry.aus(self.builder)
    self.num_test = self.builder.info.splits["test"].num_examples
    # The split trained on, and the one "best" is chosen on every epoch.
    self.train_split, self.val_split = (
      splits.validation_split(self.builder, d.val_subjects)
      if config.selection == "val"
      else ("train", None)
    )
    self.selection_split = self.val_split or "test"
    self.batches = batches.Batches(
      self.builder,
      data_shards=d.data_shards,
      process_index=jax.process_index(),
      process_count=jax.process_count(),
      mode=d.mode,
      normalization=d.normalization,
      input_size=config.model.input_size,
    )
    self.steps_per_epoch = self.batches.steps_per_epoch(
      self.train_split, config.batch_size
    )
    self.total_steps = self.steps_per_epoch * config.num_epochs

    self.model_config = factory.model_config(config, len(self.aus))
    self.inputs = checkpoint.Inputs(
      aus=self.aus,
      mode=d.mode,
      normalization=d.normalization,
      input_size=config.model.input_size,
      mean=self.batches.mean,
    )
    model = build_model(self.model_config, config.seed, **config.kernels)
    tx = make_optimizer(**config.optim)
    self.graphdefs, state = train_state.create(model, tx)
    self.elapsed = 0.0
    if latest is None:
      self.state = parallel.replicate(state, self.mesh)
    else:
      target = parallel.replicated_like(state, self.mesh)
      self.state = self._read(
        latest, lambda step: self.checkpoints.restore(step, target)
      )
      self.elapsed = saved["elapsed_s"]
    self.step = int(jax.device_get(self.state.step))
    self.pos_weight = None
    if config.loss.pos_weight == "train_rates":
      self.pos_weight = positive_weights(
        *splits.label_counts(self.builder, self.train_split)
      )
    self.train_step = make_train_step(
      self.graphdefs.train,
      tx,
      seed=config.seed,
      loss_fn=functools.partial(
        drml_loss,
        pos_weight=None
        if self.pos_weight is None
        else jnp.asarray(self.pos_weight),
        intensity_weight=config.loss.intensity_weight,
      ),
      prepare=self.batches.model_inputs,
    )
    self.eval_step = make_eval_step(
      self.graphdefs.eval, prepare=self.batches.model_inputs
    )

  def compile_train_step(self, batch: dict) -> None:
    """Compiles the train step for batches like this one, to run in the
    memory the process keeps (`host_memory.KeptMemoryStep`)."""
    compiled = self.train_step.lower(self.state, batch).compile()
    self.train_step = host_memory.KeptMemoryStep(
      compiled,
      one_cpu_device=self.mesh.devices.size == 1
      and jax.default_backend() == "cpu",
    )

  def _read(self, step: int, read):
    """`read(step)`, a damaged step reported in one line."""
    try:
      return read(step)
    except Exception as error:  # pylint: disable=broad-except
      reason = errors.first_line(error, limit=200)
      raise TrainingError(
        f"step {step} in {self.checkpoints.directory} cannot be read ({reason}): remove "
        "that step's folder to resume from an earlier one, or pass a new --workdir"
      ) from None

  def model(self):
    """The network with the current state (eval mode)."""
    return train_state.merge(self.graphdefs.eval, self.state)

  def save(
    self, metrics: dict | None = None, thresholds: list | None = None
  ) -> None:
    """Saves the current step (with `metrics` after an evaluation, and the
    per-AU `thresholds` tuned on the validation split), written to disk
    when this returns.

    Written in the background beside the next train steps, the writer's
    buffers landed in the heap that the steps keep (`host_memory`) and grew
    every later training phase (benchmarks/README.md#log)."""
    if not _finite(self.state):
      raise TrainingError(
        self._not_finite(
          f"the parameters are not finite at step {self.step}",
          last_usable=self.step - 1,
        )
      )
    with host_memory.mapped_apart():
      self.checkpoints.save(
        self.state,
        model_config=self.model_config,
        inputs=self.inputs,
        metrics=metrics,
        run={
          "step": self.step,
          "epoch": self.step / self.steps_per_epoch,
          "steps_per_epoch": self.steps_per_epoch,
          "elapsed_s": self.elapsed,
          "metrics": metrics,
          "thresholds": thresholds,
          "config": json.loads(self.config.to_json()),
        },
      )
      self.checkpoints.wait()

  def evaluate(self, split, state=None) -> SplitResult:
    """The evaluation of `state` (default: the current one) on `split`."""
    with host_memory.other_phase():
      return evaluate_split(
        self.eval_step,
        train_state.model_state(self.state if state is None else state),
        self.batches.evaluation(split, self.config.eval_batch_size),
        self.mesh,
      )

  def best_state(self) -> tuple[int, TrainState]:
    """(step, state) of the best checkpoint by the selection split's mean F1."""
    step = self.checkpoints.best_step()
    if step == self.step:  # the final model, most often: nothing to read
      return step, self.state
    target = parallel.replicated_like(self.state, self.mesh)
    return step, self._read(
      step, lambda step: self.checkpoints.restore(step, target)
    )

  def epoch_of(self, step: int) -> int:
    return (step - 1) // self.steps_per_epoch + 1

  def _not_finite(self, what: str, last_usable: int) -> str:
    """The message of a non-finite stop: the newest saved step whose
    parameters are at most `last_usable`, the others gave non-finite losses."""
    usable = [s for s in self.checkpoints.all_steps() if s <= last_usable]
    kept = (
      f"step {usable[-1]} in {self.checkpoints.directory} is the last usable "
      "checkpoint"
      if usable
      else "no usable checkpoint was written"
    )
    return (
      f"{what} (epoch {self.epoch_of(self.step)}): stopped without saving; {kept}; "
      "lower --learning-rate and use a new --workdir"
    )


@jax.jit
def _finite(state: TrainState) -> jax.Array:
  return jnp.all(
    jnp.stack(
      [
        jnp.isfinite(x).all()
        for x in jax.tree.leaves((state.params, state.batch_stats))
      ]
    )
  )
