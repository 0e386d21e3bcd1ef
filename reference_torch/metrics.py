"""Per-AU confusion counts; F1 and accuracy are computed framework-neutrally."""

from __future__ import annotations

import torch


def confusion_counts(
  logits: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor | None = None
) -> torch.Tensor:
  """(C, 4) int64 counts [tp, fp, tn, fn] per AU.

  An AU is predicted present iff its logit > 0 (probability > 0.5). Labels 0
  and rows where the (N,) bool mask `valid` is False are not counted.
  """
  predicted = logits > 0
  positive = labels > 0
  negative = labels < 0
  if valid is not None:
    keep = valid.to(torch.bool)[:, None]
    positive = positive & keep
    negative = negative & keep
  counts = (
    predicted & positive,
    predicted & negative,
    ~predicted & negative,
    ~predicted & positive,
  )
  return torch.stack([c.sum(dim=0) for c in counts], dim=1)
