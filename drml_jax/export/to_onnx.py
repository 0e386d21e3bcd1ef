"""A trained DRML as one ONNX file, through the PyTorch reference model.

  to_onnx.write(trained, props, "model.onnx")

The JAX weights go into the reference PyTorch DRML
(`drml_jax.store.interchange`, whose parity tests hold it to the JAX
network), wrapped to take the JAX model's NHWC images, and PyTorch's
exporter writes the graph. Why this route: the JAX-native converter
(jax2onnx 0.17.1) needs orbax-checkpoint<0.11.37, which this project's pin
(0.12.8) rules out, and brings ~30 more packages (equinox, huggingface_hub,
netron, ...).

The exporter is torch.export's (dynamo=True, with onnxscript): its graph is
the network's operators alone, 364 nodes for the full DRML, where the
TorchScript exporter's (dynamo=False) holds 1,218, over half of them
Constant and Identity, with Shape, Gather and Unsqueeze arithmetic and an
If on the batch's shape, and runs no faster in onnxruntime
(docs/predict.md#export). Opset 18, the batch dimension symbolic, the
weights inside the file (228 MB for the full model, far under protobuf's
2 GB). A model with the intensity head gives two outputs, "logits" and
"intensities" (`metadata.output_names`): its `outputs`, wrapped the same way.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

import torch

from drml_jax.model.network import DRML
from drml_jax.predict import metadata
from drml_jax.store import interchange, workdir
from drml_jax.store.saved_run import TrainedModel
from reference_torch.model import expected_intensity

OPSET = 18
KERNELS = {}  # the conv forms to load the model with: any, weights only
EXAMPLE_BATCH = 2  # torch.export takes a batch of 1 as a constant


class NHWC(torch.nn.Module):
  """A PyTorch DRML taking NHWC images, as the JAX model does: its logits,
  or with `intensity` its (logits, intensities)."""

  def __init__(self, network: torch.nn.Module, intensity: bool = False):
    super().__init__()
    self.network = network
    self.intensity = intensity

  def forward(self, images: torch.Tensor):
    images = images.permute(0, 3, 1, 2)
    if self.intensity:
      logits, thresholds = self.network.outputs(images)
      return logits, expected_intensity(thresholds)
    return self.network(images)


def onnx_program(model: DRML, model_config: dict) -> torch.onnx.ONNXProgram:
  """The eval-mode network as an ONNX program: images -> logits (and
  intensities, for a model with the intensity head), any batch."""
  network = interchange.to_torch_model(model, model_config)
  intensity = network.intensity is not None
  size = model_config["input_size"]
  example = torch.zeros(EXAMPLE_BATCH, size, size, 3)
  # The exporter reports each stage and torchvision's absence on stdout and
  # the log, and warns of its own internals: none of it the user's concern.
  with (
    warnings.catch_warnings(),
    contextlib.redirect_stdout(io.StringIO()),
    _quiet("torch"),
  ):
    warnings.simplefilter("ignore")
    return torch.onnx.export(
      NHWC(network.eval(), intensity),
      (example,),
      dynamo=True,
      dynamic_shapes=({0: torch.export.Dim("batch")},),
      input_names=[metadata.INPUT_NAME],
      output_names=metadata.output_names(intensity),
      opset_version=OPSET,
      external_data=False,
      verbose=False,
    )


@contextlib.contextmanager
def _quiet(name: str):
  logger = logging.getLogger(name)
  level = logger.level
  logger.setLevel(logging.ERROR)
  try:
    yield
  finally:
    logger.setLevel(level)


def write(trained: TrainedModel, props: dict[str, str], path: str) -> None:
  """Writes the model and `props` (its metadata_props) to one ONNX file,
  atomically."""
  program = onnx_program(trained.model, trained.model_config)
  program.model.metadata_props.update(props)
  program.model.producer_name = "drml_jax.export"
  with workdir.atomic_path(path) as partial:
    program.save(partial, external_data=False)
