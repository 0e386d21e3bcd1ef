"""Training DRML: jit-compiled SGD steps, evaluation every epoch, checkpoints.

`train(config)` runs (or resumes) the run of a work directory:

  <workdir>/config.json       the resolved config
  <workdir>/checkpoints/      orbax: the latest step (resume) and the best by mean F1
  <workdir>/metrics.jsonl     one record per log interval and per evaluation
  <workdir>/tensorboard/      the same as TensorBoard events
  <workdir>/results.md        the per-AU tables at the end
  <workdir>/loss.png, f1_per_au.png

A rerun with the same work directory resumes at the step of the latest
checkpoint with the data order it would have had. SIGINT and SIGTERM save a
checkpoint, then stop; a non-finite loss stops the run without saving.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import signal
import time

import jax
import numpy as np
from flax import nnx
from tqdm import tqdm

from drml_jax import checkpoint, data, parallel, plots, report
from drml_jax.evaluate import CHECKPOINT_DIR, CONFIG_FILE, evaluate_split
from drml_jax.metrics_log import MetricsLog
from drml_jax.model import DRML
from drml_jax.optim import make_optimizer
from drml_jax.steps import SplitModel, make_eval_step, make_train_step

RESULTS_FILE = "results.md"
# Fields a resumed run may change: they do not alter what is computed.
RESUMABLE_CHANGES = frozenset({
    "num_epochs", "workdir", "export_torch", "progress", "log_every_steps",
    "checkpoint_every_steps", "data_dir", "manual_dir", "cache", "eval_batch_size",
    "region_conv", "conv", "distributed", "coordinator_address", "num_processes", "process_id"})


class TrainingError(RuntimeError):
  """A run that cannot go on, with a one-line message saying what to do."""


class Interrupted(Exception):
  """SIGINT or SIGTERM arrived; the run saved its state."""

  def __init__(self, signum: int, step: int):
    super().__init__(f"{signal.Signals(signum).name} at step {step}")
    self.signum = signum
    self.step = step


def model_config(config, num_aus: int) -> dict:
  """The JSON keyword arguments of DRML for a run config."""
  return dict(num_aus=num_aus, grid=list(config.grid), region_bn=config.region_bn,
              init=config.init, use_region_layer=config.region_layer,
              dropout=config.dropout, input_size=config.input_size)


def _is_primary() -> bool:
  return jax.process_index() == 0


def _prepare_workdir(config, checkpoints: checkpoint.TrainCheckpoints) -> None:
  """Writes config.json, or checks a resumed run asks for the same computation."""
  path = os.path.join(config.workdir, CONFIG_FILE)
  resolved = json.loads(config.to_json())
  if checkpoints.latest_step() is not None and os.path.exists(path):
    with open(path) as f:
      saved = json.load(f)
    for name, value in resolved.items():
      if name not in RESUMABLE_CHANGES and saved.get(name) != value:
        raise TrainingError(
            f"{config.workdir} holds a run with --{name.replace('_', '-')} {saved.get(name)!r}, "
            f"not {value!r}: rerun with the same settings to resume it, or pass a new --workdir")
  if _is_primary():
    report.write_atomic(path, json.dumps(resolved, indent=2) + "\n")


@dataclasses.dataclass
class _Signals:
  """Records SIGINT / SIGTERM instead of dying; a second one acts as usual."""
  received: int | None = None

  def handle(self, signum, frame):  # pylint: disable=unused-argument
    self.received = signum
    signal.signal(signum, signal.SIG_DFL if signum == signal.SIGTERM
                  else signal.default_int_handler)


@contextlib.contextmanager
def _catch_signals():
  signals = _Signals()
  previous = {s: signal.signal(s, signals.handle) for s in (signal.SIGINT, signal.SIGTERM)}
  try:
    yield signals
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)


class Run:
  """One training run: model, optimizer, data and checkpoints of a work directory."""

  def __init__(self, config):
    self.config = config
    self.mesh = parallel.make_mesh()
    parallel.check_batch_size(config.batch_size, "--batch-size")
    parallel.check_batch_size(config.eval_batch_size, "--eval-batch-size")
    os.makedirs(config.workdir, exist_ok=True)
    self.checkpoints = checkpoint.TrainCheckpoints(os.path.join(config.workdir, CHECKPOINT_DIR))
    _prepare_workdir(config, self.checkpoints)

    self.builder = data.build(config.dataset, fold=config.fold,
                              dataset_config=config.dataset_config,
                              data_dir=config.data_dir, manual_dir=config.manual_dir)
    self.aus = data.aus(self.builder)
    self.num_test = self.builder.info.splits["test"].num_examples
    self.batches = data.Batches(
        self.builder, data_shards=config.data_shards, process_index=jax.process_index(),
        process_count=jax.process_count(), mode=config.mode,
        normalization=config.normalization, input_size=config.input_size)
    self.steps_per_epoch = self.batches.steps_per_epoch("train", config.batch_size)
    self.total_steps = self.steps_per_epoch * config.num_epochs

    self.model_config = model_config(config, len(self.aus))
    model = DRML(**self.model_config, region_conv=config.region_conv, conv=config.conv,
                 rngs=nnx.Rngs(config.seed))
    self.tx = make_optimizer(
        config.learning_rate, momentum=config.momentum, weight_decay=config.weight_decay,
        schedule=config.schedule, step_size=config.step_size or None, gamma=config.gamma,
        caffe_bias_rule=config.caffe_bias_rule)
    self.step, self.elapsed = 0, 0.0
    split = SplitModel.of(model)
    opt_state = self.tx.init(split.params)
    latest = self.checkpoints.latest_step()
    if latest is not None:
      split, opt_state = self._restore(model, opt_state, latest)
    self.graphdefs = (split.train_graphdef, split.eval_graphdef)
    self.params, self.rest, self.opt_state = parallel.replicate(
        (split.params, split.rest, opt_state), self.mesh)
    self.train_step = make_train_step(split.train_graphdef, self.tx)
    self.eval_step = make_eval_step(split.eval_graphdef)

  def _restore(self, model, opt_state, step):
    targets = parallel.replicated_like(
        (checkpoint.model_state(model), opt_state, _rng_counts(model)), self.mesh)
    items = self.checkpoints.restore(step, model_state=targets[0], opt_state=targets[1],
                                     rng_counts=targets[2])
    for filter_, item in ((nnx.Not(nnx.RngState), checkpoint.MODEL_ITEM),
                          (nnx.RngCount, checkpoint.RNG_ITEM)):
      state = nnx.state(model, filter_)
      nnx.replace_by_pure_dict(state, items[item])
      nnx.update(model, state)
    train_state = items[checkpoint.TRAIN_ITEM]
    self.step, self.elapsed = train_state["step"], train_state["elapsed_s"]
    return SplitModel.of(model), items[checkpoint.OPT_ITEM]

  def model(self) -> DRML:
    """The network with the current state (eval mode)."""
    return nnx.merge(self.graphdefs[1], self.params, self.rest)

  def save(self, metrics: dict | None = None) -> None:
    """Starts saving the current step (with `metrics` after an evaluation)."""
    model = self.model()
    self.checkpoints.save(
        self.step, model_state=checkpoint.model_state(model),
        model_config=self.model_config, opt_state=self.opt_state,
        rng_counts=_rng_counts(model), metrics=metrics,
        train_state={"step": self.step, "epoch": self.step / self.steps_per_epoch,
                     "steps_per_epoch": self.steps_per_epoch, "elapsed_s": self.elapsed,
                     "metrics": metrics})

  def evaluate(self) -> tuple[np.ndarray, float]:
    """(counts, mean loss) on the test split."""
    counts, loss = evaluate_split(
        self.eval_step, self.params, self.rest,
        self.batches.evaluation("test", self.config.eval_batch_size), self.mesh)
    return counts, loss / self.num_test


def _rng_counts(model) -> dict:
  return nnx.to_pure_dict(nnx.state(model, nnx.RngCount))


def _check_finite(run: Run, pending: list, epoch_of) -> list[float]:
  """Host values of the pending (step, loss) pairs; raises on the first non-finite."""
  values = [float(parallel.fetch(loss)) for _, loss in pending]
  for (step, _), value in zip(pending, values):
    if not math.isfinite(value):
      run.checkpoints.wait()
      last = run.checkpoints.latest_step()
      kept = (f"the last good checkpoint, step {last}, stays in {run.checkpoints.directory}"
              if last is not None else "no checkpoint was written yet")
      raise TrainingError(f"the loss is {value} at step {step} (epoch {epoch_of(step)}): "
                          f"stopped without saving; {kept}; lower --learning-rate and "
                          "use a new --workdir")
  return values


def train(config) -> dict:
  """Trains (or resumes) the run of `config.workdir`; returns the final summary.

  Raises TrainingError (a run that cannot go on) and Interrupted (after
  saving, on SIGINT or SIGTERM).
  """
  config = config.copy_and_resolve_references()
  config.data_shards = config.data_shards or jax.process_count()
  run = Run(config)
  try:
    with _catch_signals() as signals:
      summary = _loop(run, signals)
  finally:
    run.checkpoints.wait()
  if config.export_torch and _is_primary():
    _export_torch(run, config.export_torch)
  run.checkpoints.close()
  return summary


def _loop(run: Run, signals: _Signals) -> dict:
  config = run.config
  primary = _is_primary()
  log = MetricsLog(config.workdir, resume_step=run.step) if primary else None
  epoch_of = lambda step: (step - 1) // run.steps_per_epoch + 1
  if run.step:
    _print(f"resuming {config.workdir} at step {run.step} (epoch {run.step / run.steps_per_epoch:.2f})")
  _print(f"training DRML on {config.dataset} ({run.builder.info.splits['train'].num_examples} "
         f"train / {run.num_test} test images, AUs {' '.join(map(str, run.aus))}): "
         f"{config.num_epochs} epochs of {run.steps_per_epoch} steps, batch {config.batch_size}, "
         f"{jax.device_count()} {jax.devices()[0].platform} device(s), "
         f"{jax.process_count()} process(es)")
  progress = tqdm(total=run.total_steps, initial=run.step, unit="step", dynamic_ncols=True,
                  disable=not (config.progress and primary))
  pending, interval_start, interval_step = [], time.time(), run.step
  session_start = time.time() - run.elapsed
  stop = None
  batches = run.batches.train("train", config.batch_size, seed=config.seed,
                              start_step=run.step, num_epochs=config.num_epochs)
  try:
    for batch in batches:
      batch = parallel.shard_batch({"image": batch["image"], "labels": batch["labels"]},
                                   run.mesh)
      run.params, run.rest, run.opt_state, loss = run.train_step(
          run.params, run.rest, run.opt_state, batch["image"], batch["labels"])
      run.step += 1
      progress.update(1)
      pending.append((run.step, loss))
      epoch_end = run.step % run.steps_per_epoch == 0
      checkpoint_due = (config.checkpoint_every_steps
                        and run.step % config.checkpoint_every_steps == 0)
      stop = signals.received
      if not (epoch_end or checkpoint_due or stop or run.step % config.log_every_steps == 0):
        continue
      losses = _check_finite(run, pending, epoch_of)
      now = time.time()
      record = {"kind": "train", "step": run.step, "epoch": run.step / run.steps_per_epoch,
                "loss": float(np.mean(losses)),
                "images_per_s": (run.step - interval_step) * config.batch_size
                                / max(now - interval_start, 1e-9)}
      progress.set_postfix(loss=f"{record['loss']:.3f}",
                           img_s=f"{record['images_per_s']:.1f}", refresh=False)
      if log:
        log.write(record)
      pending = []
      metrics = None
      if epoch_end:
        metrics = _evaluate_epoch(run, log, epoch_of(run.step))
        stop = signals.received
      run.elapsed = time.time() - session_start
      if epoch_end or checkpoint_due or stop:
        run.save(metrics)
      interval_start, interval_step = time.time(), run.step
      if stop:
        break
  finally:
    progress.close()
  if stop:
    run.checkpoints.wait()
    raise Interrupted(stop, run.step)
  run.checkpoints.wait()
  summary = _finish(run, log.records if log else [])
  if log:
    log.close()
  return summary


def _evaluate_epoch(run: Run, log: MetricsLog | None, epoch: int) -> dict:
  start = time.time()
  counts, loss = run.evaluate()
  scores, text = report.evaluation_report(counts, run.aus)
  _print(f"\nepoch {epoch}/{run.config.num_epochs}, step {run.step}: test loss {loss:.4f} "
         f"({time.time() - start:.0f}s)\n{text}")
  if log:
    log.write({"kind": "eval", "step": run.step, "epoch": epoch, "loss": loss,
               "mean_f1": scores["mean_f1"], "mean_accuracy": scores["mean_accuracy"],
               "constant_mean_f1": scores["constant_mean_f1"],
               "f1": dict(zip(map(str, run.aus), scores["f1"])),
               "accuracy": dict(zip(map(str, run.aus), scores["accuracy"])),
               "counts": scores["counts"], "collapse": scores["collapse"]})
  return {checkpoint.BEST_METRIC: scores["mean_f1"]}


def _finish(run: Run, records: list[dict]) -> dict:
  """Writes results.md and the plots; returns the final evaluation's summary."""
  evals = [r for r in records if r["kind"] == "eval"]
  if not evals:
    return {}
  final, best = evals[-1], max(evals, key=lambda r: r["mean_f1"])
  if _is_primary():
    plots.write_plots(records, run.config.workdir)
    report.write_atomic(os.path.join(run.config.workdir, RESULTS_FILE),
                        results_markdown(run, evals, final, best))
  summary = {"mean_f1": final["mean_f1"], "constant_mean_f1": final["constant_mean_f1"],
             "best_mean_f1": best["mean_f1"], "best_epoch": best["epoch"],
             "collapse": final["collapse"], "step": run.step, "elapsed_s": run.elapsed}
  _print(f"\nfinal (epoch {final['epoch']}): mean F1 {100 * final['mean_f1']:.2f} on the "
         f"test split; constant predictor (every AU present) "
         f"{100 * final['constant_mean_f1']:.2f}; best epoch {best['epoch']} "
         f"({100 * best['mean_f1']:.2f}); {run.elapsed / 60:.1f} min in all")
  if final["collapse"]:
    _print(f"{final['collapse']}: this is not a result; see results.md")
  _print(f"results: {os.path.join(run.config.workdir, RESULTS_FILE)}")
  return summary


