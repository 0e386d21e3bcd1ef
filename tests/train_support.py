"""Shared by the training, evaluation and parallelism tests: a tiny run.

Every run is `python -m drml_jax.train` in a subprocess (signals, forced
device counts and jax.distributed need their own process) sharing the
session's persistent compilation cache. The reference run is made once per
session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 600


def tiny_args(workdir, data_dir, *extra: str) -> list[str]:
  """A 12-AU DRML with the intensity head on 66x66 inputs, 16 synthetic
  faces, 2 steps per epoch.

  A 2x2 region grid, not the paper's 8x8: the loop is under test, and each
  region adds its own convolutions to the compiled CPU step (4x4 took 2.3
  s more to compile, in each of the suite's small trainings).
  """
  return [
    "--grid",
    "2,2",
    "--dataset",
    "synthetic",
    "--dataset-config",
    "tiny",
    "--data-dir",
    str(data_dir),
    "--input-size",
    "66",
    "--init",
    "he",
    "--learning-rate",
    "1e-4",
    "--batch-size",
    "8",
    "--eval-batch-size",
    "8",
    "--data-shards",
    "2",
    "--num-epochs",
    "3",
    "--log-every-steps",
    "1",
    "--checkpoint-every-steps",
    "1",
    "--no-progress",
    # The intensity head: the tiny synthetic set codes every intensity.
    "--intensity",
    # All training subjects and the test split every epoch: the tiny set has
    # two training subjects, and these runs test the loop, not selection.
    "--selection",
    "test",
    "--workdir",
    str(workdir),
    *extra,
  ]


def env(devices: int = 1) -> dict:
  """Subprocess environment: CPU, `devices` devices, and the session's
  compilation cache (set in os.environ by conftest's `compilation_cache`)."""
  return {
    **os.environ,
    "JAX_PLATFORMS": "cpu",
    "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
    "PYTHONPATH": str(ROOT),
  }


def start(args: list[str], environment: dict) -> subprocess.Popen:
  return subprocess.Popen(
    [sys.executable, "-m", "drml_jax.train", *args],
    cwd=ROOT,
    env=environment,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )


def run(args: list[str], environment: dict) -> subprocess.CompletedProcess:
  """Runs training to its end; fails the test with its output if it fails."""
  process = start(args, environment)
  out, err = process.communicate(timeout=TIMEOUT_S)
  assert process.returncode == 0, (
    f"training failed ({process.returncode}):\n{out}\n{err}"
  )
  return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def base_dir(tmp_path_factory) -> Path:
  return tmp_path_factory.getbasetemp() / "drml_train"


def compilation_cache(tmp_path_factory) -> dict:
  """JAX's settings of the session's persistent compilation cache.

  pytest-xdist gives each worker its own temporary folder inside the
  session's; the cache sits in the session's, so that all workers share
  it. A size limit turns on JAX's file lock around each read and write,
  which makes the cache safe for several processes at once (without it a
  write is a plain file write that a reader can catch half done).
  """
  session = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):
    session = session.parent
  return {
    "JAX_COMPILATION_CACHE_DIR": str(session / "jax_cache"),
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": 0,
    "JAX_COMPILATION_CACHE_MAX_SIZE": 2**40,
  }


def reference(tmp_path_factory) -> Path:
  """The uninterrupted one-device run (made on first use), with a PyTorch export."""
  base = base_dir(tmp_path_factory)
  workdir = base / "reference"
  if not (workdir / "model.pth").exists():
    base.mkdir(exist_ok=True)
    run(
      tiny_args(
        workdir, base / "tfds", "--export-torch", str(workdir / "model.pth")
      ),
      env(),
    )
  return workdir


def checkpoint_steps(workdir: Path) -> list[int]:
  """Finished checkpoint steps (orbax renames a step's folder when complete)."""
  folder = workdir / "checkpoints"
  return (
    sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())
    if folder.exists()
    else []
  )


def wait_for_checkpoint(
  process: subprocess.Popen, workdir: Path, after: int
) -> int:
  """Waits until a step later than `after` is saved; returns it."""
  deadline = time.time() + TIMEOUT_S
  while time.time() < deadline:
    steps = [s for s in checkpoint_steps(workdir) if s > after]
    if steps:
      return steps[-1]
    assert process.poll() is None, (
      f"training ended early:\n{process.communicate()}"
    )
    time.sleep(0.02)
  raise AssertionError(f"no checkpoint after step {after} in {TIMEOUT_S}s")


def records(workdir: Path, kind: str) -> list[dict]:
  with open(workdir / "metrics.jsonl") as f:
    return [r for r in map(json.loads, f) if r["kind"] == kind]


def train_losses(workdir: Path) -> dict[int, float]:
  return {r["step"]: r["loss"] for r in records(workdir, "train")}


def final_params(workdir: Path) -> dict[str, np.ndarray]:
  """The latest checkpoint's parameters and BatchNorm statistics, flat."""
  from flax import nnx  # pylint: disable=import-outside-toplevel

  from drml_jax.store import checkpoint  # pylint: disable=import-outside-toplevel

  model = checkpoint.restore(workdir / "checkpoints").model
  state = nnx.to_pure_dict(nnx.state(model))
  flat = {}

  def walk(prefix, tree):
    for key, value in tree.items():
      if isinstance(value, dict):
        walk(f"{prefix}{key}/", value)
      else:
        flat[prefix + str(key)] = np.asarray(value)

  walk("", state)
  return flat
