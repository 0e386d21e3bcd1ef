"""host_memory: a step's temporary buffer is reused, not faulted in anew."""

from __future__ import annotations

import subprocess
import sys

import pytest

from drml_jax import cli, host_memory

# Page faults per call of a jitted function with a large temporary buffer
# (a 2048x2048 product and what XLA:CPU packs for it), in a fresh process.
FAULTS_PER_CALL = """
import resource, sys
import jax, jax.numpy as jnp
from drml_jax import host_memory
if sys.argv[1] == "configure":
  assert host_memory.configure()
step = jax.jit(lambda x: jnp.tanh(x @ x.T).sum())
x = jnp.ones((2048, 4096), jnp.float32)
jax.block_until_ready(step(x))
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
  jax.block_until_ready(step(x))
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 3)
"""


def _faults_per_call(mode: str) -> float:
  done = subprocess.run(
    [sys.executable, "-c", FAULTS_PER_CALL, mode],
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
  )
  assert done.returncode == 0, done.stderr
  return float(done.stdout.split()[-1])


@pytest.mark.skipif(
  host_memory._glibc() is None, reason="tunes glibc's malloc only"
)
def test_configured_process_reuses_the_temporary_buffer():
  default = _faults_per_call("default")
  configured = _faults_per_call("configure")
  # By default each call maps its temporary anew: over 100 MB of fresh
  # 4 KB pages. Configured, the pages stay mapped; a few dozen faults of
  # unrelated small allocations may remain.
  assert default > 25_000
  assert configured < default / 50


@pytest.mark.parametrize(
  "argv, keep_memory, configured",
  [(None, True, True), (["x"], True, False), (None, False, False)],
)
def test_command_configures_the_process_only_as_a_program(
  monkeypatch, argv, keep_memory, configured
):
  calls = []
  monkeypatch.setattr(host_memory, "configure", lambda: calls.append(1))
  monkeypatch.setattr(sys, "argv", ["prog", "x"])
  seen = []

  @cli.command(keep_memory=keep_memory)
  def main(args):
    seen.append(args)
    return 0

  assert main(argv) == 0
  assert seen == [["x"]]
  assert bool(calls) == configured


def test_growth_limit_releases_past_the_margin_then_starts_over(monkeypatch):
  released = []
  monkeypatch.setattr(host_memory, "_glibc", lambda: object())
  monkeypatch.setattr(
    host_memory, "release_freed_memory", lambda: released.append(1)
  )
  readings = iter([1000, 1100, 1101, 900, 1000, 1000, 1201])
  limit = host_memory.GrowthLimit(100, read_rss=lambda: next(readings))
  # The first reading is the baseline; growing by the margin is allowed.
  assert [limit.check(), limit.check()] == [False, False]
  assert limit.check() and len(released) == 1  # 1101 > 1000 + 100
  # The next reading is the new baseline: 900, so 1000 is within it.
  assert [limit.check(), limit.check()] == [False, False]
  limit.reset()
  assert [limit.check(), limit.check()] == [False, True]  # 1000, then 1201
  assert len(released) == 2


def test_resident_bytes_is_this_process_rss():
  with open("/proc/self/status") as status:
    kb = next(int(line.split()[1]) for line in status if "VmRSS" in line)
  assert abs(host_memory.resident_bytes() - kb * 1024) < 64 << 20
