"""DRML's multi-label sigmoid cross-entropy and the intensity head's masked
ordinal cross-entropy (docs/model.md#loss)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def multilabel_sigmoid_cross_entropy(
  logits: torch.Tensor,
  labels: torch.Tensor,
  pos_weight: torch.Tensor | None = None,
) -> torch.Tensor:
  """Sum over AUs of the sigmoid cross-entropy, averaged over the batch.

  Labels are in {-1, 0, +1}; 0 entries are ignored but still count in the
  batch size N. `pos_weight` (C,) multiplies each AU's positive terms.
  Log-sigmoid keeps it exact for any finite logit.
  """
  if logits.shape != labels.shape:
    raise ValueError(
      f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} differ"
    )
  zero = logits.new_zeros(())
  positive = F.logsigmoid(logits)
  if pos_weight is not None:
    positive = positive * pos_weight.to(logits.dtype)
  log_likelihood = torch.where(
    labels > 0,
    positive,
    torch.where(labels < 0, F.logsigmoid(-logits), zero),
  )
  return -log_likelihood.sum() / logits.shape[0]


def masked_intensity_loss(
  intensity_logits: torch.Tensor, targets: torch.Tensor, max_intensity: int = 5
) -> torch.Tensor:
  """The ordinal head's loss: a sigmoid cross-entropy per threshold "intensity
  >= k" (k = 1 .. max_intensity) of (N, C, max_intensity) logits, summed,
  averaged over the batch; a target of -1 (unknown) contributes nothing."""
  thresholds = torch.arange(1, max_intensity + 1)
  reached = targets[..., None] >= thresholds
  per_threshold = torch.where(
    reached, F.logsigmoid(intensity_logits), F.logsigmoid(-intensity_logits)
  )
  known = (targets >= 0)[..., None]
  zero = intensity_logits.new_zeros(())
  return -torch.where(known, per_threshold, zero).sum() / len(intensity_logits)
