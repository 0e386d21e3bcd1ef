"""Prints DRML's layer table with output shapes and parameter counts.

  python -m drml_jax.summary [--num-aus 12] [--region-bn affine] [--no-region-layer]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
from flax import nnx

from drml_jax.model import DRML, count_parameters, local_response_norm


def _params(module) -> int:
  return sum(p.size for p in jax.tree.leaves(nnx.state(module, nnx.Param)))


def layer_table(model: DRML, input_size: int = 170) -> list[tuple[str, tuple, int]]:
  """(layer, output shape without batch, parameter count) for each layer."""
  x = jax.ShapeDtypeStruct((1, input_size, input_size, 3), jnp.float32)
  rows = []

  def record(name, layer):
    nonlocal x
    if isinstance(layer, nnx.Module):
      x = nnx.eval_shape(lambda module, h: module(h), layer, x)
      rows.append((name, x.shape[1:], _params(layer)))
    else:
      x = jax.eval_shape(layer, x)
      rows.append((name, x.shape[1:], 0))

  model.eval()
  record("conv1 11x11", model.conv1)
  if model.region is not None:
    rows_, cols = model.region.grid
    record(f"region layer {rows_}x{cols}", model.region)
  record("relu + max-pool 2x2", lambda h: nnx.max_pool(nnx.relu(h), (2, 2), strides=(2, 2)))
  record("local response norm", local_response_norm)
  for name, layer in (("conv2 8x8", model.conv2), ("conv3 8x8", model.conv3),
                      ("conv4 6x6 /2", model.conv4), ("conv5 5x5", model.conv5)):
    record(name + " + relu", layer)
  record("flatten", lambda h: h.reshape(h.shape[0], -1))
  record("fc1 + relu + dropout", model.fc1)
  record("fc2 + relu + dropout", model.fc2)
  record("fc3 (logits)", model.fc3)
  return rows


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description="DRML layer table")
  parser.add_argument("--num-aus", type=int, default=12)
  parser.add_argument("--region-bn", default="affine", choices=("affine", "batch_stats"))
  parser.add_argument("--no-region-layer", action="store_true")
  parser.add_argument("--input-size", type=int, default=170)
  args = parser.parse_args(argv)
  model = DRML(args.num_aus, region_bn=args.region_bn,
               use_region_layer=not args.no_region_layer,
               input_size=args.input_size, rngs=nnx.Rngs(0))
  print(f"{'layer':<24}{'output':>18}{'parameters':>14}")
  for name, shape, params in layer_table(model, args.input_size):
    print(f"{name:<24}{'x'.join(map(str, shape)):>18}{params:>14,}")
  print(f"{'total':<24}{'':>18}{count_parameters(model):>14,}")


if __name__ == "__main__":
  main()
