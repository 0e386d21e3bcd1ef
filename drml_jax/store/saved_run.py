"""A trained DRML on disk, with everything needed to use it.

  trained = saved_run.load(workdir="workdirs/quick")          # its best step
  trained = saved_run.load(checkpoint="model.pth", aus=(1, 2, 4, ...))
  trained.model, trained.inputs, trained.thresholds, trained.config

A model comes from a training work directory, an orbax checkpoint directory
(a run's `checkpoints/` or one written by drml_jax.convert) or a PyTorch DRML
checkpoint. Orbax checkpoints carry their `Inputs` (AUs, preprocessing, the
mean image), so a work directory copied to a machine without its dataset
still predicts, evaluates and converts. This module is the one reader of a
work directory's config.json.
"""

from __future__ import annotations

import dataclasses
import json
import os

import ml_collections
import numpy as np

from data_pipeline import errors
from data_pipeline.sources.base import DISFA_AUS, DISFA_PLUS_AUS
from drml_jax.model.network import DRML
from drml_jax.store import checkpoint
from drml_jax.store.checkpoint import Inputs
from drml_jax.store.workdir import (
  CHECKPOINT_DIR,
  CONFIG_FILE,
  RESULTS_FILE,
  read_records,
)

# The AUs of a bare checkpoint, by its number of outputs, unless named.
DEFAULT_AUS = {len(DISFA_PLUS_AUS): DISFA_PLUS_AUS, len(DISFA_AUS): DISFA_AUS}
WHICH = ("best", "latest")


