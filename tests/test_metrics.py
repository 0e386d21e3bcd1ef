"""On-device confusion counts against an independent NumPy implementation."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from drml_jax.scoring.metrics import confusion_counts
from tests.au_arrays import LABELS, LOGITS


def _numpy_counts(logits, labels, valid):
  rows = []
  for c in range(labels.shape[1]):
    keep = (labels[:, c] != 0) & valid
    pred, pos = logits[keep, c] > 0, labels[keep, c] > 0
    rows.append(
      [
        np.sum(pred & pos),
        np.sum(pred & ~pos),
        np.sum(~pred & ~pos),
        np.sum(~pred & pos),
      ]
    )
  return np.array(rows)


def test_confusion_counts_against_numpy_with_padding():
  valid = np.array([True, True, True, False])
  counts = confusion_counts(
    jnp.asarray(LOGITS), jnp.asarray(LABELS), jnp.asarray(valid)
  )
  np.testing.assert_array_equal(counts, _numpy_counts(LOGITS, LABELS, valid))
  assert counts.dtype == jnp.int32
