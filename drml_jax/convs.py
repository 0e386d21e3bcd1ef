"""DRML's dense VALID convolutions in forms that give the same numbers.

"lax" is `lax.conv_general_dilated` (what `nnx.Conv` runs). "chunked" is the
same convolution with its kernel gradient summed over batch chunks of
`KERNEL_GRAD_CHUNK`: XLA:CPU's kernel-gradient convolution costs more per
image once the batch grows past that. "fft" computes the cross-correlation
with real FFTs: one rfft2 of the input, a per-frequency channel contraction
with the kernel's conjugate spectrum, one irfft2, then the VALID (and
strided) crop. The FFT size equals the input size and the crop keeps only
outputs whose window never wraps, so it is exact up to float rounding.
"auto" picks per layer: on CPU "fft" for the large-kernel layers (conv1 and
conv2) and "chunked" for the others, "lax" (cuDNN) on accelerators. Why,
with the measurements: benchmarks/README.md.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

CONV_IMPLS = ("auto", "lax", "chunked", "fft")
KERNEL_GRAD_CHUNK = 16


def resolve_conv(impl: str, fft_on_cpu: bool) -> str:
  """The form "auto" stands for: on CPU "fft" for layers marked `fft_on_cpu`
  and "chunked" for the others; "lax" on accelerators."""
  if impl not in CONV_IMPLS:
    raise ValueError(f"conv={impl!r}: expected one of {CONV_IMPLS}")
  if impl == "auto":
    if jax.default_backend() != "cpu":
      return "lax"
    return "fft" if fft_on_cpu else "chunked"
  return impl


def conv_lax(x: jax.Array, kernel: jax.Array, stride: int = 1) -> jax.Array:
  """VALID cross-correlation: x (B,H,W,I), kernel HWIO."""
  return jax.lax.conv_general_dilated(
    x,
    kernel,
    (stride, stride),
    "VALID",
    dimension_numbers=("NHWC", "HWIO", "NHWC"),
  )


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_chunked(x: jax.Array, kernel: jax.Array, stride: int = 1) -> jax.Array:
  """`conv_lax` whose kernel gradient is summed over batch chunks of 16."""
  return conv_lax(x, kernel, stride)


def _conv_chunked_forward(x, kernel, stride):
  return conv_lax(x, kernel, stride), (x, kernel)


def _conv_chunked_backward(stride, residuals, cotangent):
  x, kernel = residuals
  grad_x = jax.vjp(lambda x: conv_lax(x, kernel, stride), x)[1](cotangent)[0]
  grad_kernel = sum(
    jax.vjp(
      lambda k, i=i: conv_lax(x[i : i + KERNEL_GRAD_CHUNK], k, stride), kernel
    )[1](cotangent[i : i + KERNEL_GRAD_CHUNK])[0]
    for i in range(0, x.shape[0], KERNEL_GRAD_CHUNK)
  )
  return grad_x, grad_kernel


conv_chunked.defvjp(_conv_chunked_forward, _conv_chunked_backward)


def conv_fft(x: jax.Array, kernel: jax.Array, stride: int = 1) -> jax.Array:
  """VALID cross-correlation as lax.conv computes it: x (B,H,W,I), kernel HWIO.

  Computed in float32 at least (XLA has no bfloat16 FFT); the result has
  x's dtype. The result is materialised (an optimization barrier): XLA would
  otherwise fuse the FFT's layout transpose and crop into every consumer,
  e.g. each of the region layer's nine shifted slices (-9% step time, CPU).
  """
  height, width = x.shape[1:3]
  kernel_h, kernel_w = kernel.shape[:2]
  fft_dtype = jnp.promote_types(x.dtype, jnp.float32)
  spectrum = jnp.einsum(
    "bhwi,hwio->bhwo",
    jnp.fft.rfft2(x.astype(fft_dtype), axes=(1, 2)),
    jnp.conj(
      jnp.fft.rfft2(kernel.astype(fft_dtype), s=(height, width), axes=(0, 1))
    ),
  )
  y = jnp.fft.irfft2(spectrum, s=(height, width), axes=(1, 2))
  y = y[
    :, : height - kernel_h + 1 : stride, : width - kernel_w + 1 : stride
  ].astype(x.dtype)
  return jax.lax.optimization_barrier(y)


class Conv(nnx.Conv):
  """`nnx.Conv` (VALID, same parameters and names) run in a chosen form.

  Args:
    impl: "lax", "chunked", "fft" or "auto" (see `resolve_conv`).
    fft_on_cpu: whether "auto" picks the FFT form on CPU for this layer.
    Other arguments as `nnx.Conv`, with padding fixed to VALID.
  """

  def __init__(
    self,
    in_features: int,
    out_features: int,
    kernel_size: int,
    *,
    strides: int = 1,
    impl: str = "auto",
    fft_on_cpu: bool = False,
    **kwargs,
  ):
    super().__init__(
      in_features,
      out_features,
      (kernel_size, kernel_size),
      strides=strides,
      padding="VALID",
      **kwargs,
    )
    self.impl = resolve_conv(impl, fft_on_cpu)

  def __call__(self, x: jax.Array) -> jax.Array:
    x, kernel, bias = nnx.nn.dtypes.promote_dtype(
      (x, self.kernel[...], self.bias[...]), dtype=self.dtype
    )
    conv = {"lax": conv_lax, "chunked": conv_chunked, "fft": conv_fft}[
      self.impl
    ]
    return conv(x, kernel, self.strides) + bias
