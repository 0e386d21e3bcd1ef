"""PNG figures: a run's loss curves and per-AU F1 by epoch; predicted AUs.

The predictions' figures (`python -m drml_jax.predict --plot`, `--report`):
each AU's probability (and intensity, for a model with the intensity head)
over a video, and a sheet of the face crops of images
with their active AUs. Each figure is drawn into PNG bytes, which the
callers write (atomically) or embed in an HTML page.
"""

from __future__ import annotations

import io
import math
import os

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position
from matplotlib.ticker import MaxNLocator  # pylint: disable=wrong-import-position

from data_pipeline.labels import MAX_INTENSITY  # pylint: disable=wrong-import-position
from drml_jax.store.workdir import write_atomic  # pylint: disable=wrong-import-position

LOSS_PLOT = "loss.png"
F1_PLOT = "f1_per_au.png"


def _png(figure) -> bytes:
  buffer = io.BytesIO()
  figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
  plt.close(figure)
  return buffer.getvalue()


def loss_png(records: list[dict]) -> bytes:
  """Training loss by step and the evaluated split's loss after each epoch."""
  figure, axes = plt.subplots(figsize=(7, 4))
  for kind, style in (("train", "-"), ("eval", "o-")):
    points = [(r["step"], r["loss"]) for r in records if r["kind"] == kind]
    if points:
      split = next(r for r in records if r["kind"] == kind).get("split", "test")
      axes.plot(
        *zip(*points), style, label=f"{split if kind == 'eval' else kind} loss"
      )
  axes.set_xlabel("step")
  axes.set_ylabel("loss (summed over AUs)")
  axes.legend()
  axes.grid(alpha=0.3)
  return _png(figure)


def f1_png(records: list[dict]) -> bytes:
  """F1 per AU on the evaluated split (validation, or test with --selection
  test), their mean and the constant predictor's, by epoch."""
  evals = [r for r in records if r["kind"] == "eval"]
  figure, axes = plt.subplots(figsize=(8, 5))
  if evals:
    epochs = [r["epoch"] for r in evals]
    for au in evals[0]["f1"]:
      axes.plot(
        epochs, [r["f1"][au] for r in evals], alpha=0.6, label=f"AU{au}"
      )
    axes.plot(
      epochs, [r["mean_f1"] for r in evals], "k-o", linewidth=2, label="mean"
    )
    axes.plot(
      epochs,
      [r["constant_mean_f1"] for r in evals],
      "k--",
      label="constant (all present)",
    )
  axes.set_xlabel("epoch")
  axes.xaxis.set_major_locator(MaxNLocator(integer=True))
  axes.set_ylabel(f"{evals[0].get('split', 'test') if evals else 'test'} F1")
  axes.set_ylim(0, 1)
  axes.legend(
    ncol=2, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1)
  )
  axes.grid(alpha=0.3)
  return _png(figure)


def write_run_plots(records: list[dict], workdir: str) -> list[str]:
  """Writes the loss and per-AU F1 plots into `workdir`; returns their paths."""
  paths = [os.path.join(workdir, LOSS_PLOT), os.path.join(workdir, F1_PLOT)]
  write_atomic(paths[0], loss_png(records))
  write_atomic(paths[1], f1_png(records))
  return paths


def au_timeline_png(
  times: np.ndarray,
  probabilities: np.ndarray,
  aus,
  thresholds,
  title: str,
  intensities: np.ndarray | None = None,
) -> bytes:
  """Each AU's probability over a video: (T,) times, (T, faces, AUs) with NaN gaps.

  One panel per AU, one line per face_id (a person followed through the
  video), the AU's threshold dashed. With `intensities` (the same shape, a
  model with the intensity head), each AU's panel has a second beside it:
  its intensity on a 0-5 axis.
  """
  series = [(probabilities, 1.0, "")]
  if intensities is not None:
    series.append((intensities, MAX_INTENSITY, " intensity"))
  columns = 3 * len(series) if len(series) > 1 else 3
  count = len(aus) * len(series)
  rows = math.ceil(count / columns)
  figure, axes = plt.subplots(
    rows,
    columns,
    figsize=(10 if len(series) == 1 else 14, 1.5 * rows + 0.6),
    sharex=True,
    sharey=len(series) == 1,
    squeeze=False,
  )
  for index, panel in enumerate(axes.flat):
    if index >= count:
      panel.set_visible(False)
      continue
    au, kind = divmod(index, len(series))
    values, top, name = series[kind]
    for face in range(values.shape[1]):
      panel.plot(times, values[:, face, au], linewidth=1, label=f"face {face}")
    if kind == 0:
      panel.axhline(thresholds[au], color="k", linestyle="--", linewidth=0.7)
    panel.set_title(f"AU{aus[au]:02d}{name}", fontsize=9, pad=2)
    panel.set_ylim(0, top)
    panel.grid(alpha=0.3)
  for panel in axes[-1]:
    panel.set_xlabel("time (s)")
  if probabilities.shape[1] > 1:
    axes[0, -1].legend(fontsize="x-small", loc="upper right")
  figure.suptitle(title, fontsize=10)
  figure.tight_layout()
  return _png(figure)


def face_sheet_png(crops: list[np.ndarray], captions: list[str]) -> bytes:
  """Face crops in a grid, each with its caption (file, face, active AUs) under it."""
  columns = min(len(crops), 8)
  rows = math.ceil(len(crops) / columns)
  figure, axes = plt.subplots(
    rows, columns, figsize=(1.6 * columns, 2.0 * rows), squeeze=False
  )
  for index, panel in enumerate(axes.flat):
    panel.set_xticks([])
    panel.set_yticks([])
    if index >= len(crops):
      panel.set_visible(False)
      continue
    panel.imshow(crops[index])
    panel.set_xlabel(captions[index], fontsize=6)
  figure.tight_layout()
  return _png(figure)