@dataclasses.dataclass
class TrainedModel:
  """A DRML (eval mode) and what using it takes."""

  model: DRML
  model_config: dict  # DRML's keyword arguments
  inputs: Inputs
  thresholds: np.ndarray  # (C,) per-AU probabilities; 0.5 unless tuned
  description: str  # where it came from, for messages
  config: ml_collections.ConfigDict | None = None  # the training run's


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """The resolved config a training run saved in its work directory."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(
      f"{workdir} is not a training work directory (no {CONFIG_FILE}); "
      "pass the folder given to drml_jax.train --workdir"
    )
  try:
    with open(path) as f:
      return ml_collections.ConfigDict(json.load(f))
  except ValueError as error:
    raise ValueError(
      f"{path} is not readable JSON ({errors.first_line(error)}): restore "
      "it from a copy of the work directory"
    ) from None


def is_finished(run_dir: str) -> bool:
  """Whether a training run ended and wrote its results."""
  return os.path.exists(os.path.join(run_dir, RESULTS_FILE))


def reported_result(run_dir: str) -> tuple[str, dict] | None:
  """(what it is, record) of the model a finished run reports: the test
  record of the validation-best model, else (--selection test) the final
  evaluation; None for a run that has not finished."""
  records = read_records(run_dir)
  for record in records:
    if record["kind"] == "test" and record["checkpoint"] == "best":
      return (
        f"validation-best model (epoch {record['epoch']}, step "
        f"{record['step']})",
        record,
      )
  evals = [
    r for r in records if r["kind"] == "eval" and r.get("split") == "test"
  ]
  if not evals:
    return None
  final = evals[-1]
  return f"final model (epoch {final['epoch']}, step {final['step']})", final


def newest_step(run_dir: str) -> int | None:
  """The newest complete checkpoint step of a work directory, if any."""
  folder = os.path.join(run_dir, CHECKPOINT_DIR)
  # Orbax names a step's folder by its number once the step is complete.
  names = os.listdir(folder) if os.path.isdir(folder) else []
  return max((int(name) for name in names if name.isdigit()), default=None)


def checkpoint_path(workdir: str | None, checkpoint: str | None) -> str:
  """The checkpoint of a work directory, or `checkpoint`; FileNotFoundError
  in one line when there is none."""
  path = os.path.join(workdir, CHECKPOINT_DIR) if workdir else checkpoint
  if not os.path.exists(path):
    raise FileNotFoundError(
      f"no checkpoint at {path}: pass a drml_jax.train work directory, "
      "an orbax checkpoint directory or a PyTorch DRML .pth file"
    )
  return path


def load(
  *,
  workdir: str | None = None,
  checkpoint: str | None = None,
  which: str = "best",
  step: int | None = None,
  aus: tuple[int, ...] | None = None,
  **kernels,
) -> TrainedModel:
  """The model of a work directory (its `which` step, or `step`) or of a
  checkpoint (orbax directory: its best evaluated step, else its latest;
  PyTorch file). `aus` names the outputs where the checkpoint does not (a
  PyTorch file, read with the protocol's preprocessing: resize, RGB / 255),
  or renames them; `inputs.aus` stays empty for a checkpoint of another
  number of AUs that names none. Raises ValueError or FileNotFoundError,
  in one line."""
  config = read_config(workdir) if workdir else None
  path = checkpoint_path(workdir, checkpoint)
  try:
    if os.path.isfile(path):
      trained = _load_torch(path, **kernels)
    else:
      trained = _load_orbax(path, config, step, which == "best", **kernels)
  except ValueError as error:
    message = errors.first_line(error)
    raise ValueError(
      message
      if path in message
      else f"{path}: {message}; pass a DRML checkpoint"
    ) from None
  trained.config = config
  num_aus = trained.model_config["num_aus"]
  if aus is not None:
    if len(aus) != num_aus:
      raise ValueError(
        f"{path} predicts {num_aus} AUs but --aus names {len(aus)}: "
        f"name {num_aus}"
      )
    trained.inputs = dataclasses.replace(trained.inputs, aus=tuple(aus))
  return trained


def named_aus(trained: TrainedModel) -> tuple[int, ...]:
  """The AUs of the model's outputs; ValueError in one line when its
  checkpoint names none and `load` was given no `aus`."""
  if not trained.inputs.aus:
    raise ValueError(
      f"{trained.description} predicts {trained.model_config['num_aus']} "
      "AUs: name them with --aus 1,2,..."
    )
  return trained.inputs.aus


def _load_torch(path: str, **kernels) -> TrainedModel:
  # torch is imported only for a PyTorch file: a second of start-up.
  from drml_jax.store import interchange  # pylint: disable=import-outside-toplevel

  model, model_config = interchange.read_torch_checkpoint(path, **kernels)
  num_aus = model_config["num_aus"]
  return TrainedModel(
    model,
    model_config,
    Inputs(
      aus=DEFAULT_AUS.get(num_aus, ()), input_size=model_config["input_size"]
    ),
    np.full(num_aus, 0.5),
    f"PyTorch checkpoint {path}",
  )


def _load_orbax(path, config, step, best, **kernels) -> TrainedModel:
  restored = checkpoint.restore(path, step=step, best=best, **kernels)
  num_aus = restored.model_config["num_aus"]
  thresholds = _checked_thresholds(
    (restored.run or {}).get("thresholds"), num_aus, path
  )
  return TrainedModel(
    restored.model,
    restored.model_config,
    restored.inputs or _inputs_of_older_run(config, restored.model_config),
    np.full(num_aus, 0.5) if thresholds is None else thresholds,
    f"orbax checkpoint {path} (step {restored.step})",
  )


def _inputs_of_older_run(config, model_config: dict) -> Inputs:
  """The inputs of a checkpoint written before checkpoints stored them: its
  run's config and dataset (which must then be on this machine), else the
  protocol's preprocessing and the AUs by their number."""
  num_aus, input_size = model_config["num_aus"], model_config["input_size"]
  if config is None:
    return Inputs(aus=DEFAULT_AUS.get(num_aus, ()), input_size=input_size)
  # The dataset's TFDS builder (and TensorFlow) only for such an old run.
  from data_pipeline import registry, splits  # pylint: disable=import-outside-toplevel

  d = config.data
  builder = registry.build(
    d.dataset,
    fold=d.fold,
    dataset_config=d.dataset_config,
    data_dir=d.data_dir,
    manual_dir=d.manual_dir,
  )
  return Inputs(
    aus=registry.aus(builder),
    mode=d.mode,
    normalization=d.normalization,
    input_size=input_size,
    mean=splits.mean_image(builder) if d.normalization == "bgr_mean" else None,
  )


def _checked_thresholds(
  thresholds, num_aus: int, where: str
) -> np.ndarray | None:
  if thresholds is None:
    return None
  values = np.asarray(thresholds, np.float64)
  if values.shape != (num_aus,) or not ((values > 0) & (values < 1)).all():
    raise ValueError(
      f"{where}: thresholds {list(thresholds)} are not {num_aus} "
      "probabilities in (0, 1); fix or remove them"
    )
  return values
