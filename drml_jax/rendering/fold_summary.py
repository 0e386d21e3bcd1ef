"""folds.md: each fold's reported table, then per AU the mean and sample
standard deviation over the folds (`folds_markdown`)."""

from __future__ import annotations

import numpy as np

from drml_jax.rendering import tables

FOLD_METRICS = (("F1", "f1"), ("AUC", "auc"), ("accuracy", "accuracy"))
# Shown when the folds' records have intensity scores; as they are, not in %.
FOLD_INTENSITY_METRICS = (("ICC(3,1)", "icc"), ("MAE", "mae"))


def _mean_std(values, scale: float = 100) -> str:
  """`mean ± sd` of the known values (sample sd) times `scale` (in % by
  default), "n/a" if none."""
  values = np.array([np.nan if v is None else v for v in values], np.float64)
  values = values[~np.isnan(values)]
  if not len(values):
    return "n/a"
  sd = values.std(ddof=1) if len(values) > 1 else 0.0
  return f"{scale * values.mean():.2f} ± {scale * sd:.2f}"


def folds_markdown(
  title: str, notes: list[str], folds: dict, failed: dict, aus
) -> tuple[str, str]:
  """(folds.md, a one-line summary): each fold's table of its reported
  evaluation record (`folds`: {fold: (heading, record)}), then the mean ±
  standard deviation over folds of F1, AUC and accuracy (and ICC(3,1) and
  MAE when the records have intensity scores; a record without them is
  left out of those rows) per AU and of the per-fold means; `failed` is
  {fold: reason}."""
  lines = [f"# {title}", "", *notes, ""]
  for fold, (heading, record) in folds.items():
    lines += [
      f"## Fold {fold}: {heading}",
      "",
      tables.record_text(record, aus),
      "",
    ]
  for fold, reason in failed.items():
    lines += [f"## Fold {fold}: failed", "", reason, ""]
  records = [record for _, record in folds.values()]
  summary = f"{title}: every fold failed" if not records else ""
  if records:
    intensity = any("icc" in r for r in records)
    lines += [
      f"## Mean ± standard deviation over folds {', '.join(map(str, folds))}",
      "",
      "Mean and sample standard deviation over the folds, in %; the mean "
      "column is taken over each fold's mean over AUs."
      + (
        " ICC(3,1) and MAE of the intensities (0-5) as they are, not in %."
        if intensity
        else ""
      ),
      "",
      "| | " + " | ".join(f"AU{a}" for a in aus) + " | mean |",
      "|" + " --- |" * (len(aus) + 2),
    ]
    means = {}
    metrics = [(name, key, 100) for name, key in FOLD_METRICS]
    if intensity:
      metrics += [(name, key, 1) for name, key in FOLD_INTENSITY_METRICS]
    for name, key, scale in metrics:
      cells = [
        _mean_std([r.get(key, {}).get(str(a)) for r in records], scale)
        for a in aus
      ]
      means[name] = _mean_std([r.get(f"mean_{key}") for r in records], scale)
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
