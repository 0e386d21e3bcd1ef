"""A training work directory as one self-contained HTML page, report.html.

  run_page.write(workdir)                  # ValueError or OSError, one line
  run_page.write_after_training(workdir)   # a failure is logged, not raised

The page (templates/run.html) shows what the directory holds, finished or
not: the reported model's test scores per AU beside the constant
predictor's (and the published row, `tables.published_cells`), with the
intensity rows (ICC(3,1), Pearson r, MAE) when the model scores them, how its
epoch was chosen, the per-AU thresholds, the loss and F1 curves
(`plots`), each model's per-AU table and the table by epoch (`tables`, as
results.md has them), and the config. A run in progress, or interrupted,
shows the evaluations it has logged so far.
"""

from __future__ import annotations

import datetime
import logging
import os

from data_pipeline import errors
from drml_jax.rendering import html, plots, tables
from drml_jax.store import saved_run, workdir

logger = logging.getLogger(__name__)

SPLITS = {"val": "validation", "test": "test"}


def check_workdir(run_dir: str) -> None:
  """Raises in one line unless `run_dir` is a training run's folder."""
  if not os.path.isdir(run_dir):
    raise FileNotFoundError(
      f"{run_dir} "
      + ("is a file" if os.path.exists(run_dir) else "does not exist")
      + ": pass a drml_jax.train work directory"
    )
  if not os.path.exists(os.path.join(run_dir, workdir.CONFIG_FILE)):
    folds = sorted(
      name
      for name in os.listdir(run_dir)
      if name.startswith("fold")
      and os.path.exists(os.path.join(run_dir, name, workdir.CONFIG_FILE))
    )
    if folds:
      raise ValueError(
        f"{run_dir} holds the runs of --fold all: pass one of its folds, "
        f"e.g. {os.path.join(run_dir, folds[0])}"
      )
  saved_run.read_config(run_dir)  # not a work directory: one line


def _score_table(record: dict, aus, published=None) -> dict:
  """A record's per-AU table (`tables.evaluation_table`) and its lines."""
  header, rows, lines = tables.evaluation_table(
    tables.record_scores(record, aus)
  )
  if published:
    rows.append(published)
  return {"header": header, "rows": rows, "lines": lines}


def _sections(evals, tests, finished) -> list[tuple[str, dict]]:
  """(heading, record) of the models to show, the reported one first."""
  if finished or {"best", "final"} <= tests.keys():
    return tables.sections(evals, tests if "best" in tests else {})
  latest, best = evals[-1], max(evals, key=lambda r: r["mean_f1"])
  split = SPLITS.get(latest.get("split"), "test")
  return [
    (
      f"Latest evaluation (epoch {latest['epoch']}, step {latest['step']}) "
      f"on the {split} split",
      latest,
    ),
    (
      f"Best so far on the {split} split (epoch {best['epoch']}, step "
      f"{best['step']})",
      best,
    ),
  ]


def _choice(config, evals, tests, finished) -> str:
  """How the reported model's epoch was chosen, in a sentence or two."""
  best = max(evals, key=lambda r: r["mean_f1"])
  if "best" in tests:
    return (
      "Validation-best: after each epoch the model was scored on the "
      "validation split (held-out training subjects) and the epoch of the "
      f"best mean F1 kept: epoch {tests['best']['epoch']} (step "
      f"{tests['best']['step']}) of {config.num_epochs}. The test split "
      "scored only that model and the final one."
    )
  if config.selection == "test" and finished:
    return (
      "--selection test, the seed's practice: the test split was scored "
      "after every epoch. The reported model is the final one (epoch "
      f"{evals[-1]['epoch']}); the best epoch on the test split (epoch "
      f"{best['epoch']}) is shown beside it, a choice made on the data it "
      "is scored on."
    )
  split = SPLITS.get(best.get("split"), "test")
  return (
    f"Not chosen yet: {len(evals)} of {config.num_epochs} epochs evaluated "
    f"on the {split} split; the best so far is epoch {best['epoch']} "
    f"(mean F1 {tables.percent(best['mean_f1'])})."
  )


def _thresholds(evals, tests, aus) -> tuple[dict | None, str]:
  """(table, note) of the per-AU thresholds the run chose."""
  if "best" in tests and "tuned" in tests["best"]:
    header, rows = tables.tuned_thresholds_table(tests["best"], aus)
    return {"header": header, "rows": rows, "lines": []}, (
      "Each AU's threshold, tuned for F1 on the validation split with the "
      "validation-best model (stored with its checkpoint; predict uses "
      "them), and its test F1 in % at it and at the protocol's 0.5."
    )
  tuned = [r for r in evals if "thresholds" in r]
  if tuned:
    best = max(tuned, key=lambda r: r["mean_f1"])
    cells = [f"{best['thresholds'][str(a)]:.3f}" for a in aus]
    table = {
      "header": ["", *(f"AU{a}" for a in aus)],
      "rows": [["threshold", *cells]],
      "lines": [],
    }
    return table, (
      "Tuned for F1 on the validation split at the best epoch so far "
      f"(epoch {best['epoch']})."
    )
  return None, (
    "0.5 for every AU, the protocol's: thresholds are tuned on a "
    "validation split, which this run does not hold out."
  )


