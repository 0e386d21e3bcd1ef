"""What an exported DRML carries beside its network, as text key/values.

  props = metadata.encode(aus=(1, 2, 4), thresholds=..., mode="resize", ...)
  fields = metadata.decode(props, "model.onnx")  # back, checked

An ONNX file holds these as its metadata_props, a StableHLO archive as its
metadata.json (`drml_jax.export`); `onnx_predictor` reads them back. Every
value is a string, so a reader in any language needs a JSON parser and a
base64 decoder at most:

  format          "drml-export 1"
  aus             JSON list of the outputs' AU numbers, in order: [1, 2, 4]
  au_names        JSON list of their names, as predict's CSV columns: "AU01"
  thresholds      JSON list of per-AU probabilities: an AU occurs when its
                  probability (sigmoid of its logit) exceeds its threshold
  mode            "resize" | "crop": a 200x200 face to 170x170
  normalization   "rgb" (/ 255) | "bgr_mean" (BGR, minus mean_image)
  input_size      the model's input side S, a decimal string
  mean_image      for "bgr_mean": base64 of the training split's
                  (200, 200, 3) BGR mean image, 0..255, little-endian
                  float32, row-major; absent otherwise
  input           the input tensor: name, dtype, layout
  output          the output tensors: name, dtype, layout
  outputs         JSON list of the output tensors' names, in order:
                  ["logits"], or ["logits", "intensities"] for a model with
                  the intensity head (absent in files from before it: logits)
  description     where the model came from
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Mapping

import numpy as np

from data_pipeline import model_inputs
from data_pipeline.sources.base import IMAGE_SIZE
from drml_jax.predict.predictor import au_name

EXPORT_FORMAT = "drml-export 1"
INPUT_NAME, OUTPUT_NAME = "images", "logits"
INTENSITY_NAME = "intensities"  # the intensity head's output, (N, C) in [0, 5]
MEAN_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 3)


@dataclasses.dataclass(frozen=True)
class Fields:
  """A decoded export's AUs, thresholds and preprocessing."""

  aus: tuple[int, ...]
  thresholds: np.ndarray  # (C,) probabilities
  mode: str
  normalization: str
  input_size: int
  mean: np.ndarray | None  # (200, 200, 3) float32 BGR, for "bgr_mean"
  description: str
  outputs: tuple[str, ...] = (OUTPUT_NAME,)  # the output tensors, in order

  @property
  def has_intensity(self) -> bool:
    return INTENSITY_NAME in self.outputs


def output_names(intensity: bool) -> list[str]:
  """The output tensors of a model with or without the intensity head."""
  return [OUTPUT_NAME, INTENSITY_NAME] if intensity else [OUTPUT_NAME]


def encode(
  *,
  aus,
  thresholds,
  mode: str,
  normalization: str,
  input_size: int,
  mean: np.ndarray | None,
  description: str,
  intensity: bool = False,
) -> dict[str, str]:
  """The key/values of a model with these outputs and inputs (`intensity`:
  it has the intensity head, whose output follows the logits)."""
  size = int(input_size)
  output = f"{OUTPUT_NAME}: float32 (N, {len(aus)}) logits, in aus' order"
  if intensity:
    output += (
      f"; {INTENSITY_NAME}: float32 (N, {len(aus)}) intensities in [0, 5], "
      "in aus' order"
    )
  props = {
    "format": EXPORT_FORMAT,
    "aus": json.dumps([int(au) for au in aus]),
    "au_names": json.dumps([au_name(au) for au in aus]),
    "thresholds": json.dumps([float(t) for t in thresholds]),
    "mode": mode,
    "normalization": normalization,
    "input_size": str(size),
    "input": f"{INPUT_NAME}: float32 (N, {size}, {size}, 3) NHWC, RGB after "
    "the preprocessing that mode and normalization name",
    "output": output,
    "outputs": json.dumps(output_names(intensity)),
    "description": description,
  }
  if normalization == "bgr_mean":
    mean = np.ascontiguousarray(mean, "<f4").reshape(MEAN_SHAPE)
    props["mean_image"] = base64.b64encode(mean.tobytes()).decode("ascii")
  return props


def decode(props: Mapping[str, str], where: str) -> Fields:
  """The fields `encode` wrote; ValueError in one line, naming `where`,
  for anything else."""
  if props.get("format") != EXPORT_FORMAT:
    raise ValueError(
      f"{where} is not a DRML export (no metadata format {EXPORT_FORMAT!r}): "
      "export the model with python -m drml_jax.export"
    )
  try:
    aus = tuple(int(au) for au in json.loads(props["aus"]))
    thresholds = np.asarray(json.loads(props["thresholds"]), np.float64)
    mode, normalization = props["mode"], props["normalization"]
    model_inputs.check(mode, normalization)
    mean = None
    if normalization == "bgr_mean":
      mean = np.frombuffer(
        base64.b64decode(props["mean_image"]), "<f4"
      ).reshape(MEAN_SHAPE)
    outputs = tuple(json.loads(props.get("outputs", "null")) or [OUTPUT_NAME])
    if outputs not in (tuple(output_names(False)), tuple(output_names(True))):
      raise ValueError(f"outputs {list(outputs)}")
    fields = Fields(
      aus,
      thresholds,
      mode,
      normalization,
      int(props["input_size"]),
      mean,
      props.get("description", ""),
      outputs,
    )
  except (KeyError, ValueError, TypeError) as error:
    raise ValueError(
      f"{where}: damaged DRML metadata ({type(error).__name__}: {error}); "
      "export the model again"
    ) from None
  if (
    thresholds.shape != (len(aus),)
    or not ((thresholds > 0) & (thresholds < 1)).all()
  ):
    raise ValueError(
      f"{where}: metadata thresholds are not {len(aus)} probabilities in "
      "(0, 1); export the model again"
    )
  return fields
