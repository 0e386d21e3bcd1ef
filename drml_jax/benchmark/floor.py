"""The CPU floor against the machine's drift: JAX's float32 train step and the
public port's, timed in alternating processes.

  python -m drml_jax.benchmark.floor                 # 3 rounds, batch 64, 170x170
  python -m drml_jax.benchmark.floor --rounds 5 --steps 10

A benchmark run times each row once, minutes apart, and the speed of a
shared 2-core machine drifts by ~15% between processes (benchmarks/README.md,
log entry 23), so one run's JAX / port ratio carries that drift. Each round
here times the port's train row, then JAX's, each in a fresh process and as
`python -m drml_jax.benchmark` times it (the port with glibc's malloc as it
is, JAX keeping its step buffers), and prints every round's ratio and their
median. Other options (--batch, --steps, --warmup, --input-size, --seed,
--torch-threads) pass to both rows; without any, --steps 5 --warmup 1.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

from drml_jax import cli
from drml_jax.benchmark.__main__ import parse_args
from drml_jax.runtime import host_memory

SIDES = ("port", "jax")


def time_side(side: str, args) -> float:
  """Images/s of `side`'s float32 train row, in this process (`args`: the
  benchmark's options)."""
  if side == "jax":
    from drml_jax.benchmark import jax_rows  # pylint: disable=import-outside-toplevel

    host_memory.keep_freed_memory()
    row = jax_rows.jax_train_row(args, "float32", "auto", "unrolled")
  else:
    from drml_jax.benchmark.torch_rows import torch_rows  # pylint: disable=import-outside-toplevel

    args.dtypes = ["float32"]
    (row,) = torch_rows(args, "train", forms=("ports",))
  if row.status != "ok":
    raise RuntimeError(f"{row.name}: {row.status} ({row.reason})")
  return row.images_per_s


def median_ratio(rounds: list[dict]) -> float:
  """The median over rounds of JAX images/s over the port's."""
  return statistics.median(r["jax"] / r["port"] for r in rounds)


def _run_side(side: str, argv: list[str]) -> float:
  done = subprocess.run(
    [sys.executable, "-m", "drml_jax.benchmark.floor", "--side", side, *argv],
    capture_output=True,
    text=True,
    check=False,
  )
  if done.returncode:
    last = (done.stderr.strip().splitlines() or ["no output"])[-1]
    raise ValueError(
      f"the {side} row failed ({last}); `python -m drml_jax.benchmark.floor"
      f" --side {side}` with the same options shows all it printed"
    )
  return json.loads(done.stdout.splitlines()[-1])["images_per_s"]


@cli.command(measures=True)
def main(argv: list[str]) -> int:
  """Alternates the two rows for --rounds rounds; prints them and the median ratio."""
  host_memory.run_steps_on_calling_thread()  # before JAX starts, as the benchmark
  parser = cli.parser("python -m drml_jax.benchmark.floor", __doc__)
  parser.add_argument("--rounds", type=cli.positive_int, default=3)
  parser.add_argument(
    "--side", choices=SIDES, help="(one row, in this process)"
  )
  args, rest = parser.parse_known_args(argv)
  rest = rest or ["--steps", "5", "--warmup", "1"]
  bench_args = parse_args(rest)  # a bad option: one line here, not in a row
  if args.side:
    print(json.dumps({"images_per_s": time_side(args.side, bench_args)}))
    return 0
  rounds = []
  print("| round | port images/s | JAX images/s | JAX / port |")
  print("| --- | --- | --- | --- |")
  for index in range(args.rounds):
    result = {side: _run_side(side, rest) for side in SIDES}
    rounds.append(result)
    print(
      f"| {index + 1} | {result['port']:.2f} | {result['jax']:.2f} |"
      f" {result['jax'] / result['port']:.2f} |",
      flush=True,
    )
  print(f"median JAX / port, float32 train: {median_ratio(rounds):.2f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
