"""host_memory: a step's temporary buffer is reused, not faulted in anew."""

from __future__ import annotations

import subprocess
import sys

import pytest

from drml_jax import cli
from drml_jax.runtime import host_memory

# Page faults per call of a jitted function with a large temporary buffer
# (a 2048x2048 product and what XLA:CPU packs for it), in a fresh process.
FAULTS_PER_CALL = """
import resource, sys
import jax, jax.numpy as jnp
from drml_jax.runtime import host_memory
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


def _run(script: str, *args: str) -> list[str]:
  """The words `script` prints, run in a fresh Python process."""
  done = subprocess.run(
    [sys.executable, "-c", script, *args],
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
  )
  assert done.returncode == 0, done.stderr
  return done.stdout.split()


def _faults_per_call(mode: str) -> float:
  return float(_run(FAULTS_PER_CALL, mode)[-1])


@pytest.mark.slow
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
  "argv, measures, configured",
  [(None, False, True), (["x"], False, False), (None, True, False)],
)
def test_command_configures_the_process_only_as_a_program(
  monkeypatch, argv, measures, configured
):
  calls = []
  monkeypatch.setattr(host_memory, "configure", lambda: calls.append(1))
  monkeypatch.setattr(sys, "argv", ["prog", "x"])
  seen = []

  @cli.command(measures=measures)
  def main(args):
    seen.append(args)
    return 0

  assert main(argv) == 0
  assert seen == [["x"]]
  assert bool(calls) == configured


# A block larger than the largest positive trim threshold mallopt takes
# (2 GB), as the train step's buffer is at batch 64 (2.3 GB), freed.
FREED_OVER_2_GB = """
import ctypes, ctypes.util, os
from drml_jax.runtime import host_memory
assert host_memory.keep_freed_memory()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
size = (2 << 30) + (256 << 20)
block = libc.malloc(size)
ctypes.memset(block, 1, size)
libc.free(block)
with open("/proc/self/statm") as statm:
  print(int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20)
"""


@pytest.mark.skipif(
  host_memory._glibc() is None, reason="tunes glibc's malloc only"
)
def test_a_freed_block_over_2_gb_stays_mapped():
  # Kept: the process still holds the block's 2.25 GB of pages. Trimmed on
  # free, as with a 2 GB threshold, it would hold what it imported.
  assert int(_run(FREED_OVER_2_GB)[-1]) > 2048


# A hole in the kept heap, then something small placed in it: the next
# block of the hole's size no longer fits in what the heap holds.
FRAGMENTED_HEAP = """
import ctypes, os
from drml_jax.runtime import host_memory
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
MB = 1 << 20
def rss():
  with open("/proc/self/statm") as statm:
    return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
assert not host_memory.make_room(192 * MB)  # glibc's defaults: left alone
assert host_memory.keep_freed_memory()
hole = libc.malloc(256 * MB)
ctypes.memset(hole, 1, 256 * MB)  # resident
above = libc.malloc(MB)  # keeps the hole off the top of the heap
libc.free(hole)
fits = host_memory.make_room(192 * MB)
small = libc.malloc(96 * MB)  # the best fit: the hole, which it splits
before = rss()
released = host_memory.make_room(192 * MB)
print(fits, released, (before - rss()) // MB)
"""


@pytest.mark.skipif(
  host_memory._glibc() is None
  or not hasattr(host_memory._glibc(), "mallinfo2"),
  reason="reads glibc's malloc statistics",
)
def test_make_room_releases_a_fragmented_heap_only():
  fits, released, freed_mb = _run(FRAGMENTED_HEAP)
  # The whole hole fits a 192 MB block: nothing released. Split, its 160 MB
  # remainder does not: the freed memory goes back (the remainder's pages).
  assert (fits, released) == ("False", "True")
  assert int(freed_mb) > 128


def test_kept_memory_step_makes_room_for_its_buffer_before_each_run(
  monkeypatch,
):
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

  calls = []
  monkeypatch.setattr(host_memory, "make_room", calls.append)
  monkeypatch.setattr(
    host_memory, "release_freed_memory", lambda: calls.append("released")
  )
  compiled = (
    jax.jit(lambda x: jnp.sin(x) * 2).lower(jnp.ones(1 << 16)).compile()
  )
  step = host_memory.KeptMemoryStep(compiled, one_cpu_device=True)
  assert calls == ["released"]  # the compiler's memory, before the first run
  assert step.buffer_bytes == compiled.memory_analysis().temp_size_in_bytes
  out = step(jnp.ones(1 << 16))
  step(out)
  assert calls == ["released", step.buffer_bytes, step.buffer_bytes]
  assert (
    host_memory.KeptMemoryStep(compiled, one_cpu_device=False).buffer_bytes == 0
  )
