"""A trained DRML as a StableHLO archive: jax.export's program, its weights
and its metadata in one zip.

  stablehlo.write(trained, props, "model.zip")
  exported, weights, props = stablehlo.read("model.zip")
  logits = exported.call(weights, images)  # (N, S, S, 3) float32 -> (N, C)
  logits, intensities = exported.call(weights, images)  # with the head

The archive (stored, not compressed: float weights barely compress) holds

  program.bin     `jax.export.Exported.serialize()`: logits(weights, images),
                  for any batch, lowered for CPU, CUDA, ROCm and TPU; for a
                  model with the intensity head, the pair (logits,
                  intensities), as the metadata's `outputs` names them
  metadata.json   the key/values of `drml_jax.predict.metadata`
  weights/NNNN.npy  the program's first argument, a list of arrays, in order

The weights travel beside the program rather than inside it: baked in as
constants, they made the export slower and the program as large as the
weights, and XLA, compiling the constants in, moved the logits; as
arguments the reloaded program gives the JAX model's logits exactly
(benchmarks/README.md#predict-speed).

The network is exported with XLA's own convolutions (`KERNELS`), which
every backend runs; the CPU's faster forms (FFT, banded) would tie the
program to the CPU. Their logits differ from those forms' by float32
rounding (benchmarks/README.md#predict-speed).
"""

from __future__ import annotations

import json
import zipfile

import jax
import jax.numpy as jnp
import numpy as np

from drml_jax.predict import metadata
from drml_jax.predict.programs import argument_specs, network_of
from drml_jax.store import workdir
from drml_jax.store.saved_run import TrainedModel

PROGRAM = "program.bin"
METADATA = "metadata.json"
WEIGHTS = "weights/{:04d}.npy"
PLATFORMS = ("cpu", "cuda", "rocm", "tpu")
# The conv forms to load the model with: XLA's convolution, on any backend.
KERNELS = {"conv": "lax", "region_conv": "lax", "region_layout": "image"}


def export_network(trained: TrainedModel) -> tuple[jax.export.Exported, list]:
  """logits(weights, images), or (logits, intensities) for a model with the
  intensity head, exported for any batch, and its weights."""
  head = trained.model.has_intensity
  network, weights = network_of(trained.model, outputs=head)
  size = trained.model_config["input_size"]
  (batch,) = jax.export.symbolic_shape("batch")
  exported = jax.export.export(jax.jit(network), platforms=PLATFORMS)(
    *argument_specs(weights, batch, (size, size, 3), jnp.float32)
  )
  return exported, weights


def write(trained: TrainedModel, props: dict[str, str], path: str) -> None:
  """Writes the archive of the model and `props`, atomically."""
  exported, weights = export_network(trained)
  with workdir.atomic_path(path) as partial:
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as archive:
      archive.writestr(PROGRAM, exported.serialize())
      archive.writestr(METADATA, json.dumps(props, indent=1))
      for index, weight in enumerate(weights):
        with archive.open(WEIGHTS.format(index), "w", force_zip64=True) as f:
          np.save(f, np.asarray(weight))


def read(path: str) -> tuple[jax.export.Exported, list, dict[str, str]]:
  """(program, weights, metadata key/values) of an archive `write` wrote;
  ValueError in one line for any other file."""
  try:
    with zipfile.ZipFile(path) as archive:
      props = json.loads(archive.read(METADATA))
      exported = jax.export.deserialize(bytearray(archive.read(PROGRAM)))
      weights = []
      for index in range(len(exported.in_avals) - 1):
        with archive.open(WEIGHTS.format(index)) as f:
          weights.append(np.load(f))
  except (zipfile.BadZipFile, KeyError, ValueError) as error:
    raise ValueError(
      f"{path} is not a DRML StableHLO archive ({error}): export one with "
      "python -m drml_jax.export --format stablehlo"
    ) from None
  metadata.decode(props, path)
  return exported, weights, props
