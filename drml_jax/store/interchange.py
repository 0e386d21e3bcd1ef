"""Weight interchange between the Flax DRML and PyTorch DRML checkpoints.

The only module of drml_jax that reads or writes PyTorch state. The layout
is the public ports' one (docs/model.md#pytorch-checkpoint-layout): `extractor.*` and
`classifier.*`, region units `extractor.1.region_conv_{row}_{col}.{0,2}.*`.
Conv kernels are OIHW there and HWIO here, Linear weights are transposed, and
the first fc's input rows follow torch's (C,H,W) flatten order, while the
Flax model flattens NHWC maps as (H,W,C). BatchNorm running statistics carry
over as they are: both models keep torch's unbiased running variance.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import warnings
import zipfile
from typing import Callable, Mapping

import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

from data_pipeline import errors
from drml_jax.model.factory import build_model
from drml_jax.model.network import DRML
from reference_torch import checkpoint as torch_checkpoint
from reference_torch.model import DRML as TorchDRML


class InterchangeError(ValueError):
  """A state_dict that does not fit the model, named key by key."""


@dataclasses.dataclass(frozen=True)
class Entry:
  """One torch tensor and where it lives in the Flax state."""

  torch_key: str
  flax_path: tuple[str, ...]
  to_torch: Callable[[np.ndarray], np.ndarray]
  to_flax: Callable[[np.ndarray], np.ndarray]
  region: int | None = None  # index on the stacked region axis


def _identity(a):
  return a


def _conv_to_torch(k):
  return k.transpose(3, 2, 0, 1)  # HWIO -> OIHW


def _conv_to_flax(w):
  return w.transpose(2, 3, 1, 0)  # OIHW -> HWIO


def _fc1_converters(height, width, channels):
  def to_torch(k):  # (H*W*C, O) -> (O, C*H*W)
    return (
      k.reshape(height, width, channels, -1)
      .transpose(3, 2, 0, 1)
      .reshape(k.shape[1], -1)
    )

  def to_flax(w):  # (O, C*H*W) -> (H*W*C, O)
    return (
      w.reshape(-1, channels, height, width)
      .transpose(2, 3, 1, 0)
      .reshape(-1, w.shape[0])
    )

  return to_torch, to_flax


def _layer(
  torch_prefix, flax_path, kernel_to_torch, kernel_to_flax, region=None
):
  """A layer's weight and bias; `flax_path` is a name or a tuple of names."""
  flax_path = (flax_path,) if isinstance(flax_path, str) else flax_path
  return [
    Entry(
      f"{torch_prefix}.weight",
      (*flax_path, "kernel"),
      kernel_to_torch,
      kernel_to_flax,
      region=region,
    ),
    Entry(
      f"{torch_prefix}.bias",
      (*flax_path, "bias"),
      _identity,
      _identity,
      region=region,
    ),
  ]


def entries(model: DRML) -> list[Entry]:
  """Every tensor of the PyTorch state_dict, in torch's key order."""
  result = _layer("extractor.0", "conv1", _conv_to_torch, _conv_to_flax)
  if model.region is not None:
    rows, cols = model.region.grid
    has_bn_state = model.region.units.bn.track_running_stats
    for r in range(rows * cols):
      prefix = f"extractor.1.region_conv_{r // cols}_{r % cols}"
      if has_bn_state:
        for torch_name, flax_name in (
          ("weight", "scale"),
          ("bias", "bias"),
          ("running_mean", "mean"),
          ("running_var", "var"),
          ("num_batches_tracked", "num_batches_tracked"),
        ):
          result.append(
            Entry(
              f"{prefix}.0.{torch_name}",
              ("region", "units", "bn", flax_name),
              _identity,
              _identity,
              region=r,
            )
          )
      result += _layer(
        f"{prefix}.2",
        ("region", "units", "conv"),
        _conv_to_torch,
        _conv_to_flax,
        region=r,
      )
  for index, name in zip((5, 7, 9, 11), ("conv2", "conv3", "conv4", "conv5")):
    result += _layer(f"extractor.{index}", name, _conv_to_torch, _conv_to_flax)
  height, width, channels = model.feature_shape
  result += _layer(
    "classifier.0", "fc1", *_fc1_converters(height, width, channels)
  )
  result += _layer("classifier.3", "fc2", np.transpose, np.transpose)
  result += _layer("classifier.6", "fc3", np.transpose, np.transpose)
  if model.has_intensity:
    result += _layer("intensity", "fc_intensity", np.transpose, np.transpose)
  return result


def _variables(model) -> dict[tuple[str, ...], nnx.Variable]:
  return {
    tuple(str(k) for k in path): var
    for path, var in nnx.to_flat_state(nnx.state(model))
  }


def _flax_value(variables, entry) -> np.ndarray:
  value = np.asarray(variables[entry.flax_path][...])
  return value if entry.region is None else value[entry.region]


