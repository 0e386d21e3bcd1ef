"""What an evaluation means: baselines, collapse, the results file."""

from __future__ import annotations

import os
import tempfile

import numpy as np

from drml_jax.scores import au_scores, format_table


def constant_counts(counts) -> np.ndarray:
  """Counts of the constant predictor "every AU present" on the same labels."""
  counts = np.asarray(counts)
  tp, fp, tn, fn = counts.T
  return np.stack([tp + fn, fp + tn, np.zeros_like(tn), np.zeros_like(fn)], axis=-1)


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
  return (f"COLLAPSED: each AU gets one answer for the whole split "
          f"({present.sum()} always present, {absent.sum()} always absent)")


def evaluation_report(counts, aus, name: str = "DRML") -> tuple[dict, str]:
  """(scores, text): the per-AU table with the constant predictor and any collapse."""
  scores = au_scores(counts, aus)
  constant = au_scores(constant_counts(counts), aus)
  table = format_table(scores, name).splitlines()
  table.append(format_table(constant, "constant: all AUs present").splitlines()[-1])
  lines = ["\n".join(table),
           f"mean F1 {100 * scores['mean_f1']:.2f}  (constant predictor "
           f"{100 * constant['mean_f1']:.2f})"]
  warning = collapse(counts)
  if warning:
    lines.append(warning)
  elif scores["mean_f1"] <= constant["mean_f1"]:
    lines.append("no better than the constant predictor (every AU present)")
  scores["constant_mean_f1"] = constant["mean_f1"]
  scores["collapse"] = warning
  return scores, "\n".join(lines)


def write_atomic(path: str, data: str | bytes) -> None:
  """Writes `path` through a temporary file and a rename: never half written."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  mode = "wb" if isinstance(data, bytes) else "w"
  with tempfile.NamedTemporaryFile(mode, dir=directory, delete=False,
                                   prefix=os.path.basename(path) + ".",
                                   suffix=".partial") as f:
    f.write(data)
    partial = f.name
  umask = os.umask(0)
  os.umask(umask)
  os.chmod(partial, 0o666 & ~umask)
  os.replace(partial, path)
