"""Process settings that let XLA:CPU reuse its memory from one step to the next.

XLA:CPU gives each run of a compiled step one temporary buffer (over 1 GB
for the 170x170 train step at batch 16) from malloc, and frees it when the
step ends. glibc serves a block that large with a fresh mmap and unmaps it on
free, so every step page-faults the whole buffer in again and the kernel
zeroes every page: ~350,000 minor faults and ~0.9 s of system time per step
on 2 cores, a fifth of the step (benchmarks/README.md, log entry 18).

Two settings stop it, and both are needed:

- single-device computations run on the calling thread instead of a JAX
  worker thread (`jax_cpu_enable_async_dispatch` off), so their buffers come
  from glibc's main arena: a thread arena maps every block over 64 MB anew,
  whatever mallopt says;
- the main arena serves large blocks from its heap instead of mmap, and keeps
  freed memory instead of returning it (mallopt M_MMAP_MAX, M_TRIM_THRESHOLD,
  M_TOP_PAD), so the next step finds the same pages already mapped.

The process keeps its high-water mark of memory instead of giving it back
between steps. Kept across phases, the train and eval steps' blocks
fragment the heap, so `release_freed_memory` returns them at each change
of phase; within a phase `GrowthLimit` returns them when the heap has
fragmented anyway; `mapped_apart` keeps a checkpoint's host copies out of
the heap (without it, the quick run's peak RSS grew by ~2 GB). Only glibc
is tuned; other C libraries are left as they are.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
from collections.abc import Callable

import jax

# mallopt parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4
# Freed memory up to this much stays mapped; the largest value mallopt takes.
_KEEP_BYTES = 2**31 - 1
# Each heap extension asks the kernel for this much more than needed.
_TOP_PAD_BYTES = 64 << 20


@functools.cache
def _glibc() -> ctypes.CDLL | None:
  try:
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
  except OSError:
    return None
  # glibc's own symbol: other C libraries' mallopt, if any, differ.
  return libc if hasattr(libc, "gnu_get_libc_version") else None


_keeping = False


def keep_freed_memory(keep: bool = True) -> bool:
  """Makes glibc's main arena keep large freed blocks for reuse (`keep`), or
  restores glibc's defaults; returns False where the C library is not glibc."""
  global _keeping  # pylint: disable=global-statement
  libc = _glibc()
  if libc is None:
    return False
  _keeping = keep
  if keep:
    settings = (
      (_M_MMAP_MAX, 0),
      (_M_TRIM_THRESHOLD, _KEEP_BYTES),
      (_M_TOP_PAD, _TOP_PAD_BYTES),
    )
  else:  # glibc's defaults (the mmap threshold stays fixed at its default)
    settings = (
      (_M_MMAP_MAX, 65536),
      (_M_TRIM_THRESHOLD, 128 * 1024),
      (_M_TOP_PAD, 128 * 1024),
    )
  return all(libc.mallopt(param, value) == 1 for param, value in settings)


def release_freed_memory() -> None:
  """Returns the freed memory that `keep_freed_memory` holds to the system.

  For a change of phase (training to evaluation and back): each phase's steps
  then reuse their own buffers, without the other phase's kept beside them.
  """
  libc = _glibc()
  if libc is not None:
    libc.malloc_trim(0)


def resident_bytes() -> int:
  """The process's resident set size (RSS) in bytes."""
  with open("/proc/self/statm", "rb") as statm:
    return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class GrowthLimit:
  """Returns the kept memory once the process has grown by `margin` bytes.

  A kept heap can fragment: when something lands in the hole a step's
  buffer left, the next step's buffer goes to the top of the heap and the
  hole stays resident beside it (+0.7 GB each time in the quick run).
  Called after each step, `check` takes the first RSS it reads as the
  baseline (the step's buffer is resident then); past baseline + `margin`
  it returns the freed memory and takes the next RSS it reads as the new
  baseline. `reset` at a change of phase does the same.
  """

  def __init__(self, margin: int, read_rss: Callable[[], int] = resident_bytes):
    self.margin = margin
    self._read_rss = read_rss
    self._limit = None

  def reset(self) -> None:
    self._limit = None

  def check(self) -> bool:
    """Returns whether it released memory."""
    if _glibc() is None:
      return False
    rss = self._read_rss()
    if self._limit is None:
      self._limit = rss + self.margin
      return False
    if rss <= self._limit:
      return False
    release_freed_memory()
    self._limit = None
    return True


@contextlib.contextmanager
def mapped_apart():
  """Inside, large blocks are mapped and unmapped on their own again.

  For the host copies of a checkpoint being saved: kept in the heap, they
  would sit where the next step's buffer goes and make the heap grow by a
  whole buffer (peak RSS +2 GB in the quick run).
  """
  keeping = _keeping
  if keeping:
    keep_freed_memory(False)
  try:
    yield
  finally:
    if keeping:
      keep_freed_memory(True)


def run_steps_on_calling_thread() -> None:
  """Single-device CPU computations run inline on the thread that calls them.

  Takes effect only if set before JAX creates its CPU backend (the first
  computation or device query).
  """
  jax.config.update("jax_cpu_enable_async_dispatch", False)


def configure() -> bool:
  """Both settings of this module; returns whether malloc could be tuned."""
  run_steps_on_calling_thread()
  return keep_freed_memory()
