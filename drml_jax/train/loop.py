"""Training DRML: jit-compiled SGD steps, evaluation every epoch, checkpoints.

`train(config)` runs (or resumes) the run of `config.workdir` and writes the
files that `drml_jax.store.workdir` lists. A rerun with the same work directory
resumes at the step of the latest checkpoint with the data order it would
have had; it refuses to change a field that alters what is computed
(`configs.resumable`), compared with the config stored in the checkpoint.
SIGINT and SIGTERM save a checkpoint, then stop; a non-finite loss or
parameter stops the run without saving.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import time

import jax
import numpy as np
from tqdm import tqdm

from data_pipeline import splits
from drml_jax.rendering import plots, run_page, tables
from drml_jax.runtime import parallel, signals
from drml_jax.scoring import scores
from drml_jax.store import checkpoint, workdir
from drml_jax.train.evaluation import SplitResult, scored_intensity
from drml_jax.train.run import Run, TrainingError, is_primary, kept_message

logger = logging.getLogger(__name__)


class Interrupted(Exception):
  """SIGINT or SIGTERM arrived; the run saved its state."""

  def __init__(self, signum: int, step: int):
    super().__init__(f"{signal.Signals(signum).name} at step {step}")
    self.signum = signum
    self.step = step


def interrupted_message(run_dir: str) -> str:
  """What an interrupted run left, and what to do."""
  return "interrupted; " + kept_message(
    run_dir, "rerun the same command to resume"
  )


def _check_finite(run: Run, pending: list) -> list[float]:
  """Host values of the pending (step, loss) pairs; raises on the first non-finite."""
  values = [float(parallel.fetch(loss)) for _, loss in pending]
  for (step, _), value in zip(pending, values):
    if not math.isfinite(value):
      # The loss of `step` is computed with the parameters of step - 1.
      raise TrainingError(
        run._not_finite(  # pylint: disable=protected-access
          f"the loss is {value} at step {step}", last_usable=step - 2
        )
      )
  return values


def train(config) -> dict:
  """Trains (or resumes) the run of `config.workdir`; returns the final summary.

  Raises TrainingError (a run that cannot go on), workdir.LockedError
  (another process writes the work directory) and Interrupted (after
  saving, on SIGINT or SIGTERM).
  """
  config = config.copy_and_resolve_references()
  config.data.data_shards = config.data.data_shards or jax.process_count()
  with (
    workdir.lock(config.workdir) if is_primary() else contextlib.nullcontext()
  ):
    try:
      return _train(config)
    except checkpoint.CheckpointError as error:
      raise TrainingError(
        f"{error}; "
        + kept_message(
          config.workdir, "free space and rerun the same command to resume"
        )
      ) from None


def _train(config) -> dict:
  run = Run(config)
  try:
    with signals.caught() as received:
      summary = _loop(run, received)
    if config.export_torch and is_primary():
      from drml_jax.store import interchange  # pylint: disable=import-outside-toplevel

      interchange.write_torch_checkpoint(
        run.model(),
        run.model_config,
        config.export_torch,
        epoch=run.step // run.steps_per_epoch,
      )
      logger.info(
        "wrote the PyTorch state_dict of step %d to %s",
        run.step,
        config.export_torch,
      )
    return summary
  finally:
    # Also on an error or a second Ctrl-C: finishes the saves in flight and
    # stops orbax's threads, which would otherwise die with the interpreter.
    run.checkpoints.close()


def _loop(run: Run, received: signals.Received) -> dict:
  config = run.config
  primary = is_primary()
  log = (
    workdir.MetricsLog(config.workdir, resume_step=run.step)
    if primary
    else None
  )
  if run.step:
    logger.info(
      "resuming %s at step %d (epoch %.2f)",
      config.workdir,
      run.step,
      run.step / run.steps_per_epoch,
    )
  logger.info(
    "training DRML on %s (%d train / %s / %d test images, AUs %s): %d epochs "
    "of %d steps, batch %d, %d %s device(s), %d process(es)",
    config.data.dataset,
    splits.num_examples(run.builder, run.train_split),
    f"{splits.num_examples(run.builder, run.val_split)} validation"
    if run.val_split
    else "no validation (best on test)",
    run.num_test,
    " ".join(map(str, run.aus)),
    config.num_epochs,
    run.steps_per_epoch,
    config.batch_size,
    jax.device_count(),
    jax.devices()[0].platform,
    jax.process_count(),
  )
  progress = tqdm(
    total=run.total_steps,
    initial=run.step,
    unit="step",
    dynamic_ncols=True,
    disable=not (config.progress and primary),
  )
  pending, interval_start, interval_step = [], time.time(), run.step
  session_start = time.time() - run.elapsed
  first_step = run.step
  stop = None
  batches = run.batches.train(
    run.train_split,
    config.batch_size,
    seed=config.seed,
    start_step=run.step,
    num_epochs=config.num_epochs,
  )
  try:
    for batch in batches:
      del batch["valid"]  # every training example is real
      batch = parallel.shard_batch(batch, run.mesh)
      if run.step == first_step:
        run.compile_train_step(batch)
      run.state, loss = run.train_step(run.state, batch)
      run.step += 1
      progress.update(1)
      pending.append((run.step, loss))
      epoch_end = run.step % run.steps_per_epoch == 0
      checkpoint_due = (
        config.checkpoint_every_steps
        and run.step % config.checkpoint_every_steps == 0
      )
      stop = received.signum
      if not (
        epoch_end
        or checkpoint_due
        or stop
        or run.step % config.log_every_steps == 0
      ):
        continue
      losses = _check_finite(run, pending)
      now = time.time()
      record = {
        "kind": "train",
        "step": run.step,
        "epoch": run.step / run.steps_per_epoch,
        "loss": float(np.mean(losses)),
        "images_per_s": (run.step - interval_step)
        * config.batch_size
        / max(now - interval_start, 1e-9),
      }
      progress.set_postfix(
        loss=f"{record['loss']:.3f}",
        img_s=f"{record['images_per_s']:.1f}",
        refresh=False,
      )
      if log:
        log.write(record)
      pending = []
      metrics = thresholds = None
      if epoch_end:
        metrics, thresholds = _evaluate_epoch(run, log)
        stop = received.signum
      run.elapsed = time.time() - session_start
      if epoch_end or checkpoint_due or stop:
        run.save(metrics, thresholds)
      interval_start, interval_step = time.time(), run.step
      if stop:
        break
  finally:
    progress.close()
  if stop:
    raise Interrupted(stop, run.step)
  tests = _evaluate_test(run, log) if run.val_split else {}
  summary = _finish(run, log.records if log else [], tests)
  if log:
    log.close()
  return summary


def _scored(run: Run, evaluation: SplitResult) -> tuple[dict, str]:
  """(record fields, report text) of an evaluation."""
  result = scores.evaluation_scores(
    evaluation.counts,
    run.aus,
    auc=scores.roc_auc(evaluation.probabilities, evaluation.labels),
    intensity=scored_intensity(evaluation, run.aus),
  )
  return scores.eval_record(result, run.aus), tables.evaluation_text(result)


def _evaluate_epoch(
  run: Run, log: workdir.MetricsLog | None
) -> tuple[dict, list | None]:
  """Evaluates the selection split: (checkpoint metrics, per-AU thresholds
  tuned on the validation split, None without one)."""
  start = time.time()
  epoch = run.epoch_of(run.step)
  split = "val" if run.val_split else "test"
  evaluation = run.evaluate(run.selection_split)
  record, text = _scored(run, evaluation)
  thresholds = None
  if run.val_split:
    thresholds = scores.tune_thresholds(
      evaluation.probabilities, evaluation.labels
    ).tolist()
    record["thresholds"] = dict(zip(map(str, run.aus), thresholds))
  seconds = time.time() - start
  logger.info(
    "\nepoch %d/%d, step %d: %s loss %.4f (%.0fs)\n%s",
    epoch,
    run.config.num_epochs,
    run.step,
    split,
    evaluation.loss,
    seconds,
    text,
  )
  if log:
    log.write(
      {
        "kind": "eval",
        "split": split,
        "step": run.step,
        "epoch": epoch,
        "loss": evaluation.loss,
        "eval_s": seconds,
        **record,
      }
    )
  return {checkpoint.BEST_METRIC: record["mean_f1"]}, thresholds


def _evaluate_test(run: Run, log: workdir.MetricsLog | None) -> dict:
  """Test records of the final and the validation-best models: at 0.5, and
  at the per-AU thresholds tuned on the validation split (`tuned`)."""
  best_step, best_state = run.best_state()
  tests, evaluations = {}, {}
  for name, step, state in (
    ("best", best_step, best_state),
    ("final", run.step, run.state),
  ):
    if step not in evaluations:  # the final model is often the best one
      evaluations[step] = run.evaluate("test", state)
    evaluation = evaluations[step]
    record, text = _scored(run, evaluation)
    thresholds = run.checkpoints.run(step)["thresholds"]
    tuned = scores.au_scores(
      scores.counts_at(evaluation.probabilities, evaluation.labels, thresholds),
      run.aus,
    )
    tests[name] = {
      "kind": "test",
      "checkpoint": name,
      "step": step,
      "epoch": run.epoch_of(step),
      "loss": evaluation.loss,
      **record,
      "tuned": {
        "thresholds": dict(zip(map(str, run.aus), thresholds)),
        "mean_f1": tuned["mean_f1"],
        "f1": scores.per_au(tuned["f1"], run.aus),
        "counts": tuned["counts"],
      },
    }
    logger.info(
      "\n%s model (epoch %d, step %d) on the test split:\n%s",
      "validation-best" if name == "best" else "final",
      run.epoch_of(step),
      step,
      text,
    )
    if log:
      log.write(tests[name])
  return tests


def _finish(run: Run, records: list[dict], tests: dict) -> dict:
  """Writes results.md, the plots and report.html; returns the reported
  model's summary."""
  evals = [r for r in records if r["kind"] == "eval"]
  if not evals:
    return {}
  config = run.config
  (reported_heading, reported), (_, other) = tables.sections(evals, tests)
  results_path = os.path.join(config.workdir, workdir.RESULTS_FILE)
  if is_primary():
    plots.write_run_plots(records, config.workdir)
    workdir.write_atomic(
      results_path,
      tables.results_page(
        config,
        evals,
        tests,
        run.aus,
        num_test=run.num_test,
        validation=(
          splits.num_examples(run.builder, run.val_split),
          run.val_split.subjects,
        )
        if tests
        else None,
        steps_per_epoch=run.steps_per_epoch,
        pos_weight=run.pos_weight,
        elapsed=run.elapsed,
        devices=(jax.device_count(), jax.devices()[0].platform),
      ),
    )
    run_page.write_after_training(config.workdir)
  logger.info(
    "\nreported: %s, mean F1 %.2f on the test split (constant predictor, "
    "every AU present: %.2f); %s model (epoch %d): %.2f; %.1f min in all",
    reported_heading[0].lower() + reported_heading[1:],
    100 * reported["mean_f1"],
    100 * reported["constant_mean_f1"],
    "final" if tests else "best-on-test",
    other["epoch"],
    100 * other["mean_f1"],
    run.elapsed / 60,
  )
  if reported["collapse"]:
    logger.info(
      "%s: this is not a result; see results.md", reported["collapse"]
    )
  logger.info("results: %s", results_path)
  return {
    "selection": config.selection,
    "mean_f1": reported["mean_f1"],
    "mean_auc": reported["mean_auc"],
    "constant_mean_f1": reported["constant_mean_f1"],
    "epoch": reported["epoch"],
    "other_mean_f1": other["mean_f1"],
    "other_epoch": other["epoch"],
    "collapse": reported["collapse"],
    "step": run.step,
    "elapsed_s": run.elapsed,
  }
