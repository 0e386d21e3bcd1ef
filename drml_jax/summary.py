"""Prints DRML's layer table with output shapes and parameter counts.

python -m drml_jax.summary [--num-aus 12] [--region-bn affine] [--no-region-layer]
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
from flax import nnx

from drml_jax import cli
from drml_jax.model.network import DRML, count_parameters
from drml_jax.model.region import REGION_BN_VARIANTS


def layer_table(model: DRML, input_size: int) -> list[tuple[str, tuple, int]]:
  """(layer, output shape without batch, parameter count) for each layer,
  of a model in the "image" region layout (patches would add a region axis)."""
  model.eval()

  def outputs(model, x):
    for layer in model.layers():
      x = layer.apply(x)
      yield x

  images = jax.ShapeDtypeStruct((1, input_size, input_size, 3), jnp.float32)
  shapes = nnx.eval_shape(lambda m, x: list(outputs(m, x)), model, images)
  return [
    (
      layer.name,
      shape.shape[1:],
      count_parameters(layer.module) if layer.module else 0,
    )
    for layer, shape in zip(model.layers(), shapes)
  ]


@cli.command
def main(argv: list[str]) -> int:
  parser = cli.parser("python -m drml_jax.summary", __doc__)
  parser.add_argument("--num-aus", type=int, default=12)
  parser.add_argument(
    "--region-bn", default="affine", choices=REGION_BN_VARIANTS
  )
  parser.add_argument("--no-region-layer", action="store_true")
  parser.add_argument("--input-size", type=int, default=170)
  args = parser.parse_args(argv)
  model = DRML(
    args.num_aus,
    region_bn=args.region_bn,
    region_layer=not args.no_region_layer,
    region_layout="image",
    input_size=args.input_size,
    rngs=nnx.Rngs(0),
  )
  print(f"{'layer':<24}{'output':>18}{'parameters':>14}")
  for name, shape, params in layer_table(model, args.input_size):
    print(f"{name:<24}{'x'.join(map(str, shape)):>18}{params:>14,}")
  print(f"{'total':<24}{'':>18}{count_parameters(model):>14,}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
