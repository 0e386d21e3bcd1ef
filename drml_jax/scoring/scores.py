"""Host-side scores of an evaluation and their tables.

From the per-AU confusion counts that `drml_jax.scoring.metrics` sums on device:
F1 and accuracy per AU, the constant predictor's score, collapse detection,
the Markdown tables of a run; from the per-example probabilities, the ROC
AUC per AU. NumPy (and scikit-learn) only, so the JAX and PyTorch sides
share it. A new score is computed in `au_scores` and shown by `format_table`.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
from sklearn.metrics import roc_auc_score


def roc_auc(probabilities, labels) -> np.ndarray:
  """(C,) ROC AUC per AU over a split, ties counted half; NaN ("n/a") for an
  AU without both a positive and a negative label.

  probabilities: (N, C); labels: (N, C) in {-1, 0, +1}, 0 left out.
  """
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
  labels = np.asarray(labels)
  known, positive = labels != 0, labels > 0
  count = lambda mask: (mask & known).sum(axis=0)
  return np.stack(
    [
      count(predicted & positive),
      count(predicted & ~positive),
      count(~predicted & ~positive),
      count(~predicted & positive),
    ],
    axis=-1,
  )


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


def _cell(f1, accuracy):
  if np.isnan(f1):
    return "n/a"
  return f"{100 * f1:.2f}/{100 * accuracy:.2f}"


def percent(value) -> str:
  """A fraction in % with two decimals; "n/a" for None or NaN."""
  return "n/a" if value is None or np.isnan(value) else f"{100 * value:.2f}"


def format_table(scores: dict, name: str = "DRML") -> str:
  """A Markdown table of F1/accuracy in %, per AU and mean (the style of
  docs/protocol.md#published-results), and a row of AUC in % when scored."""
  header = ["model"] + [f"AU{a}" for a in scores["aus"]] + ["mean"]
  cells = [_cell(f, a) for f, a in zip(scores["f1"], scores["accuracy"])]
  rows = [[name] + cells + [_cell(scores["mean_f1"], scores["mean_accuracy"])]]
  if "auc" in scores:
    rows.append(
      [f"{name} AUC"]
      + [percent(a) for a in scores["auc"] + [scores["mean_auc"]]]
    )
  return "\n".join(
    [
      "| " + " | ".join(header) + " |",
      "|" + " --- |" * len(header),
      *("| " + " | ".join(row) + " |" for row in rows),
    ]
  )


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


def evaluation_report(
  counts, aus, name: str = "DRML", auc=None
) -> tuple[dict, str]:
  """(scores, text): the per-AU table (with AUC when given) with the constant
  predictor and any collapse."""
  scores = au_scores(counts, aus, auc)
  constant = au_scores(constant_counts(counts), aus)
  table = format_table(scores, name).splitlines()
  table.append(
    format_table(constant, "constant: all AUs present").splitlines()[-1]
  )
  lines = [
    "\n".join(table),
    f"mean F1 {100 * scores['mean_f1']:.2f}  (constant predictor "
    f"{100 * constant['mean_f1']:.2f})"
    + (f"; mean AUC {percent(scores['mean_auc'])}" if auc is not None else ""),
  ]
  warning = collapse(counts)
  if warning:
    lines.append(warning)
  elif scores["mean_f1"] <= constant["mean_f1"]:
    lines.append("no better than the constant predictor (every AU present)")
  scores["constant_mean_f1"] = constant["mean_f1"]
  scores["collapse"] = warning
  return scores, "\n".join(lines)


PROTOCOL_DOC = pathlib.Path(__file__).resolve().parents[1] / "docs/protocol.md"
_PUBLISHED = {
  # dataset: (the section of PROTOCOL_DOC, the row's name in its table)
  "disfa_plus": ("### Reproduction report, DISFA+", "labels {-1,1}"),
}


def published_row(dataset: str, aus) -> str | None:
  """The published F1/accuracy row for `dataset` from docs/protocol.md, as a
  row of `format_table`'s tables; None when the docs give none for these AUs."""
  if dataset not in _PUBLISHED or not PROTOCOL_DOC.exists():
    return None
  section, name = _PUBLISHED[dataset]
  lines = PROTOCOL_DOC.read_text().partition(section)[2].splitlines()
  header = next((line for line in lines if line.startswith("| model |")), "")
  row = next((line for line in lines if line.startswith(f"| {name} |")), None)
  expected = "| model | " + " | ".join(f"AU{a}" for a in aus) + " | mean |"
  if row is None or header != expected:
    return None
  return row.replace(f"| {name} |", f"| published: {section[4:]} ({name}) |")


def eval_record(result: dict, aus) -> dict:
  """The scores of `evaluation_report` as a metrics.jsonl record's fields."""
  return {
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


def report_of_record(record: dict, aus, name: str = "DRML") -> tuple[dict, str]:
  """`evaluation_report` of a metrics.jsonl evaluation record."""
  auc = record.get("auc")
  return evaluation_report(
    record["counts"],
    aus,
    name,
    None if auc is None else [auc[str(a)] for a in aus],
  )


def results_markdown(
  title: str,
  notes: list[str],
  sections: list[tuple[str, dict]],
  evals: list[dict],
  aus,
  *,
  split: str = "test",
  published: str | None = None,
  extra: list[str] = (),
) -> str:
  """results.md: a table per (heading, evaluation record) of `sections`, the
  `published` row (`published_row`) beside the first one, the `extra` lines,
  then one line per epoch's evaluation on `split`. `notes` are the lines
  under the title."""
  lines = [f"# {title}", "", *notes, ""]
  for heading, record in sections:
    lines += [f"## {heading}", "", report_of_record(record, aus)[1], ""]
  if published:
    table = report_of_record(sections[0][1], aus)[1].splitlines()
    lines += [
      "## Published results beside this run",
      "",
      (
        "F1/accuracy in % (docs/protocol.md#published-results); this run's "
        f"row is the first table's ({sections[0][0]})."
      ),
      "",
      *table[:2],
      published,
      table[2],
      "",
    ]
  lines += [
    *extra,
    f"## By epoch, on the {split} split",
    "",
    f"| epoch | step | {split} loss | mean F1 | mean accuracy | mean AUC | "
    "constant F1 |",
    "| --- | --- | --- | --- | --- | --- | --- |",
  ]
  for r in evals:
    lines.append(
      f"| {r['epoch']} | {r['step']} | {r['loss']:.4f} | {100 * r['mean_f1']:.2f} | "
      f"{100 * r['mean_accuracy']:.2f} | {percent(r.get('mean_auc'))} | "
      f"{100 * r['constant_mean_f1']:.2f} |"
      + (f" {r['collapse']}" if r["collapse"] else "")
    )
  return "\n".join(lines) + "\n"


FOLD_METRICS = (("F1", "f1"), ("AUC", "auc"), ("accuracy", "accuracy"))


def tuned_thresholds_markdown(test_record: dict, aus) -> list[str]:
  """results.md's section on a test record's per-AU thresholds tuned on the
  validation split, beside its F1 at the protocol's 0.5."""
  tuned, at_half = test_record["tuned"], test_record
  aus = [str(a) for a in aus]
  row = lambda name, cells, mean="": (
    f"| {name} | " + " | ".join(cells) + f" | {mean} |"
  )
  f1_row = lambda name, record: row(
    name,
    [percent(record["f1"][a]) for a in aus],
    percent(record["mean_f1"]),
  )
  return [
    "## Per-AU thresholds tuned on the validation split",
    "",
    "The validation-best model with each AU's threshold chosen for F1 on the "
    "validation split, beside the protocol's 0.5 (the tables above). F1 in %.",
    "",
    row("", [f"AU{a}" for a in aus], "mean"),
    "|" + " --- |" * (len(aus) + 2),
    row("threshold", [f"{tuned['thresholds'][a]:.3f}" for a in aus]),
    f1_row("test F1, tuned", tuned),
    f1_row("test F1, 0.5", at_half),
    "",
  ]


def _mean_std(values) -> str:
  """`mean ± sd` in % of the known values (sample sd), "n/a" if none."""
  values = np.array([np.nan if v is None else v for v in values], np.float64)
  values = values[~np.isnan(values)]
  if not len(values):
    return "n/a"
  sd = values.std(ddof=1) if len(values) > 1 else 0.0
  return f"{100 * values.mean():.2f} ± {100 * sd:.2f}"


def folds_markdown(
  title: str, notes: list[str], folds: dict, failed: dict, aus
) -> tuple[str, str]:
  """(folds.md, a one-line summary): each fold's table of its reported
  evaluation record (`folds`: {fold: (heading, record)}), then the mean ±
  standard deviation over folds of F1, AUC and accuracy per AU and of the
  per-fold means; `failed` is {fold: reason}."""
  lines = [f"# {title}", "", *notes, ""]
  for fold, (heading, record) in folds.items():
    lines += [
      f"## Fold {fold}: {heading}",
      "",
      report_of_record(record, aus)[1],
      "",
    ]
  for fold, reason in failed.items():
    lines += [f"## Fold {fold}: failed", "", reason, ""]
  records = [record for _, record in folds.values()]
  summary = f"{title}: every fold failed" if not records else ""
  if records:
    lines += [
      f"## Mean ± standard deviation over folds {', '.join(map(str, folds))}",
      "",
      "Mean and sample standard deviation over the folds, in %; the mean "
      "column is taken over each fold's mean over AUs.",
      "",
      "| | " + " | ".join(f"AU{a}" for a in aus) + " | mean |",
      "|" + " --- |" * (len(aus) + 2),
    ]
    means = {}
    for name, key in FOLD_METRICS:
      cells = [_mean_std([r[key][str(a)] for r in records]) for a in aus]
      means[name] = _mean_std([r[f"mean_{key}"] for r in records])
      lines.append(f"| {name} | " + " | ".join(cells) + f" | {means[name]} |")
    lines.append("")
    summary = f"{title}: " + ", ".join(
      f"mean {name} {value}" for name, value in means.items()
    )
  if failed:
    summary += "; " + "; ".join(
      f"fold {fold} failed ({reason})" for fold, reason in failed.items()
    )
  return "\n".join(lines) + "\n", summary
