"""The accelerator check in one command: the benchmark, one epoch of the seed
preset on synthetic data of DISFA+'s size, and the protocol's 20 epochs
extrapolated against the PyTorch port on the same device.

  python -m drml_jax.benchmark.accelerator --out DIR
  python -m drml_jax.benchmark.accelerator --dry-run   # the commands only

Runs, each in its own process:
  1. `python -m drml_jax.benchmark --out DIR/benchmark.json` (every row,
     PyTorch's too where a CUDA torch is installed);
  2. `python -m drml_jax.train --config seed` on the synthetic dataset's
     `disfa_plus_size` config (12 + 4 subjects x 3,578 frames: 42,936
     training images against DISFA+'s 42,929) for one epoch, its work
     directory DIR/epoch;
then writes DIR/protocol.json and prints: the epoch's training rate (its
logged intervals after the first, which holds the compilation), its
validation time, 20 such epochs, and the port's 20 epochs at its
benchmark rates on the same device. The port's figure is its train and
eval steps alone (no input pipeline), the JAX one the trainer end to end.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

from drml_jax import cli
from drml_jax.benchmark.timing import PROTOCOL_SIZE
from drml_jax.store import workdir

DATASET_CONFIG = "disfa_plus_size"


def commands(out: str) -> list[list[str]]:
  """The benchmark's command line, then the one-epoch training's."""
  return [
    [sys.executable, "-m", "drml_jax.benchmark", "--out", benchmark_path(out)],
    [
      sys.executable,
      "-m",
      "drml_jax.train",
      "--config",
      "seed",
      "--dataset",
      "synthetic",
      "--dataset-config",
      DATASET_CONFIG,
      "--num-epochs",
      "1",
      "--no-progress",
      "--workdir",
      os.path.join(out, "epoch"),
    ],
  ]


def benchmark_path(out: str) -> str:
  return os.path.join(out, "benchmark.json")


def epoch_figures(records: list[dict], batch_size: int) -> dict:
  """One epoch's figures from its metrics records: images/s over the logged
  train intervals after the first, steps, and the validation seconds."""
  train = [r for r in records if r["kind"] == "train"]
  evals = [r for r in records if r["kind"] == "eval"]
  if len(train) < 2 or not evals:
    raise ValueError(
      "the epoch logged fewer than two train intervals or no evaluation: "
      "pass a smaller --log-every-steps"
    )
  rate = statistics.median(r["images_per_s"] for r in train[1:])
  steps = train[-1]["step"]
  return {
    "train_images_per_s": rate,
    "train_images": steps * batch_size,
    "train_s": steps * batch_size / rate,
    "eval_s": evals[-1]["eval_s"],
  }


def extrapolate(epoch: dict, benchmark: dict) -> dict:
  """Minutes for the protocol's epochs: JAX from the measured epoch, the
  port (and PyTorch's fastest form) from the benchmark's rates."""
  minutes = benchmark["summary"]["protocol_minutes"]
  return {
    "epochs": PROTOCOL_SIZE["epochs"],
    "jax_minutes": PROTOCOL_SIZE["epochs"]
    * (epoch["train_s"] + epoch["eval_s"])
    / 60,
    "jax_step_rates_minutes": minutes["jax"],
    "torch_ports_minutes": minutes["torch_ports"],
    "torch_fastest_minutes": minutes["torch_fastest"],
    "device": benchmark.get("device"),
    "epoch": epoch,
  }


def _minutes(value) -> str:
  return "unavailable" if value is None else f"{value:.1f} min"


def format_result(result: dict) -> str:
  epoch = result["epoch"]
  return "\n".join(
    [
      f"device: {result['device']}",
      f"one epoch: {epoch['train_images']} images at "
      f"{epoch['train_images_per_s']:.1f} images/s ({epoch['train_s']:.0f} s),"
      f" validation {epoch['eval_s']:.0f} s",
      f"{result['epochs']} epochs, JAX trainer end to end: "
      + _minutes(result["jax_minutes"]),
      "  at the benchmark's JAX step rates: "
      + _minutes(result["jax_step_rates_minutes"]),
      "  PyTorch port (YIUYA/DRML) at its step rates: "
      + _minutes(result["torch_ports_minutes"]),
      "  PyTorch fastest form at its step rates: "
      + _minutes(result["torch_fastest_minutes"]),
    ]
  )


@cli.command(measures=True)
def main(argv: list[str]) -> int:
  """Runs the benchmark and one epoch; prints and writes the extrapolation."""
  parser = cli.parser("python -m drml_jax.benchmark.accelerator", __doc__)
  parser.add_argument(
    "--out",
    default=os.path.join("benchmarks", "results", "accelerator"),
    help="folder for benchmark.json, the epoch's work directory and "
    "protocol.json",
  )
  parser.add_argument(
    "--dry-run", action="store_true", help="print the commands, run nothing"
  )
  args = parser.parse_args(argv)
  if args.dry_run:
    print("\n".join(" ".join(command) for command in commands(args.out)))
    return 0
  run_dir = os.path.join(args.out, "epoch")
  if os.path.exists(run_dir):
    raise ValueError(
      f"{run_dir} exists (a rerun would resume that epoch, not time one): "
      "pass a new --out"
    )
  os.makedirs(args.out, exist_ok=True)
  for command in commands(args.out):
    print("$", " ".join(command), flush=True)
    if subprocess.run(command, check=False).returncode:
      raise ValueError(
        f"`{' '.join(command[1:])}` failed (its output is above); fix that "
        "and rerun with a new --out"
      )
  with open(benchmark_path(args.out)) as f:
    benchmark = json.load(f)
  with open(os.path.join(run_dir, workdir.CONFIG_FILE)) as f:
    batch_size = json.load(f)["batch_size"]
  epoch = epoch_figures(workdir.read_records(run_dir), batch_size)
  result = extrapolate(epoch, benchmark)
  with open(os.path.join(args.out, "protocol.json"), "w") as f:
    json.dump(result, f, indent=1)
  print(format_result(result))
  return 0


if __name__ == "__main__":
  sys.exit(main())
