"""On-device confusion counts against an independent NumPy implementation."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from drml_jax.metrics import confusion_counts

LABELS = np.array(
  [[1, -1, 0, -1], [-1, 1, 0, -1], [1, 1, 0, -1], [-1, -1, 0, -1]], np.int8
)
LOGITS = np.array(
  [
    [2.0, -1.0, 3.0, -2.0],
    [0.5, 1.5, -3.0, -0.5],
    [-0.7, 2.5, 1.0, -1.5],
    [-1.2, 0.3, 0.2, -0.1],
  ],
  np.float32,
)


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
