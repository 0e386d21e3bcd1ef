"""The onnxruntime eval row: the JAX model through its ONNX export.

The model the JAX eval row times, exported as `python -m drml_jax.export
--format onnx` exports it (`drml_jax.export.to_onnx`), runs in onnxruntime
on the JAX rows' batch and images. Its compile time is the session's
creation (onnxruntime's graph optimisation); the export's own seconds are
in its options. onnxruntime runs on the CPU whatever JAX's backend,
with the CPU wheel this project installs. --no-torch leaves the row in:
the export needs PyTorch, but times none of it.
"""

from __future__ import annotations

import time

import numpy as np

from drml_jax.benchmark.jax_rows import jax_batch, model_inputs
from drml_jax.benchmark.timing import Row, failure, fill_rate, timed_steps
from drml_jax.model import factory
from drml_jax.predict import metadata
from drml_jax.predict.onnx_predictor import PROVIDERS


def onnxruntime_eval_row(args) -> Row:
  """Times onnxruntime's forward pass of the exported model (logits)."""
  row = Row("onnxruntime eval float32 (ONNX export)", "onnxruntime", "eval")
  try:
    import onnxruntime  # pylint: disable=import-outside-toplevel

    from drml_jax.export import to_onnx  # pylint: disable=import-outside-toplevel
  except ImportError as error:
    return failure(row, error, "unavailable")
  try:
    return _timed(row, args, onnxruntime, to_onnx)
  except Exception as error:  # pylint: disable=broad-except
    return failure(row, error)  # e.g. an operator the exporter lacks


def _timed(row: Row, args, onnxruntime, to_onnx) -> Row:
  model_config = {
    "num_aus": args.num_aus,
    "input_size": args.input_size,
    "grid": list(args.grid),
  }
  start = time.perf_counter()
  program = to_onnx.onnx_program(
    factory.build_model(model_config, seed=args.seed), model_config
  )
  serialized = program.model_proto.SerializeToString()
  row.options["export_s"] = time.perf_counter() - start
  available = onnxruntime.get_available_providers()
  providers = [p for p in PROVIDERS if p in available]
  row.options["providers"] = providers
  start = time.perf_counter()
  session = onnxruntime.InferenceSession(serialized, providers=providers)
  row.compile_s = time.perf_counter() - start
  images = model_inputs(args)(jax_batch(args.batch, args.num_aus))
  feed = {metadata.INPUT_NAME: np.asarray(images)}
  run = lambda: session.run([metadata.OUTPUT_NAME], feed)
  return fill_rate(row, timed_steps(run, args.warmup, args.steps), args.batch)
