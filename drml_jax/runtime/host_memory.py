"""Process settings that let XLA:CPU reuse its memory from one step to the next.

XLA:CPU gives each run of a compiled step one temporary buffer from malloc,
which holds all the step's temporaries, and frees it when the step ends.
glibc serves a block that large with a fresh mmap and unmaps it on free, so
every step page-faults the whole buffer in again and the kernel zeroes every
page, in system time that is a sizeable share of the step
(benchmarks/README.md#log).

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
of phase; within a phase `make_room` returns them before a step whose
buffer no longer fits in what the heap holds; `mapped_apart` keeps a
checkpoint's host copies out of the heap (without it, the quick run's peak
RSS grew, benchmarks/README.md#the-quick-run). Only glibc is tuned; other C
libraries are left as they are.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import re

import jax

# mallopt parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4
# Never return freed memory on free (only `release_freed_memory` does).
# The largest positive threshold (2^31 - 1 bytes) is smaller than the train
# step's buffer at batch 64, which glibc then returned after every step and
# faulted in again (benchmarks/README.md#log).
_NEVER_TRIM = -1
# Each heap extension asks the kernel for this much more than needed.
_TOP_PAD_BYTES = 64 << 20


@functools.cache
def _glibc() -> ctypes.CDLL | None:
  try:
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
  except OSError:
    return None
  # glibc's own symbol: other C libraries' mallopt, if any, differ.
  if not hasattr(libc, "gnu_get_libc_version"):
    return None
  if hasattr(libc, "mallinfo2"):  # glibc 2.33 and later
    libc.mallinfo2.restype = _MallInfo2
  libc.open_memstream.restype = ctypes.c_void_p
  libc.open_memstream.argtypes = (ctypes.c_void_p, ctypes.c_void_p)
  return libc


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
      (_M_TRIM_THRESHOLD, _NEVER_TRIM),
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


class _MallInfo2(ctypes.Structure):
  """glibc's struct mallinfo2 (<malloc.h>, glibc 2.33 and later)."""

  _fields_ = [
    (name, ctypes.c_size_t)
    for name in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks"
    " fordblks keepcost".split()
  ]


def _top_chunk(libc) -> int:
  """The free space at the top of the main arena's heap (mallinfo2's keepcost)."""
  return libc.mallinfo2().keepcost


def _largest_free_chunk(libc) -> int:
  """The largest free chunk in the main arena's bins, from malloc_info's
  report (the only interface that gives chunk sizes)."""
  buffer, size = ctypes.c_void_p(), ctypes.c_size_t()
  stream = libc.open_memstream(ctypes.byref(buffer), ctypes.byref(size))
  if not stream:
    return 0
  libc.malloc_info(0, ctypes.c_void_p(stream))
  libc.fclose(ctypes.c_void_p(stream))
  report = ctypes.string_at(buffer, size.value).decode()
  libc.free(buffer)
  main_arena = report.split('<heap nr="1">')[0]
  return max(map(int, re.findall(r'to="(\d+)"', main_arena)), default=0)


def make_room(nbytes: int) -> bool:
  """Returns the kept memory to the system unless glibc's main arena holds
  `nbytes` free in one piece; returns whether it did.

  Called before each train step with the size of the step's buffer. A kept
  heap fragments when something lands in the hole the last step's buffer
  left: the next buffer no longer fits there, goes to fresh pages at the
  top of the heap, and the hole stays resident beside it (one more step
  buffer in the quick run, benchmarks/README.md#log). Returned first, the
  process holds what is in use plus one buffer, and the step faults its
  buffer in once. A no-op unless `keep_freed_memory` is on.
  """
  libc = _glibc()
  if not (_keeping and nbytes and hasattr(libc, "mallinfo2")):
    return False
  # A chunk serves a request a little smaller than itself (header, alignment).
  needed = nbytes + (1 << 20)
  if _top_chunk(libc) >= needed or _largest_free_chunk(libc) >= needed:
    return False
  release_freed_memory()
  return True


@contextlib.contextmanager
def mapped_apart():
  """Inside, large blocks are mapped and unmapped on their own again.

  For the host copies of a checkpoint being saved: kept in the heap, they
  would sit where the next step's buffer goes and make the heap grow by a
  whole buffer (benchmarks/README.md#the-quick-run).
  """
  keeping = _keeping
  if keeping:
    keep_freed_memory(False)
  try:
    yield
  finally:
    if keeping:
      keep_freed_memory(True)


class KeptMemoryStep:
  """A compiled step that runs in the memory the process keeps.

  Made right after compiling, it returns the compiler's memory before the
  step first runs: compiled on its first call instead, the step's buffers
  were allocated while the compiler's memory was still held (peak RSS +0.5
  GB at batch 16). On one CPU device each run takes one temporary buffer
  of `buffer_bytes` from malloc, on the calling thread, and `make_room`
  runs before each run.
  """

  def __init__(self, compiled, *, one_cpu_device: bool):
    self.compiled = compiled
    self.buffer_bytes = (
      compiled.memory_analysis().temp_size_in_bytes if one_cpu_device else 0
    )
    release_freed_memory()

  def __call__(self, *args):
    make_room(self.buffer_bytes)
    return self.compiled(*args)


@contextlib.contextmanager
def other_phase():
  """Inside, another phase's steps run (an evaluation within training):
  the memory kept for each phase is returned on entering and on leaving,
  so neither phase's buffers stay beside the other's."""
  release_freed_memory()
  try:
    yield
  finally:
    release_freed_memory()


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
