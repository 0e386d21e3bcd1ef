"""Markdown of scores: an evaluation's per-AU table and results.md.

Renders what `drml_jax.scoring.scores` computes: F1/accuracy in % per AU and
their mean (the style of docs/protocol.md#published-results), the AUC row,
the intensity rows when scored (ICC(3,1), Pearson r and MAE, as they are,
not in %), the constant predictor's row, and any collapse. `results_page`
renders a training run's results.md from plain inputs (the config, the
evaluation and test records, the split sizes, the runtime), with the
published row (`drml_jax.scoring.published`) beside the reported model
(folds.md: `drml_jax.rendering.fold_summary`). The tables are built as (header, rows)
of text cells (`score_rows`, `evaluation_table`, `tuned_thresholds_table`,
`epoch_rows`), which the run's HTML page (`drml_jax.rendering.run_page`)
shows too.
"""

from __future__ import annotations

import numpy as np

from drml_jax import configs
from drml_jax.scoring import published as published_results
from drml_jax.scoring import scores as scoring
from drml_jax.store import workdir


def _cell(f1, accuracy):
  if np.isnan(f1):
    return "n/a"
  return f"{100 * f1:.2f}/{100 * accuracy:.2f}"


def percent(value) -> str:
  """A fraction in % with two decimals; "n/a" for None or NaN."""
  return "n/a" if value is None or np.isnan(value) else f"{100 * value:.2f}"


def decimal(value) -> str:
  """A value as it is with two decimals; "n/a" for None or NaN."""
  return "n/a" if value is None or np.isnan(value) else f"{value:.2f}"


INTENSITY_ROWS = (("ICC(3,1)", "icc"), ("Pearson r", "pearson"), ("MAE", "mae"))


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
  """A Markdown table of text cells."""
  return "\n".join(
    [
      "| " + " | ".join(header) + " |",
      "|" + " --- |" * len(header),
      *("| " + " | ".join(row) + " |" for row in rows),
    ]
  )


def score_rows(
  scores: dict, name: str = "DRML"
) -> tuple[list[str], list[list[str]]]:
  """(header, rows) of F1/accuracy in %, per AU and mean (the style of
  docs/protocol.md#published-results), a row of AUC in % when scored, and
  rows of ICC(3,1), Pearson r and MAE of the intensities (two decimals) when
  scored."""
  header = ["model"] + [f"AU{a}" for a in scores["aus"]] + ["mean"]
  cells = [_cell(f, a) for f, a in zip(scores["f1"], scores["accuracy"])]
  rows = [[name] + cells + [_cell(scores["mean_f1"], scores["mean_accuracy"])]]
  if "auc" in scores:
    rows.append(
      [f"{name} AUC"]
      + [percent(a) for a in scores["auc"] + [scores["mean_auc"]]]
    )
  if "icc" in scores:
    for label, key in INTENSITY_ROWS:
      rows.append(
        [f"{name} {label}"]
        + [decimal(v) for v in [*scores[key], scores[f"mean_{key}"]]]
      )
  return header, rows


def format_table(scores: dict, name: str = "DRML") -> str:
  """`score_rows` as a Markdown table."""
  return markdown_table(*score_rows(scores, name))


def evaluation_table(
  result: dict, name: str = "DRML"
) -> tuple[list[str], list[list[str]], list[str]]:
  """(header, rows, lines) of `scoring.evaluation_scores`' result: its
  `score_rows` (with AUC and intensity when scored) and the constant
  predictor's row; the lines give the mean F1s (and AUC, ICC(3,1), MAE when
  scored) and any collapse."""
  constant = scoring.au_scores(
    scoring.constant_counts(result["counts"]), result["aus"]
  )
  header, rows = score_rows(result, name)
  rows.append(score_rows(constant, "constant: all AUs present")[1][-1])
  lines = [
    f"mean F1 {100 * result['mean_f1']:.2f}  (constant predictor "
    f"{100 * constant['mean_f1']:.2f})"
    + (f"; mean AUC {percent(result['mean_auc'])}" if "auc" in result else "")
    + (
      f"; mean ICC(3,1) {decimal(result['mean_icc'])}, "
      f"MAE {decimal(result['mean_mae'])}"
      if "icc" in result
      else ""
    ),
  ]
  if result["collapse"]:
    lines.append(result["collapse"])
  elif result["mean_f1"] <= result["constant_mean_f1"]:
    lines.append("no better than the constant predictor (every AU present)")
  return header, rows, lines


