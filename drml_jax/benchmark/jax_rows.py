"""JAX train and eval rows, the model's FLOPs, and the input pipeline rows.

Inputs live on the device as the trainer's steps receive them: uint8 images
(170x170, resize mode's) and their crop windows, made into the model's
float32 inputs inside the step (`model_inputs.ModelInputs`); compile time
(lowering + XLA compile) is reported apart. FLOPs per image come from XLA's
cost analysis of the lowered train and eval steps with direct convolutions
(the model's FLOPs, the same whatever form runs), so achieved FLOP/s compare
across forms.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from data_pipeline.model_inputs import INPUT_SIZE, ModelInputs
from drml_jax.benchmark.timing import (
  LEARNING_RATE,
  MOMENTUM,
  WEIGHT_DECAY,
  Row,
  failure,
  fill_rate,
  timed_steps,
)
from drml_jax.model import train_state
from drml_jax.model.network import DRML
from drml_jax.train.optim import make_optimizer
from drml_jax.train.steps import make_eval_step, make_train_step


@dataclasses.dataclass
class JaxSteps:
  """A model's state and its jitted steps, as the rows call them.

  `train(*train_state, batch)` returns the new train state then the loss;
  `evaluate(*eval_state, batch)` returns the eval outputs (`jax_batch`). `eval_state` shares its buffers with `train_state`, which `train`
  donates (unless built with donate=False): time one or the other.
  """

  train_state: tuple
  train: Callable
  eval_state: tuple
  evaluate: Callable


def jax_steps(
  args, dtype: str, conv: str, region_conv: str, donate: bool = True
) -> JaxSteps:
  """The one place the rows build a model and its steps (drml_jax.train.steps)."""
  model = DRML(
    args.num_aus,
    input_size=args.input_size,
    grid=args.grid,
    conv=conv,
    region_conv=region_conv,
    dtype=jnp.dtype(dtype),
    rngs=nnx.Rngs(args.seed),
  )
  tx = make_optimizer(
    LEARNING_RATE, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY
  )
  graphdefs, state = train_state.create(model, tx)
  prepare = model_inputs(args)
  return JaxSteps(
    (state,),
    make_train_step(graphdefs.train, tx, prepare=prepare, donate=donate),
    (train_state.model_state(state),),
    make_eval_step(graphdefs.eval, prepare=prepare),
  )


def model_inputs(args) -> ModelInputs:
  """The rows' inputs as the seed preset makes them: RGB / 255, resized to
  the model's input size."""
  return ModelInputs("resize", "rgb", input_size=args.input_size)