def _table(scores_record: dict, aus, name: str) -> str:
  counts = np.asarray(scores_record["counts"])
  return report.evaluation_report(counts, aus, name)[1]


def results_markdown(run: Run, evals: list[dict], final: dict, best: dict) -> str:
  """results.md: the final and best tables (SPEC §1 format) and the epoch log."""
  config = run.config
  lines = [
      f"# DRML on {config.dataset}" + (f" fold {config.fold}" if config.fold else ""),
      "",
      f"Test split: {run.num_test} images. F1/accuracy in %, threshold 0.5.",
      f"Config: {config.num_epochs} epochs x {run.steps_per_epoch} steps, batch "
      f"{config.batch_size}, lr {config.learning_rate}, init {config.init}, region layer "
      f"{'on' if config.region_layer else 'off'} (full config in {CONFIG_FILE}).",
      f"Runtime: {run.elapsed / 60:.1f} min on {jax.device_count()} "
      f"{jax.devices()[0].platform} device(s), evaluation included.",
      "",
      f"## Final model (epoch {final['epoch']}, step {final['step']})",
      "",
      _table(final, run.aus, "DRML"),
      "",
      f"## Best model by mean F1 (epoch {best['epoch']}, step {best['step']})",
      "",
      _table(best, run.aus, "DRML"),
      "",
      "## By epoch",
      "",
      "| epoch | step | test loss | mean F1 | mean accuracy | constant F1 |",
      "| --- | --- | --- | --- | --- | --- |",
  ]
  for r in evals:
    lines.append(f"| {r['epoch']} | {r['step']} | {r['loss']:.4f} | {100 * r['mean_f1']:.2f} | "
                 f"{100 * r['mean_accuracy']:.2f} | {100 * r['constant_mean_f1']:.2f} |"
                 + (f" {r['collapse']}" if r["collapse"] else ""))
  return "\n".join(lines) + "\n"


def _export_torch(run: Run, path: str) -> None:
  """Writes the current model as a PyTorch checkpoint of the reference model."""
  from drml_jax import interchange  # pylint: disable=import-outside-toplevel
  from reference_torch import checkpoint as torch_checkpoint  # pylint: disable=import-outside-toplevel
  from reference_torch.model import DRML as TorchDRML  # pylint: disable=import-outside-toplevel
  model = checkpoint.build_model(run.model_config)
  state = nnx.state(model, nnx.Not(nnx.RngState))
  nnx.replace_by_pure_dict(state, parallel.fetch(checkpoint.model_state(run.model())))
  nnx.update(model, state)
  torch_model = TorchDRML(**run.model_config)
  torch_model.load_state_dict(interchange.to_torch_state_dict(model), strict=True)
  partial = f"{path}.partial"
  torch_checkpoint.save_checkpoint(torch_model, partial, epoch=run.step // run.steps_per_epoch)
  os.replace(partial, path)
  _print(f"wrote the PyTorch state_dict of step {run.step} to {path}")


def _print(text: str) -> None:
  if _is_primary():
    tqdm.write(text)
