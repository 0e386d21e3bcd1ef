"""Markdown rendering of scores: the per-AU table, an evaluation's text,
results.md's published row and sections, folds.md."""

from __future__ import annotations

import numpy as np

from drml_jax.rendering import tables
from drml_jax.scoring import scores

DISFA_PLUS_AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)


def _report(counts, aus, auc=None):
  result = scores.evaluation_scores(counts, aus, auc)
  return result, tables.evaluation_text(result)


def test_table_of_the_edge_cases():
  counts = np.array([[3, 1, 4, 2], [0, 0, 0, 0], [0, 2, 6, 0], [0, 0, 5, 3]])
  table = tables.format_table(scores.au_scores(counts, (1, 2, 4, 5)))
  assert (
    "| DRML | 66.67/70.00 | n/a | 0.00/75.00 | 0.00/62.50 | 22.22/69.17 |"
    in table
  )
  assert tables.percent(None) == tables.percent(float("nan")) == "n/a"


def test_evaluation_text_names_the_constant_predictor_and_a_collapse():
  counts = np.array([[0, 0, 6, 2], [0, 0, 4, 4]])  # everything predicted absent
  _, text = _report(counts, (1, 2))
  assert "COLLAPSED" in text and "| constant: all AUs present |" in text
  assert "mean AUC" not in text
  _, text = _report([[1, 3, 0, 1], [2, 6, 0, 0]], (1, 2))
  assert text.endswith(
    "no better than the constant predictor (every AU present)"
  )


def test_record_text_equals_the_evaluation_text():
  auc = [0.75, 0.5, None, float("nan")]
  result, text = _report(np.ones((4, 4), int), (1, 2, 4, 5), auc)
  assert "| DRML AUC | " in text and text.count("n/a") == 2
  record = scores.eval_record(result, (1, 2, 4, 5))
  assert tables.record_text(record, (1, 2, 4, 5)) == text


def test_results_show_the_published_disfa_plus_row_beside_the_run():
  published = tables.published_line("disfa_plus", DISFA_PLUS_AUS)
  assert published == (
    "| published: Reproduction report, DISFA+ (labels {-1,1}) | 68.92/90.36 | "
    "72.59/92.72 | 60.95/92.70 | 64.91/84.80 | 69.52/92.71 | 62.61/96.70 | "
    "85.82/96.79 | 43.78/95.61 | 25.99/94.09 | 22.48/96.91 | 94.92/97.88 | "
    "76.50/94.14 | 62.42/93.79 |"
  )
  assert tables.published_line("synthetic", DISFA_PLUS_AUS) is None
  assert tables.published_line("disfa_plus", DISFA_PLUS_AUS[:-1]) is None
  counts = np.tile([3, 1, 4, 2], (12, 1))
  result, _ = _report(counts, DISFA_PLUS_AUS, auc=[0.5] * 12)
  record = {
    "epoch": 1,
    "step": 5,
    "loss": 0.1,
    **scores.eval_record(result, DISFA_PLUS_AUS),
  }
  text = tables.results_markdown(
    "t", [], [("Final", record)], [record], DISFA_PLUS_AUS, published=published
  )
  section = text.partition("## Published results beside this run")[2]
  assert published in section and "| DRML | 66.67/70.00 |" in section


def test_sections_put_the_reported_model_first():
  evals = [
    {"epoch": e, "step": 10 * e, "mean_f1": f1}
    for e, f1 in ((1, 0.3), (2, 0.5), (3, 0.4))
  ]
  (final, record), (best, other) = tables.sections(evals, {})
  assert final.startswith("Final model (epoch 3") and record is evals[2]
  assert (
    best.startswith("Best on the test split (epoch 2") and other is evals[1]
  )
  tests = {"best": evals[1], "final": evals[2]}
  (heading, record), _ = tables.sections(evals, tests)
  assert heading.startswith("Validation-best") and record is evals[1]


def test_fold_report_means_the_folds_and_names_a_failed_one():
  aus = (1, 2)
  folds = {}
  for fold, f1 in ((1, [0.5, 0.25]), (3, [0.7, 0.35])):
    tp = [int(100 * f) for f in f1]
    counts = np.array([[t, 100 - t, 0, 100 - t] for t in tp])
    result, _ = _report(counts, aus, auc=[f1[0], None])
    folds[fold] = ("final model", scores.eval_record(result, aus))
  text, summary = tables.folds_markdown("t", [], folds, {2: "no data"}, aus)
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
