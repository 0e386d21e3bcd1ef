"""F1 and accuracy per AU from confusion counts, and their report formats.

NumPy only, so the JAX and PyTorch sides share it.
"""

from __future__ import annotations

import json

import numpy as np


def au_scores(counts, aus) -> dict:
  """Per-AU F1 and accuracy (fractions) and their means over AUs.

  counts: (C, 4) [tp, fp, tn, fn]. F1 = 2TP / (2TP + FP + FN), 0 when that
  denominator is 0 (no positive labelled nor predicted). An AU with no
  labelled example at all (every label ignored) scores NaN and is left out
  of the means.
  """
  counts = np.asarray(counts, dtype=np.int64)
  if counts.shape != (len(aus), 4):
    raise ValueError(f"counts of shape {counts.shape} do not match {len(aus)} AUs")
  tp, fp, tn, fn = counts.T
  total = tp + fp + tn + fn
  f1_denominator = 2 * tp + fp + fn
  with np.errstate(invalid="ignore", divide="ignore"):
    f1 = np.where(f1_denominator > 0, 2 * tp / np.maximum(f1_denominator, 1), 0.0)
    accuracy = (tp + tn) / np.where(total > 0, total, np.nan)
  f1 = np.where(total > 0, f1, np.nan)
  labelled = total > 0
  return {
      "aus": [int(a) for a in aus],
      "f1": f1.tolist(),
      "accuracy": accuracy.tolist(),
      "mean_f1": float(f1[labelled].mean()) if labelled.any() else float("nan"),
      "mean_accuracy": float(accuracy[labelled].mean()) if labelled.any() else float("nan"),
      "counts": counts.tolist(),
  }


def _cell(f1, accuracy):
  if np.isnan(f1):
    return "n/a"
  return f"{100 * f1:.2f}/{100 * accuracy:.2f}"


def format_table(scores: dict, name: str = "DRML") -> str:
  """A Markdown table of F1/accuracy in %, per AU and mean (SPEC's style)."""
  header = ["model"] + [f"AU{a}" for a in scores["aus"]] + ["mean"]
  cells = [_cell(f, a) for f, a in zip(scores["f1"], scores["accuracy"])]
  row = [name] + cells + [_cell(scores["mean_f1"], scores["mean_accuracy"])]
  return "\n".join([
      "| " + " | ".join(header) + " |",
      "|" + " --- |" * len(header),
      "| " + " | ".join(row) + " |",
  ])


def to_json(scores: dict) -> str:
  """Scores as JSON, NaN written as null."""
  def clean(value):
    if isinstance(value, float) and np.isnan(value):
      return None
    if isinstance(value, list):
      return [clean(v) for v in value]
    return value
  return json.dumps({k: clean(v) for k, v in scores.items()}, indent=2)
