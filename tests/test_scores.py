"""Host-side scores: F1/accuracy edge cases, the constant predictor, collapse,
AUC and tuned thresholds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from drml_jax.scoring import scores
from drml_jax.scoring.scores import au_scores, to_json


def test_scores_edge_cases():
  # AU1: normal; AU2: every label ignored; AU4: no positive labelled; AU5:
  # positives exist but nothing is predicted positive.
  counts = np.array([[3, 1, 4, 2], [0, 0, 0, 0], [0, 2, 6, 0], [0, 0, 5, 3]])
  scores = au_scores(counts, (1, 2, 4, 5))
  assert scores["f1"][0] == pytest.approx(2 * 3 / (2 * 3 + 1 + 2))
  assert scores["accuracy"][0] == pytest.approx(7 / 10)
  assert np.isnan(scores["f1"][1]) and np.isnan(scores["accuracy"][1])
  assert scores["f1"][2] == 0 and scores["accuracy"][2] == pytest.approx(0.75)
  assert scores["f1"][3] == 0 and scores["accuracy"][3] == pytest.approx(5 / 8)
  assert scores["mean_f1"] == pytest.approx(
    (6 / 9 + 0 + 0) / 3
  )  # the all-ignored AU is left out
  assert '"f1": [\n    0.6666666666666666,\n    null' in to_json(scores)


def test_collapse_and_constant_predictor():
  counts = np.array([[0, 0, 6, 2], [0, 0, 4, 4]])  # everything predicted absent
  assert "absent" in scores.collapse(counts)
  assert scores.collapse(counts[:, [2, 3, 0, 1]]).endswith(
    "present for the whole split"
  )
  assert scores.collapse([[1, 0, 6, 1], [0, 0, 4, 4]]) is None
  np.testing.assert_array_equal(
    scores.constant_counts(counts), [[2, 6, 0, 0], [4, 4, 0, 0]]
  )
  result = scores.evaluation_scores(counts, (1, 2))
  assert result["collapse"] == scores.collapse(counts)
  assert result["constant_mean_f1"] == pytest.approx(
    np.mean([2 * 2 / 10, 2 * 4 / 12])
  )
  assert list(result)[-2:] == ["constant_mean_f1", "collapse"]
  assert (
    scores.evaluation_scores([[1, 0, 6, 1], [0, 0, 4, 4]], (1, 2))["collapse"]
    is None
  )


def _mann_whitney_auc(scores, positive):
  """AUC as P(score of a positive > score of a negative), ties counted half."""
  pos, neg = scores[positive], scores[~positive]
  greater = (pos[:, None] > neg[None, :]).sum()
  ties = (pos[:, None] == neg[None, :]).sum()
  return (greater + 0.5 * ties) / (len(pos) * len(neg))


def test_auc_against_mann_whitney_with_ties_ignored_and_constant_aus():
  rng = np.random.default_rng(0)
  # Probabilities on a coarse grid: many ties within and across classes.
  probabilities = rng.integers(0, 5, (60, 4)) / 4
  labels = rng.choice(np.array([-1, 0, 1], np.int8), (60, 4))
  labels[:, 2] = np.where(labels[:, 2] == 0, 0, -1)  # no positive: n/a
  labels[:, 3] = 1  # no negative: n/a
  auc = scores.roc_auc(probabilities, labels)
  for c in (0, 1):
    known = labels[:, c] != 0
    assert auc[c] == pytest.approx(
      _mann_whitney_auc(probabilities[known, c], labels[known, c] > 0),
      abs=1e-12,
    )
  assert np.isnan(auc[2]) and np.isnan(auc[3])
  result = scores.evaluation_scores(np.ones((4, 4), int), (1, 2, 4, 5), auc=auc)
  assert result["mean_auc"] == pytest.approx(np.mean(auc[:2]))
  record = scores.eval_record(result, (1, 2, 4, 5))
  assert record["auc"]["4"] is None and record["auc"]["5"] is None
  assert json.loads(json.dumps(record)) == record


def test_tuned_thresholds_maximise_f1_and_keep_0_5_without_positives():
  rng = np.random.default_rng(1)
  probabilities = rng.integers(0, 20, (80, 3)) / 20
  labels = np.where(rng.random((80, 3)) < probabilities, 1, -1).astype(np.int8)
  labels[:, 2] = -1
  thresholds = scores.tune_thresholds(probabilities, labels)
  assert thresholds[2] == 0.5

  def f1(c, t):
    return au_scores(
      scores.counts_at(probabilities[:, [c]], labels[:, [c]], [t]), (1,)
    )["f1"][0]

  for c in (0, 1):
    best = max(f1(c, t) for t in np.linspace(0, 1, 201))
    assert f1(c, thresholds[c]) == pytest.approx(best)
  np.testing.assert_array_equal(
    scores.counts_at(probabilities, labels, [0.5] * 3).sum(axis=1), [80] * 3
  )
