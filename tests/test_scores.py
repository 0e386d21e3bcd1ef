"""Host-side scores: F1/accuracy edge cases, the constant predictor, collapse."""

from __future__ import annotations

import numpy as np
import pytest

from drml_jax.scoring import scores
from drml_jax.scoring.scores import au_scores, format_table, to_json


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
  table = format_table(scores)
  assert (
    "| DRML | 66.67/70.00 | n/a | 0.00/75.00 | 0.00/62.50 | 22.22/69.17 |"
    in table
  )
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
  result, text = scores.evaluation_report(counts, (1, 2))
  assert result["collapse"] and "COLLAPSED" in text
  assert result["constant_mean_f1"] == pytest.approx(
    np.mean([2 * 2 / 10, 2 * 4 / 12])
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
  result, text = scores.evaluation_report(
    np.ones((4, 4), int), (1, 2, 4, 5), auc=auc
  )
  assert result["mean_auc"] == pytest.approx(np.mean(auc[:2]))
  assert "| DRML AUC | " in text and text.count("n/a") == 2
  record = scores.eval_record(result, (1, 2, 4, 5))
  assert record["auc"]["4"] is None and record["auc"]["5"] is None
  assert scores.report_of_record(record, (1, 2, 4, 5))[1] == text


DISFA_PLUS_AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)


def test_results_show_the_published_disfa_plus_row_beside_the_run():
  published = scores.published_row("disfa_plus", DISFA_PLUS_AUS)
  assert published.endswith("| 62.42/93.79 |") and "68.92/90.36" in published
  assert scores.published_row("synthetic", DISFA_PLUS_AUS) is None
  assert scores.published_row("disfa_plus", DISFA_PLUS_AUS[:-1]) is None
  counts = np.tile([3, 1, 4, 2], (12, 1))
  result, _ = scores.evaluation_report(counts, DISFA_PLUS_AUS, auc=[0.5] * 12)
  record = {
    "epoch": 1,
    "step": 5,
    "loss": 0.1,
    **scores.eval_record(result, DISFA_PLUS_AUS),
  }
  text = scores.results_markdown(
    "t", [], [("Final", record)], [record], DISFA_PLUS_AUS, published=published
  )
  section = text.partition("## Published results beside this run")[2]
  assert published in section and "| DRML | 66.67/70.00 |" in section


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


def test_fold_report_means_the_folds_and_names_a_failed_one():
  aus = (1, 2)
  folds = {}
  for fold, f1 in ((1, [0.5, 0.25]), (3, [0.7, 0.35])):
    tp = [int(100 * f) for f in f1]
    counts = np.array([[t, 100 - t, 0, 100 - t] for t in tp])
    result, _ = scores.evaluation_report(counts, aus, auc=[f1[0], None])
    folds[fold] = ("final model", scores.eval_record(result, aus))
  text, summary = scores.folds_markdown("t", [], folds, {2: "no data"}, aus)
  assert "## Fold 1: final model" in text and "## Fold 3: final model" in text
  assert "## Fold 2: failed\n\nno data" in text
  means = [r["mean_f1"] for _, r in folds.values()]
  f1_row = next(line for line in text.splitlines() if line.startswith("| F1 |"))
  assert f1_row.endswith(
    f"| {100 * np.mean(means):.2f} ± {100 * np.std(means, ddof=1):.2f} |"
  )
  assert "| AUC | 60.00 ± 14.14 | n/a |" in text
  assert (
    summary.startswith("t: mean F1 ") and "fold 2 failed (no data)" in summary
  )