def evaluation_text(result: dict, name: str = "DRML") -> str:
  """`evaluation_table` as a Markdown table and its lines."""
  header, rows, lines = evaluation_table(result, name)
  return "\n".join([markdown_table(header, rows), *lines])


def _nan(value) -> float:
  return float("nan") if value is None else value


def record_scores(record: dict, aus) -> dict:
  """`scoring.evaluation_scores` of a metrics.jsonl evaluation record, with
  its intensity scores when it has them ("icc", "pearson", "mae" per AU and
  their means, None for NaN)."""
  auc = record.get("auc")
  intensity = None
  if "icc" in record:
    intensity = {}
    for key in scoring.INTENSITY_SCORES:
      values = [_nan(record[key][str(a)]) for a in aus]
      mean = f"mean_{key}"
      intensity[key] = values
      intensity[mean] = _nan(record.get(mean))
  return scoring.evaluation_scores(
    record["counts"],
    aus,
    None if auc is None else [auc[str(a)] for a in aus],
    intensity=intensity,
  )


def record_text(record: dict, aus, name: str = "DRML") -> str:
  """`evaluation_text` of a metrics.jsonl evaluation record."""
  return evaluation_text(record_scores(record, aus), name)


def published_cells(dataset: str, aus) -> list[str] | None:
  """The published F1/accuracy row for a run on `dataset` with these AUs
  (`drml_jax.scoring.published`), as cells of `score_rows`' rows; None when
  none is published for them."""
  row = published_results.published_row(dataset, aus)
  if row is None:
    return None
  cells = [f"{f1:.2f}/{accuracy:.2f}" for f1, accuracy in row.scores.values()]
  cells.append(f"{row.mean[0]:.2f}/{row.mean[1]:.2f}")
  return [f"published: {row.table} ({row.name})", *cells]


def published_line(dataset: str, aus) -> str | None:
  """`published_cells` as a row of `format_table`'s tables."""
  cells = published_cells(dataset, aus)
  return None if cells is None else "| " + " | ".join(cells) + " |"


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
  `published` row (`published_line`) beside the first one, the `extra` lines,
  then one line per epoch's evaluation on `split`. `notes` are the lines
  under the title."""
  lines = [f"# {title}", "", *notes, ""]
  for heading, record in sections:
    lines += [f"## {heading}", "", record_text(record, aus), ""]
  if published:
    table = record_text(sections[0][1], aus).splitlines()
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
  for r, cells in zip(evals, epoch_rows(evals)):
    lines.append(
      "| "
      + " | ".join(cells)
      + " |"
      + (f" {r['collapse']}" if r["collapse"] else "")
    )
  return "\n".join(lines) + "\n"


def epoch_rows(evals: list[dict]) -> list[list[str]]:
  """Each evaluation record's epoch, step, loss, mean F1, accuracy and AUC in
  %, and the constant predictor's mean F1 (results.md's by-epoch table)."""
  return [
    [
      str(r["epoch"]),
      str(r["step"]),
      f"{r['loss']:.4f}",
      f"{100 * r['mean_f1']:.2f}",
      f"{100 * r['mean_accuracy']:.2f}",
      percent(r.get("mean_auc")),
      f"{100 * r['constant_mean_f1']:.2f}",
    ]
    for r in evals
  ]


def tuned_thresholds_table(
  test_record: dict, aus
) -> tuple[list[str], list[list[str]]]:
  """(header, rows) of a test record's per-AU thresholds tuned on the
  validation split, and its test F1 in % at them and at the protocol's 0.5."""
  tuned, at_half = test_record["tuned"], test_record
  aus = [str(a) for a in aus]

  def f1_row(name, record):
    return (
      [name]
      + [percent(record["f1"][a]) for a in aus]
      + [percent(record["mean_f1"])]
    )

  return ["", *(f"AU{a}" for a in aus), "mean"], [
    ["threshold", *(f"{tuned['thresholds'][a]:.3f}" for a in aus), ""],
    f1_row("test F1, tuned", tuned),
    f1_row("test F1, 0.5", at_half),
  ]


def tuned_thresholds_markdown(test_record: dict, aus) -> list[str]:
  """results.md's section on a test record's per-AU thresholds tuned on the
  validation split, beside its F1 at the protocol's 0.5."""
  return [
    "## Per-AU thresholds tuned on the validation split",
    "",
    "The validation-best model with each AU's threshold chosen for F1 on the "
    "validation split, beside the protocol's 0.5 (the tables above). F1 in %.",
    "",
    markdown_table(*tuned_thresholds_table(test_record, aus)),
    "",
  ]


