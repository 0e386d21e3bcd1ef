"""DRML's region layer: one BatchNorm + ReLU + 3x3 conv (+ residual) per patch.

The feature map is cut into a grid of equal patches (row-major). Each patch
has its own parameters, stacked on a leading region axis, and the per-region
unit is applied with `nnx.vmap` over the patches. The 3x3 convolution is
zero-padded inside its patch, so a patch never sees its neighbours.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from flax import nnx

REGION_BN_VARIANTS = ("affine", "batch_stats")
REGION_CONV_IMPLS = ("auto", "lax", "matmul")


def resolve_region_conv(impl: str) -> str:
  """Picks the faster 3x3 conv form for the current backend when `impl` is "auto".

  On CPU the matmul form, since XLA:CPU runs the vmapped (grouped)
  convolution's backward pass far slower (benchmarks/README.md);
  accelerators get the library convolution.
  """
  if impl not in REGION_CONV_IMPLS:
    raise ValueError(
      f"region_conv={impl!r}: expected one of {REGION_CONV_IMPLS}"
    )
  if impl == "auto":
    return "matmul" if jax.default_backend() == "cpu" else "lax"
  return impl


def conv3x3_matmul(
  x: jax.Array, kernel: jax.Array, bias: jax.Array
) -> jax.Array:
  """SAME 3x3 convolution as im2col + one matmul: x (B,H,W,C), kernel HWIO."""
  _, height, width, _ = x.shape
  padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  columns = jnp.concatenate(
    [
      padded[:, dy : dy + height, dx : dx + width, :]
      for dy in range(3)
      for dx in range(3)
    ],
    axis=-1,
  )
  return columns @ kernel.reshape(-1, kernel.shape[-1]) + bias


class RegionBatchNorm(nnx.Module):
  """BatchNorm over (batch, height, width) with PyTorch's semantics.

  With `track_running_stats` it keeps running mean and UNBIASED running
  variance (as `torch.nn.BatchNorm2d` does) and uses them when
  `use_running_average` is set by `model.eval()`. Without, it normalises with
  the batch statistics in every mode (the authors' Caffe variant).
  """

  def __init__(
    self,
    channels: int,
    *,
    affine: bool,
    track_running_stats: bool,
    momentum: float = 0.1,
    epsilon: float = 1e-5,
    param_dtype=jnp.float32,
  ):
    self.momentum = momentum
    self.epsilon = epsilon
    self.use_running_average = False
    self.scale = (
      nnx.Param(jnp.ones((channels,), param_dtype)) if affine else None
    )
    self.bias = (
      nnx.Param(jnp.zeros((channels,), param_dtype)) if affine else None
    )
    self.track_running_stats = track_running_stats
    if track_running_stats:
      self.mean = nnx.BatchStat(jnp.zeros((channels,), param_dtype))
      self.var = nnx.BatchStat(jnp.ones((channels,), param_dtype))
      self.num_batches_tracked = nnx.BatchStat(jnp.zeros((), jnp.int32))

  def __call__(self, x: jax.Array) -> jax.Array:
    if self.track_running_stats and self.use_running_average:
      mean, var = self.mean[...], self.var[...]
    else:
      mean = x.mean(axis=(0, 1, 2))
      var = jnp.square(x - mean).mean(axis=(0, 1, 2))
      if self.track_running_stats:
        n = x.shape[0] * x.shape[1] * x.shape[2]
        m = self.momentum
        self.mean[...] = (1 - m) * self.mean[...] + m * mean
        self.var[...] = (1 - m) * self.var[...] + m * var * (n / max(n - 1, 1))
        self.num_batches_tracked[...] = self.num_batches_tracked[...] + 1
    y = (x - mean) * jax.lax.rsqrt(var + self.epsilon)
    if self.scale is not None:
      y = y * self.scale[...] + self.bias[...]
    return y


class RegionUnit(nnx.Module):
  """One region's `patch + conv3x3(relu(bn(patch)))`."""

  def __init__(
    self,
    channels: int,
    *,
    region_bn: str,
    conv_impl: str,
    kernel_init: Callable,
    bias_init: Callable,
    dtype=None,
    param_dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    self.conv_impl = conv_impl
    self.bn = RegionBatchNorm(
      channels,
      affine=region_bn == "affine",
      track_running_stats=region_bn == "affine",
      param_dtype=param_dtype,
    )
    self.conv = nnx.Conv(
      channels,
      channels,
      (3, 3),
      padding=1,
      kernel_init=kernel_init,
      bias_init=bias_init,
      dtype=dtype,
      param_dtype=param_dtype,
      rngs=rngs,
    )

  def __call__(self, patch: jax.Array) -> jax.Array:
    h = nnx.relu(self.bn(patch))
    if self.conv_impl == "lax":
      return patch + self.conv(h)
    kernel, bias = self.conv.kernel[...], self.conv.bias[...]
    if self.conv.dtype is not None:
      h, kernel, bias = (a.astype(self.conv.dtype) for a in (h, kernel, bias))
    return patch + conv3x3_matmul(h, kernel, bias)


def split_patches(x: jax.Array, grid: tuple[int, int]) -> jax.Array:
  """(B,H,W,C) -> (rows*cols, B, H/rows, W/cols, C), regions row-major."""
  b, h, w, c = x.shape
  rows, cols = grid
  if h % rows or w % cols:
    raise ValueError(
      f"region grid {rows}x{cols} does not divide the {h}x{w} feature map: "
      "choose a grid whose sizes divide the map (8x8 for 170x170 inputs)"
    )
  x = x.reshape(b, rows, h // rows, cols, w // cols, c)
  return x.transpose(1, 3, 0, 2, 4, 5).reshape(
    rows * cols, b, h // rows, w // cols, c
  )


def merge_patches(patches: jax.Array, grid: tuple[int, int]) -> jax.Array:
  """Inverse of `split_patches`."""
  rows, cols = grid
  _, b, ph, pw, c = patches.shape
  x = patches.reshape(rows, cols, b, ph, pw, c).transpose(2, 0, 3, 1, 4, 5)
  return x.reshape(b, rows * ph, cols * pw, c)


class RegionLayer(nnx.Module):
  """A grid of independent `RegionUnit`s, parameters stacked on axis 0."""

  def __init__(
    self,
    channels: int,
    *,
    grid=(8, 8),
    region_bn: str = "affine",
    region_conv: str = "auto",
    kernel_init: Callable,
    bias_init: Callable,
    dtype=None,
    param_dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    if region_bn not in REGION_BN_VARIANTS:
      raise ValueError(
        f"region_bn={region_bn!r}: expected one of {REGION_BN_VARIANTS}"
      )
    self.grid = tuple(grid)
    conv_impl = resolve_region_conv(region_conv)

    @nnx.split_rngs(splits=self.grid[0] * self.grid[1])
    @nnx.vmap(in_axes=(0,), out_axes=0)
    def make_units(rngs):
      return RegionUnit(
        channels,
        region_bn=region_bn,
        conv_impl=conv_impl,
        kernel_init=kernel_init,
        bias_init=bias_init,
        dtype=dtype,
        param_dtype=param_dtype,
        rngs=rngs,
      )

    self.units = make_units(rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    @nnx.vmap(in_axes=(0, 0), out_axes=0)
    def apply_units(unit, patch):
      return unit(patch)

    return merge_patches(
      apply_units(self.units, split_patches(x, self.grid)), self.grid
    )
