"""Timing, rows, the summary and the printed table, whatever the framework.

Every timed figure is the median over the timed steps after warm-up, each
step synchronised. The DISFA+ protocol time is extrapolated from the fastest
train and eval rates of each framework: 20 epochs of 42,929 training images,
each followed by an evaluation of 14,739.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import platform
import statistics
import time
from typing import Callable

import jax

from data_pipeline import errors

PROTOCOL_SIZE = {"epochs": 20, "train_images": 42_929, "test_images": 14_739}
# The optimizer settings of every timed train step, JAX and PyTorch alike.
LEARNING_RATE, MOMENTUM, WEIGHT_DECAY = 0.001, 0.9, 0.005

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


def peak_tflops(
  device_kind: str, dtype: str, override: float | None = None
) -> float | None:
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
  framework: str  # jax | torch | onnxruntime | pipeline
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


def fill_rate(row: Row, seconds: float, batch: int) -> Row:
  """Sets the row's step time and images/s from `seconds` per batch."""
  row.step_ms = 1000 * seconds
  row.images_per_s = batch / seconds
  return row


def failure(row: Row, error: Exception, status: str = "failed") -> Row:
  """Marks the row `status`, with the error's first line as the reason."""
  row.status = status
  row.reason = f"{type(error).__name__}: {errors.first_line(error, limit=280)}"
  return row


# ---------------------------------------------------------------- summary


def _best(
  rows: list[Row],
  framework: str,
  kind: str,
  form: str | None = None,
  dtype: str | None = None,
) -> Row | None:
  candidates = [
    r
    for r in rows
    if r.framework == framework
    and r.kind == kind
    and r.status == "ok"
    and (form is None or r.options.get("form") == form)
    and (dtype is None or r.dtype == dtype)
  ]
  return max(candidates, key=lambda r: r.images_per_s, default=None)


def _ratio(a: Row | None, b: Row | None) -> float | None:
  return a.images_per_s / b.images_per_s if a and b else None


def protocol_minutes(train: Row | None, evaluate: Row | None) -> float | None:
  """Minutes for the DISFA+ protocol at the given train and eval rates."""
  if not (train and evaluate):
    return None
  seconds = PROTOCOL_SIZE["epochs"] * (
    PROTOCOL_SIZE["train_images"] / train.images_per_s
    + PROTOCOL_SIZE["test_images"] / evaluate.images_per_s
  )
  return seconds / 60


def summarize(rows: list[Row]) -> dict:
  """Ratios JAX/PyTorch and the extrapolated protocol times.

  The plain ratios take each side's fastest dtype; the float32 ones compare
  float32 with float32, the form the CPU targets are set in."""
  best = {
    (fw, kind, form): _best(rows, fw, kind, form)
    for fw, form in (("jax", None), ("torch", None), ("torch", "ports"))
    for kind in ("train", "eval")
  }
  float32 = {
    (fw, kind): _best(rows, fw, kind, form, "float32")
    for fw, form in (("jax", None), ("torch", "ports"))
    for kind in ("train", "eval")
  }
  cached = next(
    (
      r
      for r in rows
      if r.kind == "input" and r.options["cache"] and r.status == "ok"
    ),
    None,
  )
  jax_train = best["jax", "train", None]
  with_pipeline = None
  if jax_train and cached:
    with_pipeline = dataclasses.replace(
      jax_train, images_per_s=min(jax_train.images_per_s, cached.images_per_s)
    )
  return {
    "best": {
      f"{fw}_{kind}" + (f"_{form}" if form else ""): r.name if r else None
      for (fw, kind, form), r in best.items()
    },
    "ratios": {
      "jax_train_over_torch_ports": _ratio(
        jax_train, best["torch", "train", "ports"]
      ),
      "jax_train_over_torch_fastest": _ratio(
        jax_train, best["torch", "train", None]
      ),
      "jax_eval_over_torch_ports": _ratio(
        best["jax", "eval", None], best["torch", "eval", "ports"]
      ),
      "jax_eval_over_torch_fastest": _ratio(
        best["jax", "eval", None], best["torch", "eval", None]
      ),
      "jax_train_float32_over_torch_ports_float32": _ratio(
        float32["jax", "train"], float32["torch", "train"]
      ),
      "jax_eval_float32_over_torch_ports_float32": _ratio(
        float32["jax", "eval"], float32["torch", "eval"]
      ),
      "onnxruntime_eval_over_jax_eval": _ratio(
        _best(rows, "onnxruntime", "eval"), best["jax", "eval", None]
      ),
      "pipeline_cache_over_jax_train": _ratio(cached, jax_train),
    },
    "protocol_minutes": {
      "jax": protocol_minutes(jax_train, best["jax", "eval", None]),
      "jax_with_input_pipeline": protocol_minutes(
        with_pipeline, best["jax", "eval", None]
      ),
      "torch_ports": protocol_minutes(
        best["torch", "train", "ports"], best["torch", "eval", "ports"]
      ),
      "torch_fastest": protocol_minutes(
        best["torch", "train", None], best["torch", "eval", None]
      ),
    },
  }


