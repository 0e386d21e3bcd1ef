"""The fastest PyTorch DRML we have: the region layer as one grouped conv.

Moving each patch of the (N, C, H, W) map into the channel axis, region-major
((N, rows*cols*C, H/rows, W/cols), region r = row*cols + col), turns the 64
per-patch units into one `BatchNorm2d(64*C)` (each channel's statistics are
one region's), one ReLU and one `Conv2d(64*C, 64*C, 3, padding=1,
groups=64)`: padding each patch separately is exactly "a patch never sees its
neighbours". It computes the same function as `reference_torch.model.DRML`
and converts to and from that model (`FastDRML(reference)`,
`reference_state_dict`).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from reference_torch.model import DRML, RegionLayer


def to_patch_channels(x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
  """(N, C, H, W) -> (N, rows*cols*C, H/rows, W/cols), regions row-major."""
  n, c, h, w = x.shape
  rows, cols = grid
  if h % rows or w % cols:
    raise ValueError(
      f"feature map {h}x{w} is not divisible by the region grid {rows}x{cols}"
    )
  x = x.reshape(n, c, rows, h // rows, cols, w // cols).permute(
    0, 2, 4, 1, 3, 5
  )
  return x.reshape(n, rows * cols * c, h // rows, w // cols)


def from_patch_channels(
  x: torch.Tensor, grid: tuple[int, int], channels: int
) -> torch.Tensor:
  """Inverse of `to_patch_channels`."""
  n, _, ph, pw = x.shape
  rows, cols = grid
  x = x.reshape(n, rows, cols, channels, ph, pw).permute(0, 3, 1, 4, 2, 5)
  return x.reshape(n, channels, rows * ph, cols * pw)


class GroupedRegionLayer(nn.Module):
  """`RegionLayer` with every region's BN and conv stacked into one of each."""

  def __init__(
    self,
    channels: int,
    grid: tuple[int, int] = (8, 8),
    region_bn: str = "affine",
  ):
    super().__init__()
    self.channels = channels
    self.grid = tuple(grid)
    regions = self.grid[0] * self.grid[1]
    if region_bn == "affine":
      self.norm = nn.BatchNorm2d(regions * channels)
    else:
      self.norm = nn.BatchNorm2d(
        regions * channels, affine=False, track_running_stats=False
      )
    self.conv = nn.Conv2d(
      regions * channels, regions * channels, 3, padding=1, groups=regions
    )

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    patches = to_patch_channels(x, self.grid)
    out = patches + self.conv(torch.relu(self.norm(patches)))
    return from_patch_channels(out, self.grid, self.channels)

  @torch.no_grad()
  def load_regions(self, layer: RegionLayer) -> None:
    """Copies the 64 per-region modules of a ports'-form layer into the stacks."""
    units = [
      layer.region(i, j)
      for i in range(self.grid[0])
      for j in range(self.grid[1])
    ]
    for name in ("weight", "bias", "running_mean", "running_var"):
      if getattr(self.norm, name) is not None:
        getattr(self.norm, name).copy_(
          torch.cat([getattr(u[0], name) for u in units])
        )
    if self.norm.num_batches_tracked is not None:
      self.norm.num_batches_tracked.copy_(units[0][0].num_batches_tracked)
    self.conv.weight.copy_(torch.cat([u[2].weight for u in units]))
    self.conv.bias.copy_(torch.cat([u[2].bias for u in units]))

  def region_state(self, prefix: str) -> dict[str, torch.Tensor]:
    """This layer's tensors under the ports' `region_conv_{i}_{j}` keys."""
    rows, cols = self.grid
    c = self.channels
    state = {}
    for r in range(rows * cols):
      unit = f"{prefix}region_conv_{r // cols}_{r % cols}"
      block = slice(r * c, (r + 1) * c)
      for name in ("weight", "bias", "running_mean", "running_var"):
        if getattr(self.norm, name) is not None:
          state[f"{unit}.0.{name}"] = getattr(self.norm, name)[block]
      if self.norm.num_batches_tracked is not None:
        state[f"{unit}.0.num_batches_tracked"] = self.norm.num_batches_tracked
      state[f"{unit}.2.weight"] = self.conv.weight[block]
      state[f"{unit}.2.bias"] = self.conv.bias[block]
    return state


class FastDRML(nn.Module):
  """DRML with a `GroupedRegionLayer`, made from a `reference_torch.model.DRML`.

  The new model holds copies of the reference's tensors: training it leaves
  the reference as it was.
  """

  def __init__(self, reference: DRML):
    super().__init__()
    reference = copy.deepcopy(reference)
    layers = list(reference.extractor)
    region = layers[1]
    if isinstance(region, RegionLayer):
      bn = region.region(0, 0)[0]
      grouped = GroupedRegionLayer(
        bn.num_features, region.grid, "affine" if bn.affine else "batch_stats"
      )
      grouped.to(next(region.parameters()).device)
      grouped.load_regions(region)
      layers[1] = grouped
    self.extractor = nn.Sequential(*layers)
    self.classifier = reference.classifier

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.classifier(self.extractor(x).flatten(1))

  def reference_state_dict(self) -> dict[str, torch.Tensor]:
    """This model's tensors keyed as `reference_torch.model.DRML`'s state_dict."""
    state = {
      key: value
      for key, value in self.state_dict().items()
      if not key.startswith("extractor.1.")
    }
    region = self.extractor[1]
    if isinstance(region, GroupedRegionLayer):
      state.update(region.region_state("extractor.1."))
    return state
