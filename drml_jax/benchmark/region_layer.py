"""Forward+backward time of the region layer alone, batch 8, 160x160x32.

  python -m drml_jax.benchmark.region_layer [--batch 8] [--repeats 5]

Times the Flax region layer in both 3x3 conv forms (`unrolled`, `lax`), the
PyTorch ports' loop as YIUYA/DRML runs it (`torch`: 64 modules on split,
contiguous patches, `reference_torch.port`) and reference_torch's loop over
sliced views (`torch-views`) on the current CPU; median milliseconds after
one warm-up call.
"""

from __future__ import annotations

import argparse
import sys

import jax
import jax.numpy as jnp
import torch
from flax import nnx

from drml_jax.benchmark.timing import timed_steps
from drml_jax.model.region import RegionLayer
from reference_torch.model import RegionLayer as TorchRegionLayer
from reference_torch.port import PortRegionLayer

TORCH_FORMS = {"torch": PortRegionLayer, "torch-views": TorchRegionLayer}
FORMS = ("unrolled", "lax", *TORCH_FORMS)


def jax_step(conv, x):
  """A jitted gradient of sum(layer(x)**2) for the Flax layer with `conv`."""
  layer = RegionLayer(
    32,
    region_conv=conv,
    kernel_init=nnx.initializers.lecun_normal(),
    bias_init=nnx.initializers.zeros,
    rngs=nnx.Rngs(0),
  )
  graphdef, params, rest = nnx.split(layer, nnx.Param, ...)

  @jax.jit
  def grads(params, rest, x):
    def loss(params):
      return jnp.sum(nnx.merge(graphdef, params, rest, copy=True)(x) ** 2)

    return jax.grad(loss)(params)

  return lambda: jax.block_until_ready(grads(params, rest, x))


def torch_step(layer_class, x):
  """The gradients of sum(layer(x)**2) for a PyTorch region layer class."""
  layer = layer_class(32)

  def step():
    layer.zero_grad()
    (layer(x) ** 2).sum().backward()

  return step


def main(argv: list[str] | None = None) -> int:
  """Prints each form's median forward+backward time; returns the exit status."""
  parser = argparse.ArgumentParser(
    prog="python -m drml_jax.benchmark.region_layer",
    description=__doc__.splitlines()[0],
  )
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument(
    "--forms", default=",".join(FORMS), help=f"any of {', '.join(FORMS)}"
  )
  args = parser.parse_args(argv)
  forms = args.forms.split(",")
  if set(forms) - set(FORMS):
    parser.error(
      f"--forms {args.forms!r}: expected a comma-separated list of {', '.join(FORMS)}"
    )
  x = jax.random.normal(jax.random.key(0), (args.batch, 160, 160, 32))
  for form in forms:
    if form in TORCH_FORMS:
      fn = torch_step(
        TORCH_FORMS[form],
        torch.from_numpy(jax.device_get(x).transpose(0, 3, 1, 2).copy()),
      )
    else:
      fn = jax_step(form, x)
    ms = 1000 * timed_steps(fn, 1, args.repeats)
    print(f"{form:>11}: {ms:9.1f} ms forward+backward, batch {args.batch}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
