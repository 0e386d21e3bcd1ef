"""Throughput of DRML in JAX and PyTorch on the current backend, one process.

  python -m drml_jax.benchmark                      # batch 64, 170x170
  python -m drml_jax.benchmark --smoke --out /tmp/b.json   # seconds, for tests

Every timed figure is the median over `--steps` steps after `--warmup`
steps, each step synchronised; compile time (JAX: lowering + XLA compile;
torch.compile: its first step) is reported apart. Inputs live on the device:
the input pipeline is timed on its own (image files -> 170x170 batches, then
from its in-memory cache). FLOPs per image come from XLA's cost analysis of
the lowered train and eval steps with direct convolutions (the model's FLOPs, the
same whatever form runs), so achieved FLOP/s compare across forms. The DISFA+
protocol time is extrapolated from the fastest train and eval rates of each
framework: 20 epochs of 42,929 training images, each followed by an
evaluation of 14,739.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from drml_jax.convs import CONV_IMPLS
from drml_jax.model import DRML
from drml_jax.optim import make_optimizer
from drml_jax.steps import SplitModel, make_eval_step, make_train_step

PROTOCOL = {"epochs": 20, "train_images": 42_929, "test_images": 14_739}
LEARNING_RATE, MOMENTUM, WEIGHT_DECAY = 0.001, 0.9, 0.005
DTYPES = ("float32", "bfloat16")

# Dense peak TFLOP/s per chip by dtype, matched in order against the lower-cased
# device kind. float32 on NVIDIA Ampere and later is the TF32 tensor-core peak:
# XLA and cuDNN run float32 matmuls and convolutions as TF32 by default. TPUs
# run float32 matmuls as bfloat16 passes, so no float32 peak is claimed.
PEAK_TFLOPS = (
    ("h200", {"float32": 494.7, "bfloat16": 989.4}),
    ("gh200", {"float32": 494.7, "bfloat16": 989.4}),
    ("h100 pcie", {"float32": 378.0, "bfloat16": 756.0}),
    ("h100", {"float32": 494.7, "bfloat16": 989.4}),
    ("a100", {"float32": 156.0, "bfloat16": 312.0}),
    ("l40s", {"float32": 183.0, "bfloat16": 362.0}),
    ("l4", {"float32": 60.0, "bfloat16": 121.0}),
    ("rtx 4090", {"float32": 82.6, "bfloat16": 165.2}),
    ("v100", {"float32": 15.7}),
    ("t4", {"float32": 8.1}),
    ("tpu v6", {"bfloat16": 918.0}),
    ("tpu v5 lite", {"bfloat16": 197.0}),
    ("tpu v5e", {"bfloat16": 197.0}),
    ("tpu v5", {"bfloat16": 459.0}),
    ("tpu v4", {"bfloat16": 275.0}),
    ("tpu v3", {"bfloat16": 123.0}),
    ("tpu v2", {"bfloat16": 45.0}),
)


def peak_tflops(device_kind: str, dtype: str, override: float | None = None) -> float | None:
  """The device's dense peak for `dtype` (TFLOP/s), `override` if given, else None."""
  if override is not None:
    return override
  kind = device_kind.lower()
  for name, peaks in PEAK_TFLOPS:
    if name in kind:
      return peaks.get(dtype)
  return None


@dataclasses.dataclass
class Row:
  """One measured (or skipped) configuration."""
  name: str
  framework: str  # jax | torch | pipeline
  kind: str  # train | eval | input
  dtype: str = "float32"
  options: dict = dataclasses.field(default_factory=dict)
  status: str = "ok"  # ok | skipped | failed | unavailable
  reason: str = ""
  images_per_s: float | None = None
  step_ms: float | None = None
  compile_s: float | None = None
  flops_per_image: float | None = None
  achieved_tflops: float | None = None
  peak_fraction: float | None = None


def timed_steps(run: Callable[[], object], warmup: int, steps: int) -> float:
  """Median seconds of `steps` synchronised calls of `run` after `warmup` calls."""
  for _ in range(warmup):
    run()
  durations = []
  for _ in range(steps):
    start = time.perf_counter()
    run()
    durations.append(time.perf_counter() - start)
  return statistics.median(durations)


def _fill_rate(row: Row, seconds: float, batch: int) -> Row:
  row.step_ms = 1000 * seconds
  row.images_per_s = batch / seconds
  return row


