"""Markdown rendering of scores: the per-AU table, an evaluation's text,
results.md's published row and sections, folds.md."""

from __future__ import annotations

import json

import numpy as np

from drml_jax.rendering import fold_summary, tables
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
  text, summary = fold_summary.folds_markdown(
    "t", [], folds, {2: "no data"}, aus
  )
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


def _intensity_record(aus=(1, 2, 4)):
  labels = np.array([[0, 1, -1], [2, 3, -1], [5, 4, -1], [1, 1, -1]])
  predicted = np.array([[0.5, 1, 0], [2, 2.5, 0], [4, 4, 0], [1.5, 2, 0]])
  intensity = scores.intensity_scores(predicted, labels, aus)
  result = scores.evaluation_scores(
    np.ones((3, 4), int), aus, [0.5, 0.75, None], intensity=intensity
  )
  return result, scores.eval_record(result, aus)


def test_intensity_rows_only_when_scored():
  aus = (1, 2, 4)
  plain = scores.evaluation_scores(np.ones((3, 4), int), aus, [0.5, 0.75, None])
  header, rows = tables.score_rows(plain)
  assert [row[0] for row in rows] == ["DRML", "DRML AUC"]
  text = tables.evaluation_text(plain)
  assert "ICC" not in text and "MAE" not in text and "Pearson" not in text
  result, _ = _intensity_record(aus)
  header, rows = tables.score_rows(result)
  assert [row[0] for row in rows] == [
    "DRML",
    "DRML AUC",
    "DRML ICC(3,1)",
    "DRML Pearson r",
    "DRML MAE",
  ]
  mae = rows[-1]
  assert mae[1] == f"{result['mae'][0]:.2f}" and mae[3] == "n/a"
  assert mae[4] == f"{result['mean_mae']:.2f}"
  assert rows[2][1] == f"{result['icc'][0]:.2f}"  # not in %
  _, _, lines = tables.evaluation_table(result)
  assert lines[0].endswith(
    f"; mean ICC(3,1) {result['mean_icc']:.2f}, MAE {result['mean_mae']:.2f}"
  )


def test_record_scores_round_trips_intensity():
  aus = (1, 2, 4)
  result, record = _intensity_record(aus)
  record = json.loads(json.dumps(record))
  rebuilt = tables.record_scores(record, aus)
  assert tables.score_rows(rebuilt) == tables.score_rows(result)
  assert tables.record_text(record, aus) == tables.evaluation_text(result)


def test_fold_report_adds_icc_and_mae_rows_only_with_intensity():
  aus = (1, 2, 4)
  _, with_intensity = _intensity_record(aus)
  plain = scores.eval_record(
    scores.evaluation_scores(np.ones((3, 4), int), aus, [0.5, 0.75, None]),
    aus,
  )
  text, summary = fold_summary.folds_markdown(
    "t", [], {1: ("final", plain), 2: ("final", plain)}, {}, aus
  )
  assert "ICC" not in text and "MAE" not in text and "ICC" not in summary
  text, summary = fold_summary.folds_markdown(
    "t",
    [],
    {1: ("final", with_intensity), 2: ("final", with_intensity)},
    {},
    aus,
  )
  mae = with_intensity["mean_mae"]
  assert f"| MAE | {with_intensity['mae']['1']:.2f} ± 0.00 |" in text
  assert f"| {mae:.2f} ± 0.00 |" in text and "| ICC(3,1) |" in text
  assert f"mean MAE {mae:.2f} ± 0.00" in summary


def test_tuned_thresholds_and_results_page_sections_with_intensity():
  aus = (1, 2, 4)
  _, record = _intensity_record(aus)
  record = {
    "epoch": 1,
    "step": 5,
    "loss": 0.1,
    **record,
    "tuned": {
      "thresholds": {"1": 0.4, "2": 0.5, "4": 0.6},
      **{k: record[k] for k in ("f1", "mean_f1")},
    },
  }
  header, rows = tables.tuned_thresholds_table(record, aus)
  assert rows[0][1] == "0.400" and len(rows) == 3
  text = tables.results_markdown("t", [], [("Final", record)], [record], aus)
  assert "| DRML ICC(3,1) |" in text and "| DRML MAE |" in text
