"""The CPU floor against the machine's drift: JAX's float32 steps against the
public port's and PyTorch's fastest float32 form, timed in alternating
processes.

  python -m drml_jax.benchmark.floor                 # 3 rounds, batch 64, 170x170
  python -m drml_jax.benchmark.floor --rounds 5 --steps 10

A benchmark run times each row once, minutes apart, and the speed of a
shared 2-core machine drifts between processes
(benchmarks/README.md#cpu-figures), so one run's ratios carry that drift.
Each round here times five rows, each in a fresh process and as
`python -m drml_jax.benchmark` times it (PyTorch with glibc's malloc as it
is, JAX keeping its step buffers): the port's float32 train row, JAX's,
PyTorch's fastest float32 train form (the grouped conv under
torch.compile), then the port's eval row and JAX's. It prints every round
and the median of each ratio. Other options (--batch, --steps, --warmup,
--input-size, --seed, --torch-threads) pass to every row; without any,
--steps 5 --warmup 1.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

from drml_jax import cli
from drml_jax.benchmark.__main__ import parse_args
from drml_jax.runtime import host_memory

SIDES = ("port", "jax", "compiled", "port_eval", "jax_eval")
# (name, JAX's side, the side it is set against)
RATIOS = (
  ("JAX / port, float32 train", "jax", "port"),
  ("JAX / torch.compile grouped, float32 train", "jax", "compiled"),
  ("JAX / port, float32 eval", "jax_eval", "port_eval"),
)


def time_side(side: str, args) -> float:
  """Images/s of `side`'s float32 row, in this process (`args`: the
  benchmark's options)."""
  if side.startswith("jax"):
    from drml_jax.benchmark import jax_rows  # pylint: disable=import-outside-toplevel

    host_memory.keep_freed_memory()
    if side == "jax":
      row = jax_rows.jax_train_row(args, "float32", "auto", "unrolled")
    else:
      row = jax_rows.jax_eval_row(args, "auto", "unrolled")
  else:
    from drml_jax.benchmark.torch_rows import torch_rows  # pylint: disable=import-outside-toplevel

    args.dtypes = ["float32"]
    if side == "compiled":
      (row,) = torch_rows(args, "train", ("grouped",), compiled_only=True)
    else:
      kind = "eval" if side == "port_eval" else "train"
      (row,) = torch_rows(args, kind, forms=("ports",))
  if row.status != "ok":
    raise RuntimeError(f"{row.name}: {row.status} ({row.reason})")
  return row.images_per_s


def median_ratios(rounds: list[dict]) -> dict[str, float]:
  """The median over rounds of each of RATIOS."""
  return {
    name: statistics.median(r[ours] / r[theirs] for r in rounds)
    for name, ours, theirs in RATIOS
  }


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
  """Alternates the rows for --rounds rounds; prints them and the median ratios."""
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
  print(
    "| round | port train | JAX train | torch.compile grouped train "
    "| port eval | JAX eval | "
    + " | ".join(name for name, _, _ in RATIOS)
    + " |"
  )
  print("| --- " * (len(SIDES) + len(RATIOS) + 1) + "|")
  for index in range(args.rounds):
    result = {side: _run_side(side, rest) for side in SIDES}
    rounds.append(result)
    cells = [f"{result[side]:.2f}" for side in SIDES] + [
      f"{result[ours] / result[theirs]:.2f}" for _, ours, theirs in RATIOS
    ]
    print(f"| {index + 1} | " + " | ".join(cells) + " |", flush=True)
  print("images/s; median over the rounds:")
  for name, value in median_ratios(rounds).items():
    print(f"  {name}: {value:.2f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
