"""Host-side scores of an evaluation: the metric maths, no rendering.

From the per-AU confusion counts (`confusion`, which
`drml_jax.scoring.metrics` also sums on device): F1 and accuracy per AU, the
constant predictor's score, collapse detection; from the per-example
probabilities, the ROC AUC per AU and the per-AU thresholds tuned for F1;
from the per-example intensities (0-5), how strongly each AU is shown
(`intensity_scores`): ICC(3,1) of prediction and label (`icc`, the
intraclass correlations of Shrout & Fleiss 1979), Pearson r and the mean
absolute error per AU. NumPy (and scikit-learn) only, so the JAX and
PyTorch sides share it. A new score is computed in `au_scores` (or
`intensity_scores`), merged by `evaluation_scores`, written by
`eval_record` and shown by `drml_jax.rendering.tables.score_rows`.
"""

from __future__ import annotations

import json

import numpy as np

from drml_jax.scoring import metrics


def roc_auc(probabilities, labels) -> np.ndarray:
  """(C,) ROC AUC per AU over a split, ties counted half; NaN ("n/a") for an
  AU without both a positive and a negative label.

  probabilities: (N, C); labels: (N, C) in {-1, 0, +1}, 0 left out.
  """
  # Imported here: scikit-learn takes 0.7 s to import, which every process
  # that imports the scores (training, evaluation) would pay at start-up.
  from sklearn.metrics import roc_auc_score  # pylint: disable=import-outside-toplevel

  probabilities, labels = np.asarray(probabilities), np.asarray(labels)
  auc = np.full(labels.shape[1], np.nan)
  for c in range(labels.shape[1]):
    known = labels[:, c] != 0
    positive = labels[known, c] > 0
    if positive.any() and not positive.all():
      auc[c] = roc_auc_score(positive, probabilities[known, c])
  return auc


def counts_at(probabilities, labels, thresholds) -> np.ndarray:
  """(C, 4) confusion counts [tp, fp, tn, fn] with AU c present when its
  probability exceeds thresholds[c] (0.5 for every AU is the protocol's)."""
  predicted = np.asarray(probabilities) > np.asarray(thresholds)[None, :]
  return metrics.confusion(predicted, np.asarray(labels))


def tune_thresholds(probabilities, labels) -> np.ndarray:
  """(C,) per-AU thresholds that maximise each AU's F1 on these examples
  (the validation split's): midway between the probabilities where the
  predictions change, the lowest such one on ties; 0.5 for an AU without a
  positive label."""
  probabilities, labels = np.asarray(probabilities), np.asarray(labels)
  thresholds = np.full(labels.shape[1], 0.5)
  for c in range(labels.shape[1]):
    known = labels[:, c] != 0
    p, positive = probabilities[known, c], labels[known, c] > 0
    if not positive.any():
      continue
    order = np.argsort(-p, kind="stable")
    p, positive = p[order], positive[order]
    last = np.r_[p[1:] != p[:-1], True]  # the end of each run of equal p
    tp = np.cumsum(positive)[last]
    fp = np.cumsum(~positive)[last]
    f1 = 2 * tp / (2 * tp + fp + (positive.sum() - tp))
    k = int(np.argmax(f1))
    values = p[last]
    lower = values[k + 1] if k + 1 < len(values) else 0.0
    thresholds[c] = (values[k] + lower) / 2
  return np.clip(thresholds, 1e-6, 1 - 1e-6)


def _mean(values) -> float:
  values = np.asarray(values, np.float64)
  known = ~np.isnan(values)
  return float(values[known].mean()) if known.any() else float("nan")


