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


# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges, and the ICCs
# they publish from it (two decimals).
SHROUT_FLEISS = [
  [9, 2, 5, 8],
  [6, 1, 3, 2],
  [8, 4, 6, 8],
  [7, 1, 2, 6],
  [10, 5, 6, 9],
  [6, 2, 4, 7],
]


def test_icc_matches_shrout_and_fleiss_table_2():
  result = scores.icc(SHROUT_FLEISS)
  published = {"icc_1_1": 0.17, "icc_2_1": 0.29, "icc_3_1": 0.71}
  assert list(result) == list(published)
  for key, value in published.items():
    assert abs(result[key] - value) < 0.005, key


def test_icc_is_nan_where_undefined():
  assert all(np.isnan(v) for v in scores.icc([[1, 2]]).values())  # n < 2
  assert all(np.isnan(v) for v in scores.icc([[3, 3], [3, 3]]).values())


def test_icc_of_agreement_and_of_a_constant_offset():
  y = np.array([0, 1, 2, 3, 5, 4, 1, 0], float)
  same = scores.icc(np.stack([y, y], axis=1))
  assert all(v == pytest.approx(1) for v in same.values())
  offset = scores.icc(np.stack([y + 0.7, y], axis=1))
  assert offset["icc_3_1"] == pytest.approx(1)  # consistency
  assert offset["icc_2_1"] < 0.99  # absolute agreement counts the offset


def _intensity_data():
  rng = np.random.default_rng(2)
  labels = rng.integers(0, 6, (40, 4))
  labels[rng.random((40, 4)) < 0.25] = -1
  labels[:, 2] = -1  # AU with no known label: NaN, left out of the means
  predicted = np.clip(labels + rng.normal(0, 0.8, labels.shape), 0, 5)
  return predicted, labels


def test_intensity_scores_per_au_masked_and_means():
  predicted, labels = _intensity_data()
  aus = (1, 2, 4, 6)
  result = scores.intensity_scores(predicted, labels, aus)
  assert set(result) == {
    "icc",
    "pearson",
    "mae",
    "mean_icc",
    "mean_pearson",
    "mean_mae",
  }
  for c in (0, 1, 3):
    known = labels[:, c] >= 0
    p, y = predicted[known, c], labels[known, c]
    assert result["icc"][c] == pytest.approx(
      scores.icc(np.stack([p, y], axis=1))["icc_3_1"]
    )
    assert result["pearson"][c] == pytest.approx(np.corrcoef(p, y)[0, 1])
    assert result["mae"][c] == pytest.approx(
      sum(abs(a - b) for a, b in zip(p, y)) / len(p)
    )
  assert all(np.isnan(result[k][2]) for k in ("icc", "pearson", "mae"))
  for key in ("icc", "pearson", "mae"):
    assert result[f"mean_{key}"] == pytest.approx(
      np.mean([result[key][c] for c in (0, 1, 3)])
    )
  # A prediction where the label is unknown changes nothing.
  changed = predicted.copy()
  changed[labels == -1] = 5 - changed[labels == -1]
  assert scores.to_json(
    scores.intensity_scores(changed, labels, aus)
  ) == scores.to_json(result)
  # The prediction equal to the labels.
  perfect = scores.intensity_scores(np.maximum(labels, 0), labels, aus)
  assert perfect["icc"][0] == pytest.approx(1) and perfect["mae"][0] == 0


def test_intensity_scores_few_examples_and_constant_values():
  labels = np.array([[2, 3, 1], [-1, 3, 1], [-1, 3, 4]])
  predicted = np.array([[1.0, 2.0, 2.0], [0.0, 4.0, 2.0], [5.0, 1.0, 2.0]])
  result = scores.intensity_scores(predicted, labels, (1, 2, 4))
  assert np.isnan(result["mae"][0])  # one known example
  assert np.isnan(result["icc"][1]) and np.isnan(result["pearson"][1])
  # A constant prediction: no Pearson r, but an ICC (about 0) that counts in
  # the mean, so a collapsed AU cannot raise the mean ICC.
  assert np.isnan(result["pearson"][2])
  assert result["icc"][2] == pytest.approx(0, abs=1e-12)
  assert result["mae"][1] == pytest.approx((1 + 1 + 2) / 3)
  assert result["mean_icc"] == pytest.approx(0, abs=1e-12)
  assert np.isnan(result["mean_pearson"])
  with pytest.raises(ValueError, match="do not match"):
    scores.intensity_scores(predicted, labels, (1, 2))
  with pytest.raises(ValueError, match="do not match"):
    scores.intensity_scores(predicted[:2], labels, (1, 2, 4))


RECORD_KEYS = [
  "mean_f1",
  "mean_accuracy",
  "mean_auc",
  "constant_mean_f1",
  "f1",
  "accuracy",
  "auc",
  "counts",
  "collapse",
]


def test_eval_record_keys_without_and_with_intensity():
  aus = (1, 2, 4, 6)
  counts, auc = np.ones((4, 4), int), [0.5, 0.75, None, 0.6]
  record = scores.eval_record(scores.evaluation_scores(counts, aus, auc), aus)
  assert list(record) == RECORD_KEYS
  intensity = scores.intensity_scores(*_intensity_data(), aus)
  result = scores.evaluation_scores(counts, aus, auc, intensity=intensity)
  record = scores.eval_record(result, aus)
  assert list(record) == RECORD_KEYS + [
    "mean_icc",
    "mean_pearson",
    "mean_mae",
    "icc",
    "pearson",
    "mae",
  ]
  assert (
    record["icc"]["4"] is None and record["mae"]["1"] == intensity["mae"][0]
  )
  assert record["mean_icc"] == intensity["mean_icc"]
  assert json.loads(json.dumps(record)) == record
