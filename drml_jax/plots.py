"""PNG plots of a run from its metrics records: loss curves, per-AU F1 by epoch."""

from __future__ import annotations

import io
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position
from matplotlib.ticker import MaxNLocator  # pylint: disable=wrong-import-position

from drml_jax.report import write_atomic  # pylint: disable=wrong-import-position

LOSS_PLOT = "loss.png"
F1_PLOT = "f1_per_au.png"


def _save(figure, path: str) -> None:
  buffer = io.BytesIO()
  figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
  plt.close(figure)
  write_atomic(path, buffer.getvalue())


def loss_plot(records: list[dict], path: str) -> None:
  """Training loss by step and test loss after each epoch."""
  figure, axes = plt.subplots(figsize=(7, 4))
  for kind, style in (("train", "-"), ("eval", "o-")):
    points = [(r["step"], r["loss"]) for r in records if r["kind"] == kind]
    if points:
      axes.plot(*zip(*points), style, label=f"{'test' if kind == 'eval' else kind} loss")
  axes.set_xlabel("step")
  axes.set_ylabel("loss (summed over AUs)")
  axes.legend()
  axes.grid(alpha=0.3)
  _save(figure, path)


def f1_plot(records: list[dict], path: str) -> None:
  """Test F1 per AU, their mean and the constant predictor's, by epoch."""
  evals = [r for r in records if r["kind"] == "eval"]
  figure, axes = plt.subplots(figsize=(8, 5))
  if evals:
    epochs = [r["epoch"] for r in evals]
    for au in evals[0]["f1"]:
      axes.plot(epochs, [r["f1"][au] for r in evals], alpha=0.6, label=f"AU{au}")
    axes.plot(epochs, [r["mean_f1"] for r in evals], "k-o", linewidth=2, label="mean")
    axes.plot(epochs, [r["constant_mean_f1"] for r in evals], "k--",
              label="constant (all present)")
  axes.set_xlabel("epoch")
  axes.xaxis.set_major_locator(MaxNLocator(integer=True))
  axes.set_ylabel("test F1")
  axes.set_ylim(0, 1)
  axes.legend(ncol=2, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
  axes.grid(alpha=0.3)
  _save(figure, path)


def write_plots(records: list[dict], workdir: str) -> list[str]:
  """Writes both plots into `workdir`; returns their paths."""
  paths = [os.path.join(workdir, LOSS_PLOT), os.path.join(workdir, F1_PLOT)]
  loss_plot(records, paths[0])
  f1_plot(records, paths[1])
  return paths
