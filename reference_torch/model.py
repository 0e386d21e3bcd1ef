"""DRML in PyTorch, laid out like the public ports so checkpoints interchange.

Module indices and names follow the public ports' layout exactly
(docs/model.md#pytorch-checkpoint-layout): `extractor` and
`classifier` are `nn.Sequential`s whose state_dict keys match the ports'
checkpoints, and the region layer registers one `region_conv_{i}_{j}` child
per patch (i row, j column).
"""

from __future__ import annotations

import math

import torch
from torch import nn

REGION_BNS = ("affine", "batch_stats")
INITS = ("pytorch", "caffe", "he")
MAX_INTENSITY = 5  # FACS intensities run 0 (absent) to 5 (maximum)


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
  if value not in allowed:
    raise ValueError(f"{name}={value!r} is not one of {allowed}")


def _region_norm(channels: int, region_bn: str) -> nn.BatchNorm2d:
  if region_bn == "affine":
    return nn.BatchNorm2d(channels)
  return nn.BatchNorm2d(channels, affine=False, track_running_stats=False)


class RegionLayer(nn.Module):
  """Per-patch residual `patch + conv3x3(relu(bn(patch)))` on a grid of patches.

  Every patch has its own BatchNorm and conv; the conv is zero-padded inside
  the patch, so a patch never sees its neighbours.
  """

  def __init__(
    self,
    channels: int,
    grid: tuple[int, int] = (8, 8),
    region_bn: str = "affine",
  ):
    super().__init__()
    _check_choice("region_bn", region_bn, REGION_BNS)
    self.grid = tuple(grid)
    for i in range(self.grid[0]):
      for j in range(self.grid[1]):
        self.add_module(
          f"region_conv_{i}_{j}",
          nn.Sequential(
            _region_norm(channels, region_bn),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
          ),
        )

  def region(self, i: int, j: int) -> nn.Sequential:
    """The module applied to the patch in grid row i, column j."""
    return getattr(self, f"region_conv_{i}_{j}")

  def patch_size(self, x: torch.Tensor) -> tuple[int, int]:
    """(height, width) of one patch of `x`; raises unless the grid divides it."""
    height, width = x.shape[-2:]
    rows, cols = self.grid
    if height % rows or width % cols:
      raise ValueError(
        f"feature map {height}x{width} is not divisible by the region grid "
        f"{rows}x{cols}"
      )
    return height // rows, width // cols

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    rows, cols = self.grid
    patch_h, patch_w = self.patch_size(x)
    out_rows = []
    for i in range(rows):
      out_cols = []
      for j in range(cols):
        patch = x[
          ..., i * patch_h : (i + 1) * patch_h, j * patch_w : (j + 1) * patch_w
        ]
        out_cols.append(patch + self.region(i, j)(patch))
      out_rows.append(torch.cat(out_cols, dim=-1))
    return torch.cat(out_rows, dim=-2)


# (kernel, stride) of every layer that shrinks the map: conv1, max-pool, conv2-5.
_SHRINKING_LAYERS = ((11, 1), (2, 2), (8, 1), (8, 1), (6, 2), (5, 1))
FEATURE_CHANNELS = 16


def feature_side(input_size: int) -> int:
  """Side of the square map fed to the first fc layer, for a square input."""
  side = input_size
  for kernel, stride in _SHRINKING_LAYERS:
    side = (side - kernel) // stride + 1
  return side


def _set_normal(layer: nn.Module, std: float, bias: float) -> None:
  nn.init.normal_(layer.weight, 0.0, std)
  nn.init.constant_(layer.bias, bias)


def _he_std(layer: nn.Module) -> float:
  fan_in = layer.weight[0].numel()
  return math.sqrt(2.0 / fan_in)


class DRML(nn.Module):
  """Deep Region and Multi-label Learning: (N, 3, H, W) images to AU logits.

  With `intensity`, the ordinal intensity head: a linear layer `intensity`
  on the second fc layer's features (beside `classifier.6`, the features
  detached: its loss does not train them) gives each AU MAX_INTENSITY
  logits of P(intensity >= k) (`outputs`; `expected_intensity` turns them
  into intensities). `forward` returns the logits alone, as the ports'
  models do.
  """

  def __init__(
    self,
    num_aus: int = 12,
    *,
    grid: tuple[int, int] = (8, 8),
    region_bn: str = "affine",
    init: str = "pytorch",
    region_layer: bool = True,
    intensity: bool = False,
    dropout: float = 0.5,
    input_size: int = 170,
  ):
    super().__init__()
    _check_choice("region_bn", region_bn, REGION_BNS)
    _check_choice("init", init, INITS)
    region = RegionLayer(32, grid, region_bn) if region_layer else nn.Identity()
    self.extractor = nn.Sequential(
      nn.Conv2d(3, 32, 11),
      region,
      nn.ReLU(),
      nn.MaxPool2d(2, 2),
      nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=1.0),
      nn.Conv2d(32, 16, 8),
      nn.ReLU(),
      nn.Conv2d(16, 16, 8),
      nn.ReLU(),
      nn.Conv2d(16, 16, 6, stride=2),
      nn.ReLU(),
      nn.Conv2d(16, 16, 5),
      nn.ReLU(),
    )
    side = feature_side(input_size)
    if side < 1:
      raise ValueError(f"input_size={input_size} is too small for DRML")
    flattened = FEATURE_CHANNELS * side * side
    self.classifier = nn.Sequential(
      nn.Linear(flattened, 4096),
      nn.ReLU(),
      nn.Dropout(dropout),
      nn.Linear(4096, 2048),
      nn.ReLU(),
      nn.Dropout(dropout),
      nn.Linear(2048, num_aus),
    )
    self.intensity = (
      nn.Linear(2048, num_aus * MAX_INTENSITY) if intensity else None
    )
    self._initialize(init)

  def _initialize(self, init: str) -> None:
    """Applies an init variant; "pytorch" keeps torch's defaults.

    BatchNorm scale/shift keep torch's defaults (1 and 0) in every variant.
    """
    if init == "pytorch":
      return
    conv1 = self.extractor[0]
    convs = [m for m in self.extractor.modules() if isinstance(m, nn.Conv2d)]
    hidden_fcs = (self.classifier[0], self.classifier[3])
    if init == "caffe":
      for conv in convs:
        _set_normal(conv, 0.01, bias=0.0 if conv is conv1 else 1.0)
      for fc in hidden_fcs:
        _set_normal(fc, 0.005, bias=1.0)
    else:
      for layer in (*convs, *hidden_fcs):
        _set_normal(layer, _he_std(layer), bias=0.0)
    for out in (self.classifier[6], self.intensity):
      if out is not None:
        _set_normal(out, 0.01, bias=0.0)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.classifier(self.extractor(x).flatten(1))

  def outputs(
    self, x: torch.Tensor
  ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(logits (N, C), intensity logits (N, C, MAX_INTENSITY) of
    P(intensity >= k)); the intensity logits None without the head."""
    features = self.classifier[:6](self.extractor(x).flatten(1))
    logits = self.classifier[6](features)
    if self.intensity is None:
      return logits, None
    thresholds = self.intensity(features.detach())
    return logits, thresholds.unflatten(1, (-1, MAX_INTENSITY))


def expected_intensity(intensity_logits: torch.Tensor) -> torch.Tensor:
  """sum_k P(intensity >= k): intensities in [0, MAX_INTENSITY]."""
  return torch.sigmoid(intensity_logits).sum(-1)


def count_parameters(model: nn.Module) -> int:
  """Number of trainable parameters."""
  return sum(p.numel() for p in model.parameters() if p.requires_grad)
