"""Reading and writing DRML checkpoints in the public ports' layout.

The ports save `{'epoch', 'state_dict', 'optimizer'}`, sometimes with a
`module.` prefix on every key (DataParallel); both forms load here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from reference_torch.model import DRML, FEATURE_CHANNELS, feature_side

_REQUIRED_KEYS = tuple(
  f"{layer}.{param}"
  for layer in (
    "extractor.0",
    "extractor.5",
    "extractor.7",
    "extractor.9",
    "extractor.11",
    "classifier.0",
    "classifier.3",
    "classifier.6",
  )
  for param in ("weight", "bias")
)
_REGION_KEY = re.compile(
  r"extractor\.1\.region_conv_(\d+)_(\d+)\.(\d+)\.(\w+)$"
)
_DATA_PARALLEL_PREFIX = "module."


def load_state_dict(
  path_or_obj: str | os.PathLike | Mapping[str, Any],
) -> dict[str, torch.Tensor]:
  """A plain state_dict from a checkpoint file or an already-loaded object."""
  if isinstance(path_or_obj, (str, os.PathLike)):
    path_or_obj = torch.load(path_or_obj, map_location="cpu", weights_only=True)
  if not isinstance(path_or_obj, Mapping):
    raise ValueError(
      f"expected a state_dict mapping, got {type(path_or_obj).__name__}"
    )
  state = path_or_obj.get("state_dict", path_or_obj)
  return {
    key.removeprefix(_DATA_PARALLEL_PREFIX): value
    for key, value in state.items()
  }


def infer_input_size(fc1_inputs: int, grid: tuple[int, int]) -> int:
  """The input side a DRML was built for, from its first fc's width.

  170 when it fits, else the smallest side whose conv1 map the grid divides.
  """
  sides = [
    side
    for side in range(11, 1025)
    if FEATURE_CHANNELS * feature_side(side) ** 2 == fc1_inputs
    and feature_side(side) > 0
    and (side - 10) % grid[0] == 0
    and (side - 10) % grid[1] == 0
  ]
  if not sides:
    raise ValueError(
      f"classifier.0 takes {fc1_inputs} inputs, which no DRML "
      "input size gives: not a DRML checkpoint"
    )
  return 170 if 170 in sides else sides[0]


def infer_model_config(
  state_dict: Mapping[str, torch.Tensor],
) -> dict[str, Any]:
  """DRML constructor arguments (num_aus, grid, region_bn, region_layer,
  intensity, input_size), JSON-ready.

  Without a region layer, grid and region_bn are the constructor defaults.
  """
  for key in _REQUIRED_KEYS:
    if key not in state_dict:
      raise ValueError(f"not a DRML state_dict: missing key {key!r}")
  config = {
    "num_aus": int(state_dict["classifier.6.weight"].shape[0]),
    "grid": [8, 8],
    "region_bn": "affine",
    "region_layer": False,
    "intensity": "intensity.weight" in state_dict,
  }
  region_keys = [m.groups() for m in map(_REGION_KEY.match, state_dict) if m]
  if region_keys:
    config["region_layer"] = True
    config["grid"] = [
      max(int(k[0]) for k in region_keys) + 1,
      max(int(k[1]) for k in region_keys) + 1,
    ]
    has_bn_params = any(k[2:] == ("0", "weight") for k in region_keys)
    config["region_bn"] = "affine" if has_bn_params else "batch_stats"
  config["input_size"] = infer_input_size(
    state_dict["classifier.0.weight"].shape[1], config["grid"]
  )
  return config


def load_model(path_or_obj: str | os.PathLike | Mapping[str, Any]) -> DRML:
  """A DRML built from the checkpoint's own shape and loaded strictly."""
  state_dict = load_state_dict(path_or_obj)
  model = DRML(**infer_model_config(state_dict))
  model.load_state_dict(state_dict, strict=True)
  return model


def save_checkpoint(
  model: nn.Module,
  path: str | os.PathLike,
  *,
  epoch: int = 0,
  optimizer: torch.optim.Optimizer | None = None,
) -> None:
  """Writes `{'epoch', 'state_dict', 'optimizer'}` like the public ports."""
  torch.save(
    {
      "epoch": epoch,
      "state_dict": model.state_dict(),
      "optimizer": optimizer.state_dict() if optimizer is not None else None,
    },
    path,
  )
