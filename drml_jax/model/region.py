"""DRML's region layer: one BatchNorm + ReLU + 3x3 conv (+ residual) per patch.

The feature map is cut into a grid of equal patches (row-major). Each patch
has its own parameters, stacked on a leading region axis, and the per-region
unit is applied with `nnx.vmap` over the patches. The 3x3 convolution is
zero-padded inside its patch, so a patch never sees its neighbours.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from drml_jax.model.convs import conv_chunked

REGION_BN_VARIANTS = ("affine", "batch_stats")
REGION_CONV_IMPLS = ("auto", "lax", "unrolled")


def resolve_region_conv(impl: str) -> str:
  """The 3x3 conv form "auto" stands for on the current backend.

  On CPU "unrolled": XLA:CPU runs a vmapped (grouped) convolution's backward
  pass far slower than one plain convolution per region
  (benchmarks/README.md#cpu-figures). Accelerators get the library's grouped
  convolution.
  """
  if impl not in REGION_CONV_IMPLS:
    raise ValueError(
      f"region_conv={impl!r}: expected one of {REGION_CONV_IMPLS}"
    )
  if impl == "auto":
    return "unrolled" if jax.default_backend() == "cpu" else "lax"
  return impl


def _conv3x3(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return conv_chunked(x, kernel, 1, "SAME")


def _unrolled_under_vmap(fun: Callable) -> Callable:
  """`fun`, whose vmap calls it once per mapped slice, unrolled in the program.

  The slices come from `lax.split`, whose transpose is one concatenate
  (indexing each slice would transpose to one full-size pad per slice).
  """
  fun = jax.custom_batching.custom_vmap(fun)

  @fun.def_vmap
  def per_slice(axis_size, in_batched, *args):
    slices = [
      [a[0] for a in jax.lax.split(arg, [1] * axis_size)]
      if batched
      else [arg] * axis_size
      for arg, batched in zip(args, in_batched)
    ]
    outs = [fun(*args_of_one) for args_of_one in zip(*slices)]
    stacked = jax.tree.map(lambda *out: jnp.stack(out), *outs)
    return stacked, jax.tree.map(lambda _: True, stacked)

  return fun


_conv3x3_forward = _unrolled_under_vmap(_conv3x3)


@_unrolled_under_vmap
def _conv3x3_backward(x, kernel, cotangent):
  return jax.vjp(_conv3x3, x, kernel)[1](cotangent)


@jax.custom_vjp
def conv3x3_unrolled(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """SAME 3x3 convolution, x (B,H,W,C), kernel HWIO, with no bias.

  Under `vmap` over the regions, its forward and its backward pass each run
  one plain `lax.conv` per region, unrolled, instead of one grouped
  convolution; each region's kernel gradient is summed over batch chunks
  (`convs.conv_chunked`: past 16 images XLA:CPU's kernel-gradient
  convolution slows down per image, benchmarks/README.md#log).
  """
  return _conv3x3_forward(x, kernel)


conv3x3_unrolled.defvjp(
  lambda x, kernel: (_conv3x3_forward(x, kernel), (x, kernel)),
  lambda residuals, cotangent: _conv3x3_backward(*residuals, cotangent),
)


def batch_statistics(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Mean and (biased) variance over (B, H, W), per channel."""
  mean = x.mean(axis=(0, 1, 2))
  return mean, jnp.square(x - mean).mean(axis=(0, 1, 2))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def standardize(x: jax.Array, epsilon: float) -> jax.Array:
  """(x - mean) / sqrt(var + epsilon) with x's statistics over (B, H, W).

  The backward pass is the closed form, two sums and one elementwise pass:
  autodiff of the statistics takes six sums over the map, each a full
  pass over it (benchmarks/README.md#log).
  """
  return _standardize_forward(x, epsilon)[0]


def _standardize_forward(x, epsilon):
  mean, var = batch_statistics(x)
  inverse_std = jax.lax.rsqrt(var + epsilon)
  standardized = (x - mean) * inverse_std
  return standardized, (standardized, inverse_std)


def _standardize_backward(epsilon, residuals, cotangent):
  del epsilon
  standardized, inverse_std = residuals
  mean = lambda y: y.mean(axis=(0, 1, 2))
  return (
    inverse_std
    * (
      cotangent
      - mean(cotangent)
      - standardized * mean(cotangent * standardized)
    ),
  )


standardize.defvjp(_standardize_forward, _standardize_backward)


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
      y = (x - self.mean[...]) * jax.lax.rsqrt(self.var[...] + self.epsilon)
    else:
      y = standardize(x, self.epsilon)
      if self.track_running_stats:
        # The same sums as standardize's: XLA computes them once (the
        # compiled step holds two of these reductions, not four).
        mean, var = batch_statistics(x)
        n = x.shape[0] * x.shape[1] * x.shape[2]
        m = self.momentum
        self.mean[...] = (1 - m) * self.mean[...] + m * mean
        self.var[...] = (1 - m) * self.var[...] + m * var * (n / max(n - 1, 1))
        self.num_batches_tracked[...] = self.num_batches_tracked[...] + 1
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
    h, kernel, bias = nnx.nn.dtypes.promote_dtype(
      (h, self.conv.kernel[...], self.conv.bias[...]), dtype=self.conv.dtype
    )
    return patch + conv3x3_unrolled(h, kernel) + bias


def split_patches(
  x: jax.Array, grid: tuple[int, int], overlap: int = 0
) -> jax.Array:
  """(B,H,W,C) -> (rows*cols, B, ph + overlap, pw + overlap, C), row-major.

  The map less `overlap` is cut into patches of ph x pw, and each patch is
  taken with `overlap` more rows and columns after it. With an overlap of
  kernel size - 1, the patches are the input windows of a VALID convolution
  whose output is cut into the grid: the convolution of each window is that
  output's patch.
  """
  b, h, w, c = x.shape
  rows, cols = grid
  if (h - overlap) % rows or (w - overlap) % cols:
    raise ValueError(
      f"region grid {rows}x{cols} does not divide the {h - overlap}x"
      f"{w - overlap} feature map: choose a grid whose sizes divide the map "
      "(8x8 for 170x170 inputs)"
    )
  ph, pw = (h - overlap) // rows, (w - overlap) // cols
  if overlap:
    row_windows = (np.arange(rows) * ph)[:, None] + np.arange(ph + overlap)
    col_windows = (np.arange(cols) * pw)[:, None] + np.arange(pw + overlap)
    x = x[:, row_windows][:, :, :, col_windows]
  else:
    x = x.reshape(b, rows, ph, cols, pw, c)
  return x.transpose(1, 3, 0, 2, 4, 5).reshape(
    rows * cols, b, ph + overlap, pw + overlap, c
  )


def merge_patches(patches: jax.Array, grid: tuple[int, int]) -> jax.Array:
  """Inverse of `split_patches` without overlap."""
  rows, cols = grid
  _, b, ph, pw, c = patches.shape
  x = patches.reshape(rows, cols, b, ph, pw, c).transpose(2, 0, 3, 1, 4, 5)
  return x.reshape(b, rows * ph, cols * pw, c)


def per_patch(fun: Callable, patches: jax.Array) -> jax.Array:
  """`fun` of a (N,H,W,C) batch applied to (R,B,H,W,C) patches, as one batch."""
  regions, b = patches.shape[:2]
  y = fun(patches.reshape(regions * b, *patches.shape[2:]))
  return y.reshape(regions, b, *y.shape[1:])


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

  def apply_to_patches(self, patches: jax.Array) -> jax.Array:
    """(rows*cols, B, h, w, C) patches -> the units' outputs, same layout."""

    @nnx.vmap(in_axes=(0, 0), out_axes=0)
    def apply_units(unit, patch):
      return unit(patch)

    return apply_units(self.units, patches)

  def __call__(self, x: jax.Array) -> jax.Array:
    return merge_patches(
      self.apply_to_patches(split_patches(x, self.grid)), self.grid
    )