def jax_batch(batch: int, num_aus: int, seed: int = 0) -> dict:
  """A batch as the pipeline yields it, on the device: random uint8
  170x170 images, their (0, 0, 0) windows, +-1 labels, all valid."""
  rng = np.random.default_rng(seed)
  return {
    "image": jnp.asarray(
      rng.integers(0, 256, (batch, INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
    ),
    "window": jnp.zeros((batch, 3), jnp.int32),
    "labels": jnp.asarray(
      rng.choice(np.array([-1, 1], np.int8), (batch, num_aus))
    ),
    "valid": jnp.ones((batch,), bool),
  }


def _compiled(jitted, *inputs):
  start = time.perf_counter()
  compiled = jitted.lower(*inputs).compile()
  return compiled, time.perf_counter() - start


def jax_flops_per_image(args) -> dict[str, float]:
  """Train and eval FLOPs per image: XLA's cost analysis of the lowered steps
  (before optimisation, so no compile), with direct-convolution forms."""
  steps = jax_steps(args, "float32", "lax", "unrolled", donate=False)
  batch = jax_batch(args.batch, args.num_aus)
  train = steps.train.lower(*steps.train_state, batch)
  evaluate = steps.evaluate.lower(*steps.eval_state, batch)
  return {
    name: _cost_flops(lowered) / args.batch
    for name, lowered in (("train", train), ("eval", evaluate))
  }


def _cost_flops(lowered) -> float:
  cost = lowered.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older jax: one dict per computation
    cost = cost[0]
  return float(cost["flops"])


def jax_train_row(args, dtype: str, conv: str, region_conv: str) -> Row:
  """Times the JAX train step (plain jit over split NNX state, donated buffers)."""
  row = Row(
    f"JAX train {dtype} conv={conv} region={region_conv}",
    "jax",
    "train",
    dtype,
    {"conv": conv, "region_conv": region_conv},
  )
  steps = jax_steps(args, dtype, conv, region_conv)
  batch = jax_batch(args.batch, args.num_aus)
  state = list(steps.train_state)
  step, row.compile_s = _compiled(steps.train, *state, batch)

  def run():
    outputs = step(*state, batch)
    state[:], loss = outputs[:-1], outputs[-1]
    loss.block_until_ready()

  return fill_rate(row, timed_steps(run, args.warmup, args.steps), args.batch)


def jax_eval_row(args, conv: str, region_conv: str) -> Row:
  """Times the JAX eval step (logits -> confusion counts and loss)."""
  row = Row(
    f"JAX eval float32 conv={conv} region={region_conv}",
    "jax",
    "eval",
    "float32",
    {"conv": conv, "region_conv": region_conv},
  )
  steps = jax_steps(args, "float32", conv, region_conv)
  inputs = (*steps.eval_state, jax_batch(args.batch, args.num_aus))
  step, row.compile_s = _compiled(steps.evaluate, *inputs)
  run = lambda: jax.block_until_ready(step(*inputs))
  return fill_rate(row, timed_steps(run, args.warmup, args.steps), args.batch)


def pipeline_rows(args) -> list[Row]:
  """Images/s of the tf.data pipeline: from the image files, then from its cache."""
  rows = [
    Row(
      f"Input pipeline ({source}), {args.dataset}",
      "pipeline",
      "input",
      "uint8",
      {"cache": source == "cache"},
    )
    for source in ("files", "cache")
  ]
  try:
    from data_pipeline import pipeline, registry, splits  # pylint: disable=import-outside-toplevel

    builder = registry.build(
      args.dataset,
      data_dir=args.data_dir or "",
      dataset_config=args.dataset_config or "",
    )
  except Exception as error:  # pylint: disable=broad-except
    return [failure(row, error, "unavailable") for row in rows]
  for row in rows:
    cache = row.options["cache"]
    batches = pipeline.make_dataset(
      builder, "train", batch_size=args.batch, train=True, cache=cache
    )
    per_epoch = splits.num_batches(
      builder, "train", batch_size=args.batch, train=True
    )
    iterator = iter(batches)
    for _ in range(
      per_epoch if cache else args.warmup
    ):  # a cache fills in one epoch
      next(iterator)
    fill_rate(
      row,
      timed_steps(lambda: next(iterator), 0, args.pipeline_batches),
      args.batch,
    )
    row.options["batches_per_epoch"] = per_epoch
  return rows


def logits_error_vs_float32(args) -> float:
  """Max |bfloat16 logits - float32 logits| / max |float32 logits| of the
  JAX DRML (same float32 parameters, bfloat16 compute) on one random batch."""
  images = model_inputs(args)(jax_batch(args.batch, args.num_aus))
  logits = {}
  for dtype in ("float32", "bfloat16"):
    model = DRML(
      args.num_aus,
      input_size=args.input_size,
      grid=args.grid,
      dtype=jnp.dtype(dtype),
      rngs=nnx.Rngs(args.seed),
    )
    model.eval()
    logits[dtype] = np.asarray(
      nnx.jit(lambda m, x: m(x))(model, images), np.float32
    )
  exact = logits["float32"]
  return float(np.abs(logits["bfloat16"] - exact).max() / np.abs(exact).max())


def add_parity_cost(rows: list[Row], args) -> None:
  """Adds each framework's bfloat16 logits error to its bfloat16 rows."""
  from drml_jax.benchmark import torch_rows  # pylint: disable=import-outside-toplevel

  errors = {"jax": logits_error_vs_float32}
  if any(r.framework == "torch" for r in rows):
    errors["torch"] = torch_rows.logits_error_vs_float32
  for framework, measure in errors.items():
    error = measure(args)
    for row in rows:
      if row.framework == framework and row.dtype == "bfloat16":
        row.options["logits_rel_error_vs_float32"] = error
