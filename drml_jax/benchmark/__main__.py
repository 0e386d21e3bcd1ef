"""Throughput of DRML in JAX and PyTorch on the current backend, one process.

The JAX eval row has an onnxruntime row beside it: the same model exported
to ONNX (`python -m drml_jax.export`), on the same batch.

  python -m drml_jax.benchmark                      # batch 64, 170x170
  python -m drml_jax.benchmark --smoke --out /tmp/b.json   # seconds, for tests

(Prediction's stages, from start-up to a video's frames/s, have their own
command: `python -m drml_jax.benchmark.predict`.)

Every timed figure is the median over `--steps` steps after `--warmup`
steps, each step synchronised; compile time (JAX: lowering + XLA compile;
torch.compile: its first step) is reported apart. Inputs live on the device:
the input pipeline is timed on its own (image files -> 170x170 batches, then
from its in-memory cache). FLOPs per image come from XLA's cost analysis of
the lowered train and eval steps with direct convolutions. The DISFA+
protocol time is extrapolated from the fastest train and eval rates of each
framework. Writes the JSON to benchmarks/results/<backend>-<device>.json
unless `--out` says otherwise, and prints the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys

import jax
from flax import nnx

from drml_jax import cli
from drml_jax.benchmark import jax_rows, onnx_rows, timing
from drml_jax.benchmark.torch_rows import torch_rows
from drml_jax.model.convs import CONV_IMPLS
from drml_jax.model.network import DRML
from drml_jax.runtime import host_memory

DTYPES = ("float32", "bfloat16")


def _csv(choices: tuple[str, ...]):
  def parse(text: str) -> list[str]:
    values = [v for v in text.split(",") if v]
    bad = [v for v in values if v not in choices]
    if bad or not values:
      raise argparse.ArgumentTypeError(
        f"{text!r}: expected a comma-separated list of {', '.join(choices)}"
      )
    return values

  return parse


def _grid(text: str) -> tuple[int, int]:
  try:
    rows, cols = (int(part) for part in text.split(","))
  except ValueError:
    rows = cols = 0
  if min(rows, cols) < 1:
    raise argparse.ArgumentTypeError(f"{text!r} is not rows,cols, e.g. 8,8")
  return rows, cols


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
  """Command-line options; per-backend defaults are filled in here."""
  parser = cli.parser("python -m drml_jax.benchmark", __doc__)
  parser.add_argument(
    "--batch",
    type=cli.positive_int,
    default=None,
    help="batch size (64; smoke 2)",
  )
  parser.add_argument(
    "--steps",
    type=cli.positive_int,
    default=None,
    help="timed steps (10; smoke 2)",
  )
  parser.add_argument(
    "--warmup",
    type=cli.positive_int,
    default=None,
    help="warm-up steps (2; smoke 1)",
  )
  parser.add_argument(
    "--input-size",
    type=cli.positive_int,
    default=None,
    help="image side for the models (170; smoke 74)",
  )
  parser.add_argument(
    "--grid",
    type=_grid,
    default=None,
    help="the region layer's grid, rows,cols (8,8; smoke 2,2: compiles in "
    "a fraction of the time)",
  )
  parser.add_argument("--num-aus", type=cli.positive_int, default=12)
  parser.add_argument(
    "--dtypes",
    type=_csv(DTYPES),
    default=None,
    help="compute dtypes (default: float32,bfloat16; smoke: float32)",
  )
  parser.add_argument(
    "--region-convs",
    type=_csv(("lax", "unrolled")),
    default=None,
    help="region conv forms (default: both; CPU: unrolled, the vmapped lax "
    "form's backward is ~100x slower on XLA:CPU)",
  )
  parser.add_argument(
    "--convs",
    type=_csv(CONV_IMPLS),
    default=None,
    help="dense conv forms (default: auto, and lax on CPU as the baseline)",
  )
  parser.add_argument(
    "--no-torch", dest="torch", action="store_false", help="skip PyTorch"
  )
  parser.add_argument(
    "--no-torch-compile", dest="torch_compile", action="store_false"
  )
  parser.add_argument(
    "--torch-threads",
    type=cli.positive_int,
    default=None,
    help="PyTorch CPU threads (default: torch's, one per core; smoke 1)",
  )
  parser.add_argument(
    "--no-pipeline",
    dest="pipeline",
    action="store_false",
    help="skip the input pipeline",
  )
  parser.add_argument(
    "--dataset", default="synthetic", help="dataset for the pipeline rows"
  )
  parser.add_argument(
    "--dataset-config", default=None, help="its config (smoke: tiny)"
  )
  parser.add_argument(
    "--data-dir", default=None, help="TFDS data dir (default: $DRML_DATA_DIR)"
  )
  parser.add_argument(
    "--pipeline-batches",
    type=cli.positive_int,
    default=None,
    help="timed pipeline batches (20; smoke 2)",
  )
  parser.add_argument(
    "--peak-tflops",
    type=float,
    default=None,
    help="the device's dense peak, overriding the built-in table",
  )
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument(
    "--smoke", action="store_true", help="tiny, fast run (tests)"
  )
  parser.add_argument(
    "--out",
    default=None,
    help="JSON path (default benchmarks/results/<backend>-<device>.json)",
  )
  args = parser.parse_args(argv)
  if args.peak_tflops is not None and args.peak_tflops <= 0:
    parser.error("--peak-tflops must be positive")
  accelerator = jax.default_backend() != "cpu"
  defaults = dict(
    batch=(2, 64),
    steps=(2, 10),
    warmup=(1, 2),
    input_size=(74, 170),
    grid=((2, 2), (8, 8)),
    pipeline_batches=(2, 20),
  )
  for name, (smoke, full) in defaults.items():
    if getattr(args, name) is None:
      setattr(args, name, smoke if args.smoke else full)
  if args.dtypes is None:
    args.dtypes = ["float32"] if args.smoke else list(DTYPES)
  if args.region_convs is None:
    args.region_convs = ["lax", "unrolled"] if accelerator else ["unrolled"]
  if args.convs is None:
    args.convs = ["auto"] if accelerator or args.smoke else ["auto", "lax"]
  if args.smoke:
    args.torch_compile = False
    args.torch_threads = args.torch_threads or 1
    args.dataset_config = args.dataset_config or "tiny"
  return args


def _default_out() -> str:
  kind = "".join(
    c if c.isalnum() else "-" for c in jax.devices()[0].device_kind.lower()
  )
  return os.path.join(
    "benchmarks", "results", f"{jax.default_backend()}-{kind.strip('-')}.json"
  )


def devices_and_forms(args: argparse.Namespace) -> str:
  """What this run measures on: JAX's devices, and the conv forms "auto"
  chose for them (each dense conv's, the region convs', the layout)."""
  model = nnx.eval_shape(
    lambda: DRML(grid=args.grid, input_size=args.input_size, rngs=nnx.Rngs(0))
  )
  devices = jax.devices()
  forms = ", ".join(f"{name} {form}" for name, form in model.forms().items())
  return (
    f"devices: {len(devices)} x {devices[0].device_kind} "
    f"({jax.default_backend()}; {', '.join(map(str, devices[:8]))}"
    f"{', ...' if len(devices) > 8 else ''})\n"
    f'conv forms "auto" chose: {forms}'
  )


def run(args: argparse.Namespace) -> dict:
  """Measures every configuration; returns the JSON-able result."""
  load_before, ticks_before = timing.load_average(), timing.cpu_ticks()
  # PyTorch first, with glibc's malloc as it is when the port's train.py runs;
  # then the JAX rows keep freed memory, as `python -m drml_jax.train` does
  # (--smoke, which tests run in their own process, leaves malloc alone).
  torch_results = (
    torch_rows(args, "train") + torch_rows(args, "eval") if args.torch else []
  )
  keeps_memory = not args.smoke and host_memory.keep_freed_memory()
  rows = []
  for dtype in args.dtypes:
    for region_conv in args.region_convs:
      for conv in args.convs:
        if dtype != "float32" and conv == "lax" and "auto" in args.convs:
          continue  # the lax baseline in float32 only
        rows.append(jax_rows.jax_train_row(args, dtype, conv, region_conv))
  if jax.default_backend() == "cpu" and "lax" not in args.region_convs:
    rows.append(
      timing.Row(
        "JAX train float32 region=lax",
        "jax",
        "train",
        options={"region_conv": "lax"},
        status="skipped",
        reason="XLA:CPU runs the vmapped (grouped) conv's backward "
        "~100x slower; pass --region-convs lax,unrolled to time it",
      )
    )
  rows.append(jax_rows.jax_eval_row(args, "auto", "auto"))
  rows.append(onnx_rows.onnxruntime_eval_row(args))
  rows += torch_results
  if args.pipeline:
    rows += jax_rows.pipeline_rows(args)
  if "bfloat16" in args.dtypes:
    jax_rows.add_parity_cost(rows, args)
  flops = jax_rows.jax_flops_per_image(args)
  device = timing.device_info()
  peak_dtype = "bfloat16" if "bfloat16" in args.dtypes else "float32"
  timing.add_flops(rows, flops, device["kind"], args.peak_tflops)
  return {
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
      timespec="seconds"
    ),
    "device": device,
    "versions": timing.versions(),
    "batch": args.batch,
    "input_size": args.input_size,
    "grid": list(args.grid),
    "steps": args.steps,
    "warmup": args.warmup,
    "dtypes": args.dtypes,
    "smoke": args.smoke,
    "protocol": timing.PROTOCOL_SIZE,
    "load_average": {"before": load_before, "after": timing.load_average()},
    "cpu_steal_fraction": timing.steal_fraction(
      ticks_before, timing.cpu_ticks()
    ),
    "jax_rows_keep_freed_memory": keeps_memory,
    "flops_per_image": flops,
    "peak_dtype": peak_dtype,
    "peak_tflops": timing.peak_tflops(
      device["kind"], peak_dtype, args.peak_tflops
    ),
    "rows": [dataclasses.asdict(r) for r in rows],
    "summary": timing.summarize(rows),
  }


@cli.command(measures=True)
def main(argv: list[str]) -> int:
  """Runs the benchmark, prints the table and writes the JSON; returns the exit status."""
  host_memory.run_steps_on_calling_thread()
  args = parse_args(argv)
  print(devices_and_forms(args), flush=True)
  result = run(args)
  print(timing.benchmark_table(result))
  out = args.out or _default_out()
  os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
  with open(out, "w") as f:
    json.dump(result, f, indent=1)
  print(f"wrote {out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