def _failure(row: Row, error: Exception, status: str = "failed") -> Row:
  row.status = status
  row.reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:300]
  return row


# ---------------------------------------------------------------- JAX

def _jax_batch(batch: int, size: int, num_aus: int, seed: int = 0):
  rng = np.random.default_rng(seed)
  images = jnp.asarray(rng.random((batch, size, size, 3), np.float32))
  labels = jnp.asarray(rng.choice(np.array([-1, 1], np.int8), (batch, num_aus)))
  return images, labels


def _jax_model(args, dtype: str, conv: str, region_conv: str) -> SplitModel:
  model = DRML(args.num_aus, input_size=args.input_size, conv=conv, region_conv=region_conv,
               dtype=jnp.dtype(dtype), rngs=nnx.Rngs(args.seed))
  return SplitModel.of(model)


def _compiled(jitted, *inputs):
  start = time.perf_counter()
  compiled = jitted.lower(*inputs).compile()
  return compiled, time.perf_counter() - start


def jax_flops_per_image(args) -> dict[str, float]:
  """Train and eval FLOPs per image: XLA's cost analysis of the lowered steps
  (before optimisation, so no compile), with direct-convolution forms."""
  split = _jax_model(args, "float32", "lax", "matmul")
  tx = make_optimizer(LEARNING_RATE, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
  images, labels = _jax_batch(args.batch, args.input_size, args.num_aus)
  valid = jnp.ones((args.batch,), bool)
  train = make_train_step(split.train_graphdef, tx, donate=False).lower(
      split.params, split.rest, tx.init(split.params), images, labels)
  evaluate = make_eval_step(split.eval_graphdef).lower(
      split.params, split.rest, images, labels, valid)
  return {name: _cost_flops(lowered) / args.batch
          for name, lowered in (("train", train), ("eval", evaluate))}


def _cost_flops(lowered) -> float:
  cost = lowered.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older jax: one dict per computation
    cost = cost[0]
  return float(cost["flops"])


def jax_train_row(args, dtype: str, conv: str, region_conv: str) -> Row:
  """Times the JAX train step (plain jit over split NNX state, donated buffers)."""
  row = Row(f"JAX train {dtype} conv={conv} region={region_conv}", "jax", "train", dtype,
            {"conv": conv, "region_conv": region_conv})
  split = _jax_model(args, dtype, conv, region_conv)
  tx = make_optimizer(LEARNING_RATE, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
  images, labels = _jax_batch(args.batch, args.input_size, args.num_aus)
  state = [split.params, split.rest, tx.init(split.params)]
  step, row.compile_s = _compiled(make_train_step(split.train_graphdef, tx), *state, images, labels)

  def run():
    state[0], state[1], state[2], loss = step(*state, images, labels)
    loss.block_until_ready()

  return _fill_rate(row, timed_steps(run, args.warmup, args.steps), args.batch)


def jax_eval_row(args, conv: str, region_conv: str) -> Row:
  """Times the JAX eval step (logits -> confusion counts and loss)."""
  row = Row(f"JAX eval float32 conv={conv} region={region_conv}", "jax", "eval", "float32",
            {"conv": conv, "region_conv": region_conv})
  split = _jax_model(args, "float32", conv, region_conv)
  images, labels = _jax_batch(args.batch, args.input_size, args.num_aus)
  inputs = (split.params, split.rest, images, labels, jnp.ones((args.batch,), bool))
  step, row.compile_s = _compiled(make_eval_step(split.eval_graphdef), *inputs)
  run = lambda: jax.block_until_ready(step(*inputs))
  return _fill_rate(row, timed_steps(run, args.warmup, args.steps), args.batch)


# ---------------------------------------------------------------- PyTorch

def _torch_device(torch):
  """Torch's device matching JAX's backend, or None where torch cannot use it."""
  backend = jax.default_backend()
  if backend == "cpu":
    return torch.device("cpu")
  if backend == "gpu" and torch.cuda.is_available():
    return torch.device("cuda")
  return None


def _torch_sync(torch, device):
  if device.type == "cuda":
    torch.cuda.synchronize()


def torch_rows(args, kind: str) -> list[Row]:
  """The ports' form and the fast forms of the PyTorch reference, `kind` train|eval."""
  forms = [("ports' form (64 region modules)", "ports", False, False),
           ("grouped conv", "grouped", False, False),
           ("grouped conv, channels_last", "grouped", True, False),
           ("grouped conv, torch.compile", "grouped", False, True)]
  dtypes = [d for d in args.dtypes if d == "float32" or jax.default_backend() == "gpu"]
  rows = []
  with _torch_threads(args.torch_threads):
    for dtype in dtypes:
      for label, form, channels_last, compiled in forms:
        row = Row(f"PyTorch {kind} {dtype} {label}", "torch", kind, dtype,
                  {"form": form, "channels_last": channels_last, "compile": compiled})
        if compiled and not args.torch_compile:
          row.status, row.reason = "skipped", "torch.compile off (--no-torch-compile or --smoke)"
        else:
          row = _torch_measure(args, row)
        rows.append(row)
  return rows


@contextlib.contextmanager
def _torch_threads(threads: int | None):
  """Runs with `threads` intra-op threads (None: torch's default), then restores."""
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError:
    yield
    return
  previous = torch.get_num_threads()
  torch.set_num_threads(threads or previous)
  try:
    yield
  finally:
    torch.set_num_threads(previous)


def _torch_measure(args, row: Row) -> Row:
  try:
    import torch  # pylint: disable=import-outside-toplevel
    from reference_torch.fast import FastDRML  # pylint: disable=import-outside-toplevel
    from reference_torch.losses import multilabel_sigmoid_cross_entropy  # pylint: disable=import-outside-toplevel
    from reference_torch.model import DRML as TorchDRML  # pylint: disable=import-outside-toplevel
  except ImportError as error:
    return _failure(row, error, "unavailable")
  device = _torch_device(torch)
  if device is None:
    row.status, row.reason = "unavailable", f"torch cannot use the {jax.default_backend()} backend"
    return row
  row.options["threads"] = torch.get_num_threads()
  torch.manual_seed(args.seed)
  model = TorchDRML(args.num_aus, input_size=args.input_size)
  if row.options["form"] == "grouped":
    model = FastDRML(model)
  model = model.to(device)
  rng = np.random.default_rng(0)
  images = torch.from_numpy(rng.random((args.batch, 3, args.input_size, args.input_size),
                                      np.float32)).to(device)
  labels = torch.from_numpy(rng.choice([-1.0, 1.0], (args.batch, args.num_aus)).astype(
      np.float32)).to(device)
  if row.options["channels_last"]:
    model = model.to(memory_format=torch.channels_last)
    images = images.contiguous(memory_format=torch.channels_last)
  autocast = torch.autocast(device.type, torch.bfloat16, enabled=row.dtype == "bfloat16")
  if row.kind == "train":
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM,
                                weight_decay=WEIGHT_DECAY)

    def step():
      optimizer.zero_grad(set_to_none=True)
      with autocast:
        loss = multilabel_sigmoid_cross_entropy(model(images).float(), labels)
      loss.backward()
      optimizer.step()
  else:
    model.eval()

    @torch.no_grad()
    def step():
      with autocast:
        return model(images)

  if row.options["compile"]:
    step = torch.compile(step)

  def run():
    step()
    _torch_sync(torch, device)

  try:
    start = time.perf_counter()
    run()
    row.compile_s = time.perf_counter() - start  # the first step, compilation included
    return _fill_rate(row, timed_steps(run, max(args.warmup - 1, 0), args.steps), args.batch)
  except Exception as error:  # pylint: disable=broad-except
    return _failure(row, error)  # e.g. torch.compile without a working toolchain


# ---------------------------------------------------------------- input pipeline

def pipeline_rows(args) -> list[Row]:
  """Images/s of the tf.data pipeline: from the image files, then from its cache."""
  rows = [Row(f"Input pipeline ({source}), {args.dataset}", "pipeline", "input", "float32",
              {"cache": source == "cache"}) for source in ("files", "cache")]
  try:
    from data_pipeline import builders, pipeline  # pylint: disable=import-outside-toplevel
    builder = builders.build(args.dataset, data_dir=args.data_dir,
                             config=args.dataset_config)
  except Exception as error:  # pylint: disable=broad-except
    return [_failure(row, error, "unavailable") for row in rows]
  for row in rows:
    cache = row.options["cache"]
    batches = pipeline.make_dataset(builder, "train", batch_size=args.batch, train=True,
                                    cache=cache)
    per_epoch = pipeline.num_batches(builder, "train", batch_size=args.batch, train=True)
    iterator = iter(batches)
    for _ in range(per_epoch if cache else args.warmup):  # a cache fills in one epoch
      next(iterator)
    _fill_rate(row, timed_steps(lambda: next(iterator), 0, args.pipeline_batches), args.batch)
    row.options["batches_per_epoch"] = per_epoch
  return rows


# ---------------------------------------------------------------- summary

def _best(rows: list[Row], framework: str, kind: str, form: str | None = None) -> Row | None:
  candidates = [r for r in rows if r.framework == framework and r.kind == kind
                and r.status == "ok" and (form is None or r.options.get("form") == form)]
  return max(candidates, key=lambda r: r.images_per_s, default=None)


def _ratio(a: Row | None, b: Row | None) -> float | None:
  return a.images_per_s / b.images_per_s if a and b else None


def protocol_minutes(train: Row | None, evaluate: Row | None) -> float | None:
  """Minutes for the DISFA+ protocol at the given train and eval rates."""
  if not (train and evaluate):
    return None
  seconds = PROTOCOL["epochs"] * (PROTOCOL["train_images"] / train.images_per_s
                                  + PROTOCOL["test_images"] / evaluate.images_per_s)
  return seconds / 60


def summarize(rows: list[Row]) -> dict:
  """Ratios JAX/PyTorch and the extrapolated protocol times."""
  best = {(fw, kind, form): _best(rows, fw, kind, form)
          for fw, form in (("jax", None), ("torch", None), ("torch", "ports"))
          for kind in ("train", "eval")}
  cached = next((r for r in rows if r.kind == "input" and r.options["cache"]
                 and r.status == "ok"), None)
  jax_train = best["jax", "train", None]
  with_pipeline = None
  if jax_train and cached:
    with_pipeline = dataclasses.replace(
        jax_train, images_per_s=min(jax_train.images_per_s, cached.images_per_s))
  return {
      "best": {f"{fw}_{kind}" + (f"_{form}" if form else ""): r.name if r else None
               for (fw, kind, form), r in best.items()},
      "ratios": {
          "jax_train_over_torch_ports": _ratio(jax_train, best["torch", "train", "ports"]),
          "jax_train_over_torch_fastest": _ratio(jax_train, best["torch", "train", None]),
          "jax_eval_over_torch_ports": _ratio(best["jax", "eval", None],
                                              best["torch", "eval", "ports"]),
          "jax_eval_over_torch_fastest": _ratio(best["jax", "eval", None],
                                                best["torch", "eval", None]),
          "pipeline_cache_over_jax_train": _ratio(cached, jax_train),
      },
      "protocol_minutes": {
          "jax": protocol_minutes(jax_train, best["jax", "eval", None]),
          "jax_with_input_pipeline": protocol_minutes(with_pipeline, best["jax", "eval", None]),
          "torch_ports": protocol_minutes(best["torch", "train", "ports"],
                                          best["torch", "eval", "ports"]),
          "torch_fastest": protocol_minutes(best["torch", "train", None],
                                            best["torch", "eval", None]),
      },
  }


def add_flops(rows: list[Row], flops: dict[str, float], device_kind: str,
              override: float | None) -> None:
  """Fills FLOPs per image, achieved TFLOP/s and the fraction of the dense peak."""
  for row in rows:
    if row.kind not in flops or row.status != "ok":
      continue
    row.flops_per_image = flops[row.kind]
    row.achieved_tflops = row.flops_per_image * row.images_per_s / 1e12
    peak = peak_tflops(device_kind, row.dtype, override)
    row.peak_fraction = row.achieved_tflops / peak if peak else None


def _fmt(value, spec: str, missing: str = "-") -> str:
  return missing if value is None else format(value, spec)


def format_table(result: dict) -> str:
  """The printed table: every row, then ratios and protocol times."""
  device = result["device"]
  load = result["load_average"]["before"]
  load = "/".join(f"{value:.1f}" for value in load) if load else "-"
  lines = [f"DRML benchmark: {device['backend']} ({device['kind']}, {device['cpu_model']}, "
           f"{device['cpu_count']} CPUs, load average {load}), "
           f"batch {result['batch']}, "
           f"input {result['input_size']}, median of {result['steps']} steps after "
           f"{result['warmup']}; jax {result['versions']['jax']}, "
           f"torch {result['versions'].get('torch', '-')}",
           f"{'configuration':<58} {'img/s':>8} {'step ms':>9} {'compile s':>9} "
           f"{'TFLOP/s':>8} {'% peak':>7}"]
  for row in result["rows"]:
    if row["status"] != "ok":
      lines.append(f"{row['name']:<58} {row['status']}: {row['reason']}")
      continue
    peak = _fmt(row["peak_fraction"] and 100 * row["peak_fraction"], ".1f")
    lines.append(f"{row['name']:<58} {row['images_per_s']:>8.2f} {row['step_ms']:>9.1f} "
                 f"{_fmt(row['compile_s'], '.1f'):>9} {_fmt(row['achieved_tflops'], '.3f'):>8} "
                 f"{peak:>7}")
  flops = result["flops_per_image"]
  lines.append(f"FLOPs per image (XLA cost analysis): train {_fmt(flops.get('train'), '.3e')}, "
               f"eval {_fmt(flops.get('eval'), '.3e')}; peak "
               f"{_fmt(result['peak_tflops'], '.1f', 'unknown')} TFLOP/s ({result['peak_dtype']})")
  for name, value in result["summary"]["ratios"].items():
    lines.append(f"ratio {name:<45} {_fmt(value, '.2f')}")
  for name, value in result["summary"]["protocol_minutes"].items():
    hours = value and value / 60
    lines.append(f"DISFA+ protocol {name:<39} {_fmt(value, '.1f')} min "
                 f"({_fmt(hours, '.2f')} h)")
  return "\n".join(lines)


# ---------------------------------------------------------------- CLI

def _cpu_model() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      return next((line.split(":", 1)[1].strip() for line in f
                   if line.startswith("model name")), platform.machine())
  except OSError:
    return platform.processor() or platform.machine()


def _device_info() -> dict:
  device = jax.devices()[0]
  return {"backend": jax.default_backend(), "kind": device.device_kind,
          "count": jax.device_count(), "platform": platform.platform(),
          "cpu_model": _cpu_model(), "cpu_count": os.cpu_count()}


def _load_average() -> list[float] | None:
  """The host's 1/5/15-minute load averages: other work on the machine skews timings."""
  return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def _versions() -> dict:
  versions = {"python": platform.python_version()}
  for package in ("jax", "jaxlib", "flax", "optax", "numpy", "torch", "tensorflow-cpu"):
    try:
      versions[package] = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      versions[package] = None
  return versions


def _csv(choices: tuple[str, ...]):
  def parse(text: str) -> list[str]:
    values = [v for v in text.split(",") if v]
    bad = [v for v in values if v not in choices]
    if bad or not values:
      raise argparse.ArgumentTypeError(
          f"{text!r}: expected a comma-separated list of {', '.join(choices)}")
    return values
  return parse


def _positive(text: str) -> int:
  try:
    value = int(text)
  except ValueError:
    value = 0
  if value < 1:
    raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
  return value


class _Parser(argparse.ArgumentParser):
  """Bad input is a one-line error (exit status 2), without the usage text."""

  def error(self, message):
    self.exit(2, f"error: {message}\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
  """Command-line options; per-backend defaults are filled in here."""
  parser = _Parser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=_positive, default=None, help="batch size (64; smoke 2)")
  parser.add_argument("--steps", type=_positive, default=None, help="timed steps (10; smoke 2)")
  parser.add_argument("--warmup", type=_positive, default=None, help="warm-up steps (2; smoke 1)")
  parser.add_argument("--input-size", type=_positive, default=None,
                      help="image side for the models (170; smoke 74)")
  parser.add_argument("--num-aus", type=_positive, default=12)
  parser.add_argument("--dtypes", type=_csv(DTYPES), default=None,
                      help="float32 and, on GPU/TPU, bfloat16 compute")
  parser.add_argument("--region-convs", type=_csv(("lax", "matmul")), default=None,
                      help="region conv forms (default: both; CPU: matmul, the vmapped lax "
                           "form's backward is ~100x slower on XLA:CPU)")
  parser.add_argument("--convs", type=_csv(CONV_IMPLS), default=None,
                      help="dense conv forms (default: auto, and lax on CPU as the baseline)")
  parser.add_argument("--no-torch", dest="torch", action="store_false", help="skip PyTorch")
  parser.add_argument("--no-torch-compile", dest="torch_compile", action="store_false")
  parser.add_argument("--torch-threads", type=_positive, default=None,
                      help="PyTorch CPU threads (default: torch's, one per core; smoke 1)")
  parser.add_argument("--no-pipeline", dest="pipeline", action="store_false",
                      help="skip the input pipeline")
  parser.add_argument("--dataset", default="synthetic", help="dataset for the pipeline rows")
  parser.add_argument("--dataset-config", default=None, help="its config (smoke: tiny)")
  parser.add_argument("--data-dir", default=None, help="TFDS data dir (default: $DRML_DATA_DIR)")
  parser.add_argument("--pipeline-batches", type=_positive, default=None,
                      help="timed pipeline batches (20; smoke 2)")
  parser.add_argument("--peak-tflops", type=float, default=None,
                      help="the device's dense peak, overriding the built-in table")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--smoke", action="store_true", help="tiny, fast run (tests)")
  parser.add_argument("--out", default=None,
                      help="JSON path (default benchmarks/results/<backend>-<device>.json)")
  args = parser.parse_args(argv)
  if args.peak_tflops is not None and args.peak_tflops <= 0:
    parser.error("--peak-tflops must be positive")
  accelerator = jax.default_backend() != "cpu"
  defaults = dict(batch=(2, 64), steps=(2, 10), warmup=(1, 2), input_size=(74, 170),
                  pipeline_batches=(2, 20))
  for name, (smoke, full) in defaults.items():
    if getattr(args, name) is None:
      setattr(args, name, smoke if args.smoke else full)
  if args.dtypes is None:
    args.dtypes = list(DTYPES) if accelerator else ["float32"]
  if args.region_convs is None:
    args.region_convs = ["lax", "matmul"] if accelerator else ["matmul"]
  if args.convs is None:
    args.convs = ["auto"] if accelerator or args.smoke else ["auto", "lax"]
  if args.smoke:
    args.torch_compile = False
    args.torch_threads = args.torch_threads or 1
    args.dataset_config = args.dataset_config or "tiny"
  return args


def _default_out() -> str:
  kind = "".join(c if c.isalnum() else "-" for c in jax.devices()[0].device_kind.lower())
  return os.path.join("benchmarks", "results", f"{jax.default_backend()}-{kind.strip('-')}.json")


def run(args: argparse.Namespace) -> dict:
  """Measures every configuration; returns the JSON-able result."""
  load_before = _load_average()
  rows = []
  for dtype in args.dtypes:
    for region_conv in args.region_convs:
      for conv in args.convs:
        if dtype != "float32" and conv == "lax" and "auto" in args.convs:
          continue  # the lax baseline in float32 only
        rows.append(jax_train_row(args, dtype, conv, region_conv))
  if jax.default_backend() == "cpu" and "lax" not in args.region_convs:
    rows.append(Row("JAX train float32 region=lax", "jax", "train", options={"region_conv": "lax"},
                    status="skipped", reason="XLA:CPU runs the vmapped (grouped) conv's backward "
                    "~100x slower; pass --region-convs lax,matmul to time it"))
  rows.append(jax_eval_row(args, "auto", "auto"))
  if args.torch:
    rows += torch_rows(args, "train") + torch_rows(args, "eval")
  if args.pipeline:
    rows += pipeline_rows(args)
  flops = jax_flops_per_image(args)
  device = _device_info()
  peak_dtype = "bfloat16" if "bfloat16" in args.dtypes else "float32"
  add_flops(rows, flops, device["kind"], args.peak_tflops)
  return {
      "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "device": device, "versions": _versions(), "batch": args.batch,
      "input_size": args.input_size, "steps": args.steps, "warmup": args.warmup,
      "dtypes": args.dtypes, "smoke": args.smoke, "protocol": PROTOCOL,
      "load_average": {"before": load_before, "after": _load_average()},
      "flops_per_image": flops, "peak_dtype": peak_dtype,
      "peak_tflops": peak_tflops(device["kind"], peak_dtype, args.peak_tflops),
      "rows": [dataclasses.asdict(r) for r in rows], "summary": summarize(rows),
  }


def main(argv: list[str] | None = None) -> int:
  args = parse_args(argv)
  result = run(args)
  print(format_table(result))
  out = args.out or _default_out()
  os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
  with open(out, "w") as f:
    json.dump(result, f, indent=1)
  print(f"wrote {out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
