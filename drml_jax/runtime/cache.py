"""What the commands keep between runs, to start in seconds: compiled XLA
programs, and predictors exported with their weights.

XLA compiles each jitted program the first time a process runs it: seconds
on a CPU for DRML's forward pass, more for a training step. With JAX's
persistent compilation cache, a program compiled once on a machine is read
back by every later run. `drml_jax.predict` also keeps each model it
predicted with, exported (`drml_jax.predict.saved_predictor`), so that a
second run reads neither the checkpoint nor Flax.

Where it lives, first match wins:
  DRML_CACHE=off       nothing kept (also "0", "false", "no");
  DRML_CACHE=DIR       under DIR;
  otherwise            $XDG_CACHE_HOME/drml, else ~/.cache/drml.
Compiled programs go to its jax/ (unless JAX_COMPILATION_CACHE_DIR says
otherwise), predictors to its predictors/, the live commands' ONNX exports
to its onnx/. Entries are keyed by what made
them (program, JAX version, device; checkpoint files, model code), so a
stale one is never used. Delete the folder to reclaim its space.
"""

from __future__ import annotations

import contextlib
import os
import shutil

import jax

SETTING = "DRML_CACHE"
OFF = ("off", "0", "false", "no")
# Programs that compile faster than this are not worth a file.
MIN_COMPILE_SECONDS = 0.2


def root() -> str | None:
  """The cache folder the module docstring names, or None when it is off."""
  setting = os.environ.get(SETTING, "")
  if setting.lower() in OFF:
    return None
  if setting:
    return setting
  cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(
    os.path.expanduser("~"), ".cache"
  )
  return os.path.join(cache, "drml")


def folder(name: str) -> str | None:
  """The cache's subfolder `name`, or None when the cache is off."""
  base = root()
  return None if base is None else os.path.join(base, name)


def enable_compilation_cache() -> str | None:
  """Turns JAX's persistent compilation cache on; returns its folder."""
  if jax.config.jax_compilation_cache_dir:
    return jax.config.jax_compilation_cache_dir
  programs = folder("jax")
  if programs is None:
    return None
  jax.config.update("jax_compilation_cache_dir", programs)
  jax.config.update(
    "jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS
  )
  return programs


def keep_newest(folder: str, count: int) -> None:
  """Removes all but the `count` most recently used entries (files or
  folders) of `folder`; ones being written (hidden, or .partial) are left."""
  names = [
    name
    for name in os.listdir(folder)
    if not name.startswith(".") and not name.endswith(".partial")
  ]
  names.sort(key=lambda n: os.stat(os.path.join(folder, n)).st_mtime_ns)
  for name in names[:-count]:
    path = os.path.join(folder, name)
    if os.path.isdir(path):
      shutil.rmtree(path, ignore_errors=True)
    else:
      with contextlib.suppress(OSError):
        os.remove(path)
