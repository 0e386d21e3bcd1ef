"""Forward+backward time of the region layer alone, batch 8, 160x160x32.

  python benchmarks/region_layer.py [--batch 8] [--repeats 5]

Times the Flax region layer in both 3x3 conv forms and the PyTorch ports'
form (64 modules in a Python loop) on the current CPU; median milliseconds.
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import torch
from flax import nnx

from drml_jax.region import RegionLayer
from reference_torch.model import RegionLayer as TorchRegionLayer


def median_ms(fn, repeats):
  fn()  # warm-up (and compilation)
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(1000 * (time.perf_counter() - start))
  return statistics.median(times)


def jax_step(conv, x):
  layer = RegionLayer(32, region_conv=conv, kernel_init=nnx.initializers.lecun_normal(),
                      bias_init=nnx.initializers.zeros, rngs=nnx.Rngs(0))
  graphdef, params, rest = nnx.split(layer, nnx.Param, ...)

  @jax.jit
  def grads(params, rest, x):
    def loss(params):
      return jnp.sum(nnx.merge(graphdef, params, rest, copy=True)(x) ** 2)
    return jax.grad(loss)(params)

  return lambda: jax.block_until_ready(grads(params, rest, x))


def torch_step(x):
  layer = TorchRegionLayer(32)

  def step():
    layer.zero_grad()
    (layer(x) ** 2).sum().backward()

  return step


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--forms", default="matmul,lax,torch")
  args = parser.parse_args()
  x = jax.random.normal(jax.random.key(0), (args.batch, 160, 160, 32))
  for form in args.forms.split(","):
    if form == "torch":
      fn = torch_step(torch.from_numpy(jax.device_get(x).transpose(0, 3, 1, 2).copy()))
    else:
      fn = jax_step(form, x)
    print(f"{form:>7}: {median_ms(fn, args.repeats):9.1f} ms forward+backward, batch {args.batch}")


if __name__ == "__main__":
  main()