def _config_facts(config) -> list[tuple[str, str]]:
  data, model = config.data, config.model
  return [
    (
      "dataset",
      data.dataset
      + (f" ({data.dataset_config})" if data.dataset_config else "")
      + (f", fold {data.fold}" if data.fold else ""),
    ),
    ("epochs", str(config.num_epochs)),
    ("batch size", str(config.batch_size)),
    ("learning rate", str(config.optim.learning_rate)),
    ("init", str(model.init)),
    (
      "region layer",
      f"on, grid {'x'.join(map(str, model.grid))}"
      if model.region_layer
      else "off",
    ),
    (
      "preprocessing",
      f"{data.mode}, {data.normalization}, "
      f"{model.input_size}x{model.input_size} input",
    ),
    ("model selection", str(config.selection)),
  ]


def page(run_dir: str) -> str:
  """The HTML page of the training run in `run_dir` (see the module)."""
  check_workdir(run_dir)
  config = saved_run.read_config(run_dir)
  records = workdir.read_records(run_dir)
  evals = [r for r in records if r["kind"] == "eval"]
  tests = {r["checkpoint"]: r for r in records if r["kind"] == "test"}
  finished = saved_run.is_finished(run_dir) and bool(evals)
  aus = [int(a) for a in evals[0]["f1"]] if evals else []
  status = (
    "finished"
    if finished
    else "not finished: a run in progress, or one interrupted (rerun its "
    "command to resume); this page shows what it has logged so far"
  )
  title = f"DRML on {config.data.dataset}" + (
    f" fold {config.data.fold}" if config.data.fold else ""
  )
  context = {
    "title": title,
    "subtitle": f"{run_dir}: {status}",
    "status": status,
    "finished": finished,
    "footer": "Made from the work directory's files on "
    + datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    + f"; python -m drml_jax.report {run_dir} makes it again.",
    "config_facts": _config_facts(config),
    "config_json": config.to_json(indent=2),
    "train_steps": sum(r["kind"] == "train" for r in records),
    "evals": len(evals),
    "loss_uri": html.png_uri(plots.loss_png(records)) if records else None,
    "f1_uri": html.png_uri(plots.f1_png(records)) if evals else None,
  }
  sections = [("results", "Results"), ("curves", "Curves")]
  if evals:
    shown = _sections(evals, tests, finished)
    reported = shown[0][1]
    published = tables.published_cells(config.data.dataset, aus)
    split = SPLITS.get(evals[-1].get("split"), "test")
    context.update(
      reported_heading=shown[0][0],
      reported=_score_table(reported, aus, published),
      stats=[
        (tables.percent(reported["mean_f1"]), "mean F1 (%)"),
        (tables.percent(reported.get("mean_auc")), "mean AUC (%)"),
        (tables.percent(reported["constant_mean_f1"]), "constant F1 (%)"),
        *(
          [(tables.decimal(reported.get("mean_icc")), "mean ICC(3,1)")]
          if "icc" in reported
          else []
        ),
        (reported["epoch"], "epoch"),
      ],
      intensity="icc" in reported,
      choice=_choice(config, evals, tests, finished),
      tables=[(h, _score_table(r, aus)) for h, r in shown[1:]],
      epochs={
        "header": ["epoch", "step", f"{split} loss", "mean F1"]
        + ["mean accuracy", "mean AUC", "constant F1", "note"],
        "rows": [
          cells + [r["collapse"] or ""]
          for r, cells in zip(evals, tables.epoch_rows(evals))
        ],
        "lines": [],
      },
    )
    context["thresholds"], context["thresholds_note"] = _thresholds(
      evals, tests, aus
    )
    sections.append(("tables", "Per-AU tables"))
  sections.append(("config", "Config"))
  return html.render("run.html", sections=sections, **context)


def write(run_dir: str, out: str | None = None) -> str:
  """Writes the page of `run_dir` to `out` (default <run_dir>/report.html)
  atomically; returns its path."""
  out = out or os.path.join(run_dir, workdir.REPORT_FILE)
  text = page(run_dir)
  html.write(out, text)
  return out


def write_after_training(run_dir: str) -> str | None:
  """`write` at a run's end: a page that cannot be drawn is logged in one
  line and the run goes on (its results are already written)."""
  try:
    return write(run_dir)
  except Exception as error:  # pylint: disable=broad-except
    logger.warning(
      "%s not written: %s", workdir.REPORT_FILE, errors.first_line(error)
    )
    return None
