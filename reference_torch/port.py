"""DRML computed the way the public PyTorch port YIUYA/DRML computes it.

The port's DRML.py cuts the feature map with `torch.split` (rows, then
columns), runs each region's Sequential(BatchNorm2d, ReLU, Conv2d 3x3 pad 1)
on `patch.contiguous()`, adds the patch and joins the patches with
`torch.cat`; the port's train.py trains with its own loss (sigmoid, then
the log of the probabilities with zeros replaced by 1e-20) and
`torch.optim.SGD`. The values are `reference_torch.model`'s; only the
autograd graph differs: `reference_torch.model.RegionLayer` slices views,
whose backward fills a full-size zero tensor per region, where
`torch.split`'s backward is one concatenation. The modules and state_dict
keys are `reference_torch.model`'s.
"""

from __future__ import annotations

import copy

import torch

from reference_torch.model import DRML, RegionLayer


class PortRegionLayer(RegionLayer):
  """`RegionLayer` that splits the map and copies each patch, as YIUYA/DRML does."""

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    patch_h, patch_w = self.patch_size(x)
    out_rows = []
    for i, row in enumerate(torch.split(x, patch_h, dim=-2)):
      patches = torch.split(row, patch_w, dim=-1)
      out_rows.append(
        torch.cat(
          [
            self.region(i, j)(patch.contiguous()) + patch
            for j, patch in enumerate(patches)
          ],
          dim=-1,
        )
      )
    return torch.cat(out_rows, dim=-2)


def port_drml(reference: DRML) -> DRML:
  """A copy of `reference` whose region layer is a `PortRegionLayer`.

  The copy holds the same tensors under the same state_dict keys; training it
  leaves `reference` as it was.
  """
  model = copy.deepcopy(reference)
  region = model.extractor[1]
  if isinstance(region, RegionLayer):
    bn = region.region(0, 0)[0]
    port = PortRegionLayer(
      bn.num_features, region.grid, "affine" if bn.affine else "batch_stats"
    )
    port.load_state_dict(region.state_dict())
    model.extractor[1] = port.to(next(region.parameters()).device)
  return model


def port_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
  """YIUYA/DRML's loss: -(sum log p[positive] + sum log(1 - p[negative])) / N.

  Probabilities that round to 0 are replaced by 1e-20 before the log, as the
  port does. Labels follow this project's {-1, 0, +1} (0 ignored); the port's
  own labels are {0, 1}, 0 the negatives.
  """
  probs = torch.sigmoid(logits)
  terms = [probs[labels > 0], 1 - probs[labels < 0]]
  log_likelihood = sum(
    torch.log(p.masked_fill(p == 0, 1e-20)).sum() for p in terms
  )
  return -log_likelihood / logits.shape[0]