def to_torch_state_dict(
  model: DRML,
) -> "collections.OrderedDict[str, torch.Tensor]":
  """The model's parameters and BatchNorm statistics as a PyTorch state_dict."""
  variables = _variables(model)
  state_dict = collections.OrderedDict()
  for entry in entries(model):
    value = entry.to_torch(_flax_value(variables, entry))
    if entry.torch_key.endswith("num_batches_tracked"):
      value = value.astype(np.int64)
    state_dict[entry.torch_key] = torch.from_numpy(np.array(value, order="C"))
  return state_dict


def _as_numpy(value) -> np.ndarray:
  if isinstance(value, torch.Tensor):
    return value.detach().cpu().numpy()
  return np.asarray(value)


def _shape_error(entry, got, expected) -> InterchangeError:
  if entry.torch_key.startswith("classifier.6"):
    return InterchangeError(
      f"{entry.torch_key} has shape {tuple(got)} but the model expects {tuple(expected)}: "
      f"the checkpoint is for {got[0]} AUs and the model for {expected[0]}; "
      "build the model with the checkpoint's number of AUs"
    )
  return InterchangeError(
    f"{entry.torch_key} has shape {tuple(got)} but the model expects {tuple(expected)}"
  )


def load_torch_state_dict(
  model: DRML, state_dict: Mapping[str, object]
) -> None:
  """Writes a PyTorch DRML state_dict into the model, checking every key and shape."""
  variables = _variables(model)
  model_entries = entries(model)
  expected_keys = {e.torch_key for e in model_entries}
  unexpected = [k for k in state_dict if k not in expected_keys]
  if unexpected:
    raise InterchangeError(
      f"unexpected key {unexpected[0]!r} in the PyTorch state_dict "
      f"({len(unexpected)} unexpected): it does not belong to this DRML configuration"
    )
  stacked = collections.defaultdict(dict)
  for entry in model_entries:
    expected = entry.to_torch(_flax_value(variables, entry)).shape
    if entry.torch_key not in state_dict:
      raise InterchangeError(
        f"missing key {entry.torch_key!r} (expected shape {tuple(expected)}) "
        "in the PyTorch state_dict"
      )
    value = _as_numpy(state_dict[entry.torch_key])
    if value.shape != expected:
      raise _shape_error(entry, value.shape, expected)
    value = entry.to_flax(value)
    if entry.region is None:
      stacked[entry.flax_path] = value
    else:
      stacked[entry.flax_path][entry.region] = value
  for path, value in stacked.items():
    if isinstance(value, dict):
      value = np.stack([value[r] for r in range(len(value))])
    variable = variables[path]
    variable[...] = jnp.asarray(value, dtype=variable[...].dtype)


def read_torch_checkpoint(path, **kernels) -> tuple[DRML, dict]:
  """(model, model_config) of a PyTorch DRML checkpoint file (a public port's
  or the reference model's); the config, input size included, is read off
  the checkpoint's shapes. `kernels` choose conv forms (speed only)."""
  try:
    with (
      warnings.catch_warnings()
    ):  # torch's notes on the pickle protocol of a bad file
      warnings.simplefilter("ignore", UserWarning)
      state_dict = torch_checkpoint.load_state_dict(path)
  except Exception as error:  # pylint: disable=broad-except
    if isinstance(error, EOFError):
      reason = "the file is empty or cut short"
    elif isinstance(
      error, (zipfile.BadZipFile, RuntimeError, ValueError, OSError)
    ) and not isinstance(error, UnicodeError):
      reason = errors.first_line(error)
    else:
      # An UnpicklingError (whose advice, to unpickle an unknown file
      # unsafely, is never relayed), or whatever else the bytes of a file
      # that is not a checkpoint lead the unpickler to (IndexError,
      # UnicodeDecodeError, ...).
      reason = "not a torch.save file of tensors and plain containers"
    raise InterchangeError(
      f"{path} is not a readable PyTorch checkpoint ({reason}): "
      "pass a DRML state_dict saved with torch.save"
    ) from None
  try:
    model_config = torch_checkpoint.infer_model_config(state_dict)
  except ValueError as error:
    raise InterchangeError(f"{path}: {error}") from None
  model = build_model(model_config, **kernels)
  load_torch_state_dict(model, state_dict)
  return model, model_config


def to_torch_model(model: DRML, model_config: dict) -> TorchDRML:
  """The reference PyTorch DRML holding the model's weights (train mode,
  as torch builds it)."""
  torch_model = TorchDRML(**model_config)
  torch_model.load_state_dict(to_torch_state_dict(model), strict=True)
  return torch_model


def write_torch_checkpoint(
  model: DRML, model_config: dict, path, *, epoch: int = 0
) -> None:
  """Writes the model as a reference-model checkpoint `{'epoch', 'state_dict',
  'optimizer'}` through a temporary file: never half written."""
  torch_model = to_torch_model(model, model_config)
  partial = f"{path}.partial"
  torch_checkpoint.save_checkpoint(torch_model, partial, epoch=epoch)
  os.replace(partial, path)