def au_scores(counts, aus, auc=None) -> dict:
  """Per-AU F1 and accuracy (fractions), AUC when given, and their means.

  counts: (C, 4) [tp, fp, tn, fn]. F1 = 2TP / (2TP + FP + FN), 0 when that
  denominator is 0 (no positive labelled nor predicted). An AU with no
  labelled example at all (every label ignored) scores NaN and is left out
  of the means. auc: (C,) from `roc_auc` (None and NaN are "n/a", left out
  of the mean AUC).
  """
  counts = np.asarray(counts, dtype=np.int64)
  if counts.shape != (len(aus), 4):
    raise ValueError(
      f"counts of shape {counts.shape} do not match {len(aus)} AUs"
    )
  tp, fp, tn, fn = counts.T
  total = tp + fp + tn + fn
  f1_denominator = 2 * tp + fp + fn
  with np.errstate(invalid="ignore", divide="ignore"):
    f1 = np.where(
      f1_denominator > 0, 2 * tp / np.maximum(f1_denominator, 1), 0.0
    )
    accuracy = (tp + tn) / np.where(total > 0, total, np.nan)
  f1 = np.where(total > 0, f1, np.nan)
  result = {
    "aus": [int(a) for a in aus],
    "f1": f1.tolist(),
    "accuracy": accuracy.tolist(),
    "mean_f1": _mean(f1),
    "mean_accuracy": _mean(accuracy),
    "counts": counts.tolist(),
  }
  if auc is not None:
    auc = np.array([np.nan if a is None else a for a in auc], np.float64)
    result.update(auc=auc.tolist(), mean_auc=_mean(auc))
  return result


INTENSITY_SCORES = ("icc", "pearson", "mae")
INTENSITY_KEYS = INTENSITY_SCORES + tuple(f"mean_{k}" for k in INTENSITY_SCORES)


def icc(ratings) -> dict:
  """The intraclass correlations of Shrout & Fleiss (1979) of an (n targets,
  k judges) array of ratings, from the two-way ANOVA's mean squares.

  {"icc_1_1": ICC(1,1), one-way random (each target rated by its own
  judges); "icc_2_1": ICC(2,1), two-way random, absolute agreement;
  "icc_3_1": ICC(3,1), two-way mixed, consistency (a judge's constant offset
  is not counted against it)}, each of a single judge's rating. NaN where
  undefined: fewer than 2 targets or judges, or a zero denominator.
  """
  x = np.asarray(ratings, np.float64)
  if x.ndim != 2:
    raise ValueError(f"ratings of shape {x.shape}: expected (targets, judges)")
  nan = {"icc_1_1": np.nan, "icc_2_1": np.nan, "icc_3_1": np.nan}
  n, k = x.shape
  if n < 2 or k < 2:
    return nan
  grand = x.mean()
  ss_targets = k * ((x.mean(axis=1) - grand) ** 2).sum()
  ss_judges = n * ((x.mean(axis=0) - grand) ** 2).sum()
  ss_total = ((x - grand) ** 2).sum()
  bms = ss_targets / (n - 1)  # between targets
  wms = (ss_total - ss_targets) / (n * (k - 1))  # within targets
  jms = ss_judges / (k - 1)  # between judges
  ems = (ss_total - ss_targets - ss_judges) / ((n - 1) * (k - 1))  # residual

  def ratio(numerator, denominator):
    return float(numerator / denominator) if denominator != 0 else np.nan

  return {
    "icc_1_1": ratio(bms - wms, bms + (k - 1) * wms),
    "icc_2_1": ratio(bms - ems, bms + (k - 1) * ems + k * (jms - ems) / n),
    "icc_3_1": ratio(bms - ems, bms + (k - 1) * ems),
  }


def intensity_scores(predicted, labels, aus) -> dict:
  """How well each AU's intensity (0-5) is predicted, over its known examples.

  predicted: (N, C) float intensities; labels: (N, C) int, 0..5 known and -1
  unknown (left out). Per AU, lists "icc" (ICC(3,1) with the prediction and
  the label as the two judges, `icc`: the AU-intensity field's standard),
  "pearson" (Pearson r) and "mae" (mean absolute error); each NaN for an AU
  with fewer than 2 known examples, ICC and Pearson NaN too where the
  labels are all equal, and Pearson where the prediction is constant (its
  ICC is then about 0, and counts in the mean). "mean_icc", "mean_pearson",
  "mean_mae": their means over the AUs that are not NaN.
  """
  predicted = np.asarray(predicted, np.float64)
  labels = np.asarray(labels)
  if predicted.shape != labels.shape or labels.shape[1:] != (len(aus),):
    raise ValueError(
      f"intensities of shape {predicted.shape} and labels of shape "
      f"{labels.shape} do not match (N, {len(aus)} AUs)"
    )
  result = {key: [] for key in INTENSITY_SCORES}
  for c in range(len(aus)):
    known = labels[:, c] >= 0
    p, y = predicted[known, c], labels[known, c].astype(np.float64)
    icc_c = pearson_c = mae_c = np.nan
    if known.sum() >= 2:
      mae_c = float(np.abs(p - y).mean())
      if np.ptp(y) > 0:  # exact, unlike std
        # A constant prediction scores its ICC (near 0), not NaN: a model
        # collapsed on an AU must not leave it out of the mean.
        icc_c = icc(np.stack([p, y], axis=1))["icc_3_1"]
        if np.ptp(p) > 0:
          pearson_c = float(np.corrcoef(p, y)[0, 1])
    result["icc"].append(icc_c)
    result["pearson"].append(pearson_c)
    result["mae"].append(mae_c)
  result.update({f"mean_{k}": _mean(result[k]) for k in INTENSITY_SCORES})
  return result


