"""An exported ONNX DRML as a predictor: onnxruntime runs the network.

  predictor = onnx_predictor.load("model.onnx", batch_size=16)
  predictions = predictor(faces)  # `Predictions`, as a `Predictor`'s

The file's metadata (`metadata`: written by `python -m drml_jax.export
--format onnx`) gives its AUs, thresholds and preprocessing. Faces are
preprocessed as evaluation does (`data_pipeline.model_inputs`, in JAX), onnxruntime
computes the logits (and, where the file has the intensity head's output,
the intensities), and the batching and thresholds are those every
predictor shares (`BatchedPredictor`). A file from before the head existed
has the logits alone, and predicts occurrence. onnxruntime is imported when a file
is loaded, so only `python -m drml_jax.predict --onnx` pays for it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import jax
import numpy as np

from data_pipeline import errors
from data_pipeline.model_inputs import ModelInputs
from drml_jax.predict import metadata
from drml_jax.predict.predictor import DEFAULT_BATCH_SIZE, BatchedPredictor

# onnxruntime's providers, in the order preferred, where installed.
PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")
QUIET = 3  # onnxruntime's log severity: errors only, which raise anyway


@dataclasses.dataclass
class OnnxPredictor(BatchedPredictor):
  """An onnxruntime session of an exported DRML, with its AUs and inputs."""

  session: object  # onnxruntime.InferenceSession: images -> `outputs`
  aus: tuple[int, ...]
  thresholds: np.ndarray  # (C,) probabilities
  mode: str
  normalization: str
  input_size: int
  mean: np.ndarray | None = None  # the BGR mean image, for "bgr_mean"
  batch_size: int = DEFAULT_BATCH_SIZE
  description: str = ""
  exported_from: str = ""  # the checkpoint's description, from the metadata
  outputs: tuple[str, ...] = (metadata.OUTPUT_NAME,)  # the file's, in order
  preprocess: Callable = dataclasses.field(init=False, repr=False)

  def __post_init__(self):
    self.set_thresholds()
    self.preprocess = jax.jit(
      ModelInputs(
        self.mode,
        self.normalization,
        mean=self.mean,
        input_size=self.input_size,
      ).faces
    )

  @property
  def has_intensity(self) -> bool:
    return metadata.INTENSITY_NAME in self.outputs

  def run(self, faces: np.ndarray) -> tuple:
    """A padded batch of uint8 faces -> (probabilities, occurrences) and,
    with the head, intensities."""
    images = np.asarray(self.preprocess(faces))
    logits, *intensities = self.session.run(
      list(self.outputs), {metadata.INPUT_NAME: images}
    )
    # sigmoid(x) = exp(-log(1 + exp(-x))): no overflow at large |x|.
    probabilities = np.exp(-np.logaddexp(np.float32(0), -logits))
    return (probabilities, logits > self.logit_thresholds, *intensities)


def load(path: str, batch_size: int = DEFAULT_BATCH_SIZE) -> OnnxPredictor:
  """The predictor of an ONNX file that `python -m drml_jax.export` wrote;
  FileNotFoundError or ValueError in one line for any other file."""
  # Imported here: a second of start-up that --onnx alone needs.
  import onnxruntime  # pylint: disable=import-outside-toplevel

  if not os.path.isfile(path):
    raise FileNotFoundError(
      f"no ONNX file at {path}: pass a file written by "
      "python -m drml_jax.export --format onnx"
    )
  options = onnxruntime.SessionOptions()
  options.log_severity_level = QUIET
  available = onnxruntime.get_available_providers()
  try:
    session = onnxruntime.InferenceSession(
      path,
      options,
      providers=[p for p in PROVIDERS if p in available],
    )
  except Exception as error:  # pylint: disable=broad-except
    # onnxruntime raises its own types (InvalidProtobuf, Fail, ...).
    raise ValueError(
      f"{path} is not a readable ONNX model ({errors.first_line(error)}): "
      "pass a file written by python -m drml_jax.export --format onnx"
    ) from None
  fields = metadata.decode(session.get_modelmeta().custom_metadata_map, path)
  missing = set(fields.outputs) - {o.name for o in session.get_outputs()}
  if missing:
    raise ValueError(
      f"{path}: its metadata names outputs {sorted(missing)} that its graph "
      "lacks; export the model again"
    )
  return OnnxPredictor(
    session,
    fields.aus,
    fields.thresholds,
    fields.mode,
    fields.normalization,
    fields.input_size,
    mean=fields.mean,
    batch_size=batch_size,
    description=f"ONNX file {path}, exported from {fields.description}",
    exported_from=fields.description,
    outputs=fields.outputs,
  )
