"""Every fold of a dataset: one training run each, then their report.

`train_folds(config)` (`--fold all`) trains and evaluates each fold in
`<workdir>/fold<k>/` through `training.train`, resumable fold by fold, and
writes folds.md: each fold's table, then the mean and standard deviation
over folds of F1, AUC and accuracy per AU.
"""

from __future__ import annotations

import logging
import os

import jax

from data_pipeline import errors, registry
from drml_jax.rendering import fold_summary
from drml_jax.store import saved_run, workdir
from drml_jax.train.loop import Interrupted, train

logger = logging.getLogger(__name__)


def train_folds(config) -> dict:
  """Trains and evaluates every fold of the dataset, each in
  `workdir.fold_dir`, then writes folds.md; returns {"folds": {fold:
  record}, "failed": {fold: reason}, "summary": line}.

  A fold whose results.md exists is finished and kept as it is; the others
  are trained or resumed. A fold that fails is named and the next one runs;
  Interrupted (SIGINT, SIGTERM) stops them all.
  """
  config = config.copy_and_resolve_references()
  folds, failed = {}, {}
  for fold in registry.DATASETS[config.data.dataset].folds:
    fold_config = config.copy_and_resolve_references()
    fold_config.data.fold = fold
    fold_config.workdir = workdir.fold_dir(config.workdir, fold)
    if saved_run.is_finished(fold_config.workdir):
      logger.info("fold %d: finished in %s, kept", fold, fold_config.workdir)
    else:
      logger.info("fold %d: training in %s", fold, fold_config.workdir)
      try:
        train(fold_config)
      except Interrupted:
        raise
      except Exception as error:  # pylint: disable=broad-except
        reason = errors.first_line(error)
        logger.error("fold %d failed: %s", fold, reason)
        failed[fold] = reason
        continue
    reported = saved_run.reported_result(fold_config.workdir)
    if reported is None:
      failed[fold] = f"{fold_config.workdir} holds no finished evaluation"
    else:
      folds[fold] = reported
  title = f"DRML on {config.data.dataset}, folds " + ", ".join(
    map(str, registry.DATASETS[config.data.dataset].folds)
  )
  notes = [
    "Each fold trained and evaluated in its own fold<k>/ (its results.md has "
    "the details); the tables are each fold's reported model on its test "
    "split. F1/accuracy at threshold 0.5, AUC over every threshold.",
  ]
  aus = [int(a) for a in next(iter(folds.values()))[1]["f1"]] if folds else []
  text, summary = fold_summary.folds_markdown(title, notes, folds, failed, aus)
  if jax.process_index() == 0:
    workdir.write_atomic(os.path.join(config.workdir, workdir.FOLDS_FILE), text)
  logger.info("%s", summary)
  return {
    "folds": {k: record for k, (_, record) in folds.items()},
    "failed": failed,
    "summary": summary,
  }