def per_au(values, aus) -> dict:
  """{"<AU>": value} for a JSON record, NaN written as None."""
  return {
    str(a): None if np.isnan(v) else float(v) for a, v in zip(aus, values)
  }


def to_json(scores: dict) -> str:
  """Scores as JSON, NaN written as null."""

  def clean(value):
    if isinstance(value, float) and np.isnan(value):
      return None
    if isinstance(value, list):
      return [clean(v) for v in value]
    return value

  return json.dumps({k: clean(v) for k, v in scores.items()}, indent=2)


def constant_counts(counts) -> np.ndarray:
  """Counts of the constant predictor "every AU present" on the same labels."""
  counts = np.asarray(counts)
  tp, fp, tn, fn = counts.T
  return np.stack(
    [tp + fn, fp + tn, np.zeros_like(tn), np.zeros_like(fn)], axis=-1
  )


def collapse(counts) -> str | None:
  """Names a collapsed model (each AU one answer for the whole split), else None."""
  counts = np.asarray(counts)
  tp, fp, tn, fn = counts.T
  labelled = counts.sum(axis=1) > 0
  present = ((tn + fn) == 0)[labelled]
  absent = ((tp + fp) == 0)[labelled]
  if not labelled.any() or not (present | absent).all():
    return None
  if absent.all():
    return "COLLAPSED: every AU is predicted absent for the whole split"
  if present.all():
    return "COLLAPSED: every AU is predicted present for the whole split"
  return (
    f"COLLAPSED: each AU gets one answer for the whole split "
    f"({present.sum()} always present, {absent.sum()} always absent)"
  )


def evaluation_scores(counts, aus, auc=None, intensity=None) -> dict:
  """`au_scores` with the constant predictor's mean F1 (`constant_mean_f1`,
  `constant_counts`) and the collapse warning (`collapse`, None if none):
  what an evaluation reports. intensity: a dict of `intensity_scores`,
  whose keys are merged in (after those) when given."""
  result = au_scores(counts, aus, auc)
  constant = au_scores(constant_counts(counts), aus)
  result.update(constant_mean_f1=constant["mean_f1"], collapse=collapse(counts))
  if intensity is not None:
    result.update({key: intensity[key] for key in INTENSITY_KEYS})
  return result


def eval_record(result: dict, aus) -> dict:
  """The scores of `evaluation_scores` as a metrics.jsonl record's fields;
  with intensity scores, "mean_icc", "mean_pearson", "mean_mae" (None for
  NaN) and "icc", "pearson", "mae" per AU (`per_au`) after the others."""
  record = {
    "mean_f1": result["mean_f1"],
    "mean_accuracy": result["mean_accuracy"],
    "mean_auc": None if np.isnan(result["mean_auc"]) else result["mean_auc"],
    "constant_mean_f1": result["constant_mean_f1"],
    "f1": per_au(result["f1"], aus),
    "accuracy": per_au(result["accuracy"], aus),
    "auc": per_au(result["auc"], aus),
    "counts": result["counts"],
    "collapse": result["collapse"],
  }
  if "icc" in result:
    record.update(
      {
        f"mean_{key}": None
        if np.isnan(result[f"mean_{key}"])
        else result[f"mean_{key}"]
        for key in INTENSITY_SCORES
      }
    )
    record.update({key: per_au(result[key], aus) for key in INTENSITY_SCORES})
  return record
