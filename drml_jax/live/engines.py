"""The model stage of live prediction, on the engine that is fastest here.

  predictor, line = engines.load(workdir="workdirs/quick", engine="auto")

Live frames come one face at a time, where a batch's fixed costs weigh most.
Two engines run the same network: JAX's exported program (`Predictor`) and
onnxruntime on the model exported to ONNX (`OnnxPredictor`), whose
probabilities agree within the export tests' tolerance. "auto" times both
on one face on this machine, after a warm-up, and keeps the faster: a
choice per platform made by measurement, not by a table
(benchmarks/README.md#live gives the figures). The ONNX file of a work
directory or checkpoint is exported once, through PyTorch (tens of seconds,
in a process of its own), and kept in the cache (`drml_jax.runtime.cache`,
folder onnx/) under the same key as its saved predictor, so later runs
start at once.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from data_pipeline.sources.base import IMAGE_SIZE
from drml_jax import cli
from drml_jax.predict import onnx_predictor, saved_predictor
from drml_jax.predict.predictor import BatchedPredictor, require_intensity
from drml_jax.runtime import cache

ENGINES = ("auto", "jax", "onnxruntime")
TIMED_CALLS = 7  # calls on one face per engine; their median decides


def onnx_file(
  workdir: str | None, checkpoint: str | None, aus: tuple[int, ...] | None
) -> str:
  """The cached ONNX export of a work directory or checkpoint, made if new
  by `python -m drml_jax.export` in a process of its own: PyTorch, which the
  export goes through, never enters a live process (it would keep about a
  gigabyte of memory there)."""
  folder = cache.folder("onnx")
  if folder is None:
    folder = tempfile.mkdtemp(prefix="drml-onnx-")
  os.makedirs(folder, exist_ok=True)
  path = os.path.join(
    folder, saved_predictor.entry_key(workdir, checkpoint, aus) + ".onnx"
  )
  if os.path.isfile(path):
    os.utime(path)  # most recently used
    return path
  model = ["--workdir", workdir] if workdir else ["--checkpoint", checkpoint]
  if aus:
    model += ["--aus", ",".join(map(str, aus))]
  done = subprocess.run(
    [
      sys.executable,
      "-m",
      "drml_jax.export",
      *model,
      "--format",
      "onnx",
      "--out",
      path,
    ],
    capture_output=True,
    text=True,
    check=False,
  )
  if done.returncode:
    last = (done.stderr.strip().splitlines() or ["no message"])[-1]
    raise ValueError(f"exporting the model to ONNX failed: {last}")
  cache.keep_newest(folder, saved_predictor.MAX_ENTRIES)
  return path


def _cached_onnx(workdir, checkpoint, aus, batch_size: int):
  """onnxruntime on the cached export, described as the model it came from."""
  predictor = onnx_predictor.load(
    onnx_file(workdir, checkpoint, aus), batch_size
  )
  predictor.description = f"{predictor.exported_from}, on onnxruntime"
  return predictor


def milliseconds_per_face(predictor: BatchedPredictor) -> float:
  """The median time of `predictor` on one face, after a warm-up."""
  face = np.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
  predictor(face)
  times = []
  for _ in range(TIMED_CALLS):
    start = time.perf_counter()
    predictor(face)
    times.append(time.perf_counter() - start)
  return 1000 * float(np.median(times))


def add_flags(parser: argparse.ArgumentParser) -> None:
  """The live commands' model flags: predict's, and --engine."""
  cli.add_model_flags(parser, onnx=True)
  parser.add_argument(
    "--engine",
    choices=ENGINES,
    default="auto",
    help="what runs the model: auto (default) times both on this machine"
    " and keeps the faster",
  )


def from_flags(args: argparse.Namespace) -> tuple[BatchedPredictor, str]:
  """`load` of the model `add_flags`' flags name."""
  cli.check_model_flags(args)
  return load(
    workdir=args.workdir,
    checkpoint=args.checkpoint,
    onnx=args.onnx,
    aus=args.aus,
    engine=args.engine,
    intensity=args.intensity,
  )


def load(
  *,
  workdir: str | None = None,
  checkpoint: str | None = None,
  onnx: str | None = None,
  aus: tuple[int, ...] | None = None,
  engine: str = "auto",
  batch_size: int = 8,
  intensity: bool = False,
) -> tuple[BatchedPredictor, str]:
  """(the predictor to run live, a line saying which engine and why);
  with `intensity` (--intensity), ValueError in one line for a model
  without the intensity head, checked on the first engine loaded."""

  def checked(predictor: BatchedPredictor) -> BatchedPredictor:
    if intensity:
      require_intensity(predictor.has_intensity, predictor.description)
    return predictor

  if onnx:
    if engine == "jax":
      raise ValueError(
        f"--engine jax runs a checkpoint, and {onnx} is an ONNX file: give"
        " --workdir or --checkpoint, or leave --engine out"
      )
    predictor = checked(onnx_predictor.load(onnx, batch_size))
    return predictor, f"model stage: onnxruntime ({onnx})"
  if engine == "onnxruntime":
    return checked(_cached_onnx(workdir, checkpoint, aus, batch_size)), (
      "model stage: onnxruntime"
    )
  jax_predictor = checked(
    saved_predictor.load_predictor(
      workdir=workdir, checkpoint=checkpoint, aus=aus, batch_size=batch_size
    )
  )
  if engine == "jax":
    return jax_predictor, "model stage: jax"
  onnx_runner = _cached_onnx(workdir, checkpoint, aus, batch_size)
  timed = {
    "jax": (milliseconds_per_face(jax_predictor), jax_predictor),
    "onnxruntime": (milliseconds_per_face(onnx_runner), onnx_runner),
  }
  fastest = min(timed, key=lambda name: timed[name][0])
  figures = ", ".join(f"{name} {ms:.1f} ms" for name, (ms, _) in timed.items())
  return timed[fastest][1], f"model stage: {fastest} (one face: {figures})"