def add_flops(
  rows: list[Row],
  flops: dict[str, float],
  device_kind: str,
  override: float | None,
) -> None:
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


def benchmark_table(result: dict) -> str:
  """The printed table: every row, then ratios and protocol times."""
  device = result["device"]
  load = result["load_average"]["before"]
  load = "/".join(f"{value:.1f}" for value in load) if load else "-"
  steal = _fmt(
    result["cpu_steal_fraction"] and 100 * result["cpu_steal_fraction"], ".1f"
  )
  lines = [
    f"DRML benchmark: {device['backend']} ({device['kind']}, {device['cpu_model']}, "
    f"{device['cpu_count']} CPUs, load average {load}, CPU time stolen "
    f"{steal}%), "
    f"batch {result['batch']}, "
    f"input {result['input_size']}, median of {result['steps']} steps after "
    f"{result['warmup']}; jax {result['versions']['jax']}, "
    f"torch {result['versions'].get('torch', '-')}",
    f"{'configuration':<68} {'img/s':>8} {'step ms':>9} {'compile s':>9} "
    f"{'TFLOP/s':>8} {'% peak':>7}",
  ]
  for row in result["rows"]:
    if row["status"] != "ok":
      lines.append(f"{row['name']:<68} {row['status']}: {row['reason']}")
      continue
    peak = _fmt(row["peak_fraction"] and 100 * row["peak_fraction"], ".1f")
    lines.append(
      f"{row['name']:<68} {row['images_per_s']:>8.2f} {row['step_ms']:>9.1f} "
      f"{_fmt(row['compile_s'], '.1f'):>9} {_fmt(row['achieved_tflops'], '.3f'):>8} "
      f"{peak:>7}"
    )
  flops = result["flops_per_image"]
  lines.append(
    f"FLOPs per image (XLA cost analysis): train {_fmt(flops.get('train'), '.3e')}, "
    f"eval {_fmt(flops.get('eval'), '.3e')}; peak "
    f"{_fmt(result['peak_tflops'], '.1f', 'unknown')} TFLOP/s ({result['peak_dtype']})"
  )
  parity = {
    row["framework"]: row["options"]["logits_rel_error_vs_float32"]
    for row in result["rows"]
    if "logits_rel_error_vs_float32" in row["options"]
  }
  if parity:
    lines.append(
      "bfloat16 logits error vs float32 (max abs / max |logit|): "
      + ", ".join(f"{name} {value:.2e}" for name, value in parity.items())
    )
  for name, value in result["summary"]["ratios"].items():
    lines.append(f"ratio {name:<45} {_fmt(value, '.2f')}")
  for name, value in result["summary"]["protocol_minutes"].items():
    hours = value and value / 60
    lines.append(
      f"DISFA+ protocol {name:<39} {_fmt(value, '.1f')} min "
      f"({_fmt(hours, '.2f')} h)"
    )
  return "\n".join(lines)


# ---------------------------------------------------------------- machine


def _cpu_model() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      return next(
        (
          line.split(":", 1)[1].strip()
          for line in f
          if line.startswith("model name")
        ),
        platform.machine(),
      )
  except OSError:
    return platform.processor() or platform.machine()


def device_info() -> dict:
  """JAX's backend and first device, the platform, CPU model and count."""
  device = jax.devices()[0]
  return {
    "backend": jax.default_backend(),
    "kind": device.device_kind,
    "count": jax.device_count(),
    "platform": platform.platform(),
    "cpu_model": _cpu_model(),
    "cpu_count": os.cpu_count(),
  }


def load_average() -> list[float] | None:
  """The host's 1/5/15-minute load averages: other work on the machine skews timings."""
  return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def cpu_ticks() -> tuple[int, int] | None:
  """(stolen, all) CPU ticks since boot from /proc/stat (Linux), else None.

  On a virtual machine the hypervisor's other guests take "steal" time from
  this one; a run with steal is slower by about that fraction."""
  try:
    with open("/proc/stat", encoding="ascii") as stat:
      ticks = [int(value) for value in stat.readline().split()[1:]]
  except (OSError, ValueError):
    return None
  return (ticks[7] if len(ticks) > 7 else 0), sum(ticks)


def steal_fraction(
  before: tuple[int, int] | None, after: tuple[int, int] | None
) -> float | None:
  """The fraction of CPU time stolen between two `cpu_ticks` readings."""
  if not (before and after) or after[1] <= before[1]:
    return None
  return (after[0] - before[0]) / (after[1] - before[1])


def versions() -> dict:
  """Versions of Python and of the packages the figures depend on (None: absent)."""
  found = {"python": platform.python_version()}
  for package in (
    "jax",
    "jaxlib",
    "flax",
    "optax",
    "numpy",
    "torch",
    "onnxruntime",
    "tensorflow-cpu",
  ):
    try:
      found[package] = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      found[package] = None
  return found
