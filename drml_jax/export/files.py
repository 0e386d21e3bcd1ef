"""A trained DRML written to one file of an export format, with its metadata.

  inputs = files.write("onnx", "drml.onnx", workdir="workdirs/quick")

The model is read as `python -m drml_jax.predict` reads it
(`drml_jax.store.saved_run.load`); the file carries the AUs, thresholds and
preprocessing as `drml_jax.predict.metadata` encodes them, and the
intensities beside the logits when the model has the intensity head.
"""

from __future__ import annotations

import importlib

from drml_jax.predict import metadata
from drml_jax.predict.predictor import require_intensity

# A format: the module that writes it (`write(trained, props, path)`, and
# the conv forms to load the model with, `KERNELS`).
FORMATS = {
  "onnx": "drml_jax.export.to_onnx",
  "stablehlo": "drml_jax.export.stablehlo",
}


def write(
  format: str,
  path: str,
  *,
  workdir: str | None = None,
  checkpoint: str | None = None,
  aus: tuple[int, ...] | None = None,
  intensity: bool = False,
):
  """Writes the model of `workdir` or `checkpoint` to `path` in `format`;
  returns the inputs it was trained on (`checkpoint.Inputs`). With
  `intensity` (--intensity), ValueError in one line, before anything is
  written, for a model without the intensity head."""
  # Imported here: Flax, orbax and, for ONNX, torch take seconds.
  writer = importlib.import_module(FORMATS[format])
  from drml_jax.store import saved_run  # pylint: disable=import-outside-toplevel

  trained = saved_run.load(
    workdir=workdir, checkpoint=checkpoint, aus=aus, **writer.KERNELS
  )
  has_intensity = trained.model.has_intensity
  if intensity:
    require_intensity(has_intensity, trained.description)
  inputs = trained.inputs
  props = metadata.encode(
    aus=saved_run.named_aus(trained),
    thresholds=trained.thresholds,
    mode=inputs.mode,
    normalization=inputs.normalization,
    input_size=inputs.input_size,
    mean=inputs.mean,
    description=trained.description,
    intensity=has_intensity,
  )
  writer.write(trained, props, path)
  return inputs
