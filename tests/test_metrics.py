"""On-device confusion counts against an independent NumPy implementation,
and the host-side counts (`scores.counts_at`) against them."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from drml_jax.scoring import scores
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


def test_host_counts_at_a_threshold_equal_the_device_counts():
  # The logits as the "probabilities" and 0 as every threshold: the same
  # predictions, counted by scores.counts_at on the host.
  counts = jax.jit(confusion_counts)(jnp.asarray(LOGITS), jnp.asarray(LABELS))
  host = scores.counts_at(LOGITS, LABELS, np.zeros(LABELS.shape[1]))
  np.testing.assert_array_equal(counts, host)
  np.testing.assert_array_equal(
    host, _numpy_counts(LOGITS, LABELS, np.ones(len(LABELS), bool))
  )