PROTOCOL_FIELDS = (
  "data.mode",
  "data.normalization",
  "model",
  "optim",
  "batch_size",
  "num_epochs",
  "selection",
)


def seed_differences(config) -> list[str]:
  """The flags of protocol fields (`PROTOCOL_FIELDS`) where `config` differs from
  the reproduction report's: the seed preset, trained on every training
  subject (--selection test)."""
  seed_config = configs.load("seed")
  seed_config.selection = "test"
  return [
    configs.flag(path)
    for path in configs.paths(config)
    if any(path == p or path.startswith(p + ".") for p in PROTOCOL_FIELDS)
    and configs.get(config, path) != configs.get(seed_config, path)
  ]


def sections(evals: list[dict], tests: dict) -> list[tuple]:
  """results.md's (heading, record) tables, the reported model first."""
  if not tests:
    final, best = evals[-1], max(evals, key=lambda r: r["mean_f1"])
    return [
      (f"Final model (epoch {final['epoch']}, step {final['step']})", final),
      (
        f"Best on the test split (epoch {best['epoch']}, step {best['step']}): "
        "the seed's practice, chosen on the data it is scored on",
        best,
      ),
    ]
  best, final = tests["best"], tests["final"]
  return [
    (
      f"Validation-best model on the test split (epoch {best['epoch']}, step "
      f"{best['step']}: the best validation mean F1)",
      best,
    ),
    (
      f"Final model on the test split (epoch {final['epoch']}, step "
      f"{final['step']})",
      final,
    ),
  ]


def results_page(
  config,
  evals: list[dict],
  tests: dict,
  aus,
  *,
  num_test: int,
  validation: tuple[int, list[str]] | None,
  steps_per_epoch: int,
  pos_weight,
  elapsed: float,
  devices: tuple[int, str],
) -> str:
  """results.md of a run of `config`: its evaluation records `evals`, its
  test records `tests` ({"best", "final"}, empty without a validation split).

  num_test: images of the test split; validation: (images, subjects) of the
  validation split, None without one; pos_weight: the training loss's
  per-AU positive weights, None when unweighted; elapsed: seconds of
  training and evaluation; devices: (count, platform).
  """
  title = f"DRML on {config.data.dataset}" + (
    f" fold {config.data.fold}" if config.data.fold else ""
  )
  notes = [
    f"Test split: {num_test} images. F1/accuracy/AUC in %, F1 and "
    "accuracy at the protocol's threshold 0.5, AUC over every threshold.",
    (
      f"Model selection: best validation mean F1 each epoch on "
      f"{validation[0]} images of the "
      f"held-out training subjects {', '.join(validation[1])}; "
      "the test split scores only the final and the validation-best models."
      if tests
      else "Model selection: --selection test, the seed's practice: the "
      "test split is evaluated every epoch and its best epoch is shown, a "
      "choice made on the data it is scored on."
    ),
    f"Config: {config.num_epochs} epochs x {steps_per_epoch} steps, batch "
    f"{config.batch_size}, lr {config.optim.learning_rate}, init {config.model.init}, "
    f"region layer {'on' if config.model.region_layer else 'off'} "
    f"(full config in {workdir.CONFIG_FILE}).",
    "Training loss: "
    + (
      "positives weighted per AU by negatives/positives of the training "
      "split: " + ", ".join(f"AU{a} {w:.2f}" for a, w in zip(aus, pos_weight))
      if pos_weight is not None
      else "unweighted (the protocol's)"
    )
    + ".",
    f"Runtime: {elapsed / 60:.1f} min on {devices[0]} "
    f"{devices[1]} device(s), evaluation included.",
  ]
  published = published_line(config.data.dataset, aus)
  if published:
    differences = seed_differences(config)
    notes.append(
      "Published results (below) come from the reproduction report: the "
      "seed preset with --selection test; "
      + (
        f"this run differs in {', '.join(differences)}."
        if differences
        else "this run follows it."
      )
    )
  return results_markdown(
    title,
    notes,
    sections(evals, tests),
    evals,
    aus,
    split="validation" if tests else "test",
    published=published,
    extra=tuned_thresholds_markdown(tests["best"], aus) if tests else [],
  )
