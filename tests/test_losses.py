"""The masked multi-label loss against an independent NumPy implementation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from drml_jax.model.network import Outputs
from drml_jax.train.losses import (
  drml_loss,
  masked_intensity_loss,
  multilabel_sigmoid_cross_entropy,
  positive_weights,
)
from tests.au_arrays import LABELS, LOGITS


def _numpy_loss(logits, labels):
  p = 1 / (1 + np.exp(-logits.astype(np.float64)))
  terms = np.where(labels > 0, np.log(p), 0) + np.where(
    labels < 0, np.log(1 - p), 0
  )
  return -terms.sum() / logits.shape[0]


def test_loss_against_numpy_with_an_all_ignored_au():
  with jax.enable_x64(True):
    logits = LOGITS.astype(np.float64)
    ours = multilabel_sigmoid_cross_entropy(
      jnp.asarray(logits), jnp.asarray(LABELS)
    )
    assert float(ours) == pytest.approx(_numpy_loss(logits, LABELS), rel=1e-12)
    grad = jax.grad(multilabel_sigmoid_cross_entropy)(
      jnp.asarray(logits), jnp.asarray(LABELS)
    )
  expected = (
    (1 / (1 + np.exp(-logits)) - (LABELS > 0)) / len(logits) * (LABELS != 0)
  )
  np.testing.assert_allclose(grad, expected, rtol=1e-12, atol=1e-15)
  assert np.all(np.asarray(grad)[:, 2] == 0)  # the ignored AU gets no gradient


def test_loss_never_overflows():
  logits = jnp.array([[200.0, -200.0]])
  loss = multilabel_sigmoid_cross_entropy(
    logits, jnp.array([[-1, 1]], jnp.int8)
  )
  assert float(loss) == pytest.approx(400.0)


def test_positive_weights_are_negatives_over_positives():
  # AU1 1 positive of 4 labelled; AU2 none positive; AU3 all positive.
  weights = positive_weights([1, 0, 3], [4, 2, 3])
  np.testing.assert_allclose(weights, [3.0, 1.0, 1.0])


def test_weighted_loss_matches_numpy_and_the_torch_reference_in_float64():
  torch = pytest.importorskip("torch")
  from reference_torch.losses import (  # pylint: disable=import-outside-toplevel
    multilabel_sigmoid_cross_entropy as torch_loss,
  )

  weights = np.array([3.0, 0.5, 2.0, 1.5])
  logits = LOGITS.astype(np.float64)
  p = 1 / (1 + np.exp(-logits))
  expected = -(
    np.where(LABELS > 0, weights * np.log(p), 0)
    + np.where(LABELS < 0, np.log(1 - p), 0)
  ).sum() / len(logits)
  with jax.enable_x64(True):
    ours = float(
      multilabel_sigmoid_cross_entropy(
        jnp.asarray(logits), jnp.asarray(LABELS), jnp.asarray(weights)
      )
    )
  theirs = torch_loss(
    torch.from_numpy(logits),
    torch.from_numpy(LABELS.astype(np.int64)),
    torch.from_numpy(weights),
  ).item()
  assert abs(ours - theirs) <= 1e-10 and abs(ours - expected) <= 1e-10
  assert ours != pytest.approx(_numpy_loss(logits, LABELS))


def test_the_intensity_loss_against_numpy_leaves_unknowns_out():
  rng = np.random.default_rng(0)
  thresholds = rng.normal(0, 2, (2, 3, 5))
  targets = np.array([[0, 3, -1], [-1, 5, 1]], np.int8)
  # Per threshold k = 1..5, the cross-entropy of "intensity >= k".
  p = 1 / (1 + np.exp(-thresholds))
  reached = targets[..., None] >= np.arange(1, 6)
  terms = np.where(reached, np.log(p), np.log(1 - p))
  expected = -np.where(targets[..., None] >= 0, terms, 0).sum() / 2
  with jax.enable_x64(True):
    loss = masked_intensity_loss(jnp.asarray(thresholds), jnp.asarray(targets))
    assert float(loss) == pytest.approx(expected, rel=1e-12)
    grad = jax.grad(masked_intensity_loss)(
      jnp.asarray(thresholds), jnp.asarray(targets)
    )
  assert np.all(np.asarray(grad)[targets < 0] == 0)
  assert np.all(np.asarray(grad)[targets >= 0] != 0)
  logits = jnp.asarray(LOGITS[:2, :3])
  batch = {"labels": jnp.asarray(LABELS[:2, :3]), "intensity": targets}
  occurrence = multilabel_sigmoid_cross_entropy(logits, batch["labels"])
  # Without the head the loss is the cross-entropy itself, bit for bit.
  assert drml_loss(Outputs(logits), batch) == occurrence
  thresholds = jnp.asarray(thresholds, jnp.float32)
  assert float(
    drml_loss(Outputs(logits, thresholds), batch, intensity_weight=3.0)
  ) == pytest.approx(float(occurrence) + 3 * expected, rel=1e-5)
