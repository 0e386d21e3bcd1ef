"""DRML's dense VALID convolutions in forms that give the same numbers.

"lax" is `lax.conv_general_dilated` (what `nnx.Conv` runs). "chunked" is the
same convolution with its kernel gradient summed over batch chunks of
`KERNEL_GRAD_CHUNK`: XLA:CPU's kernel-gradient convolution costs more per
image once the batch grows past that. "fft" computes the cross-correlation
with real FFTs: one rfft2 of the input, a per-frequency channel contraction
with the kernel's conjugate spectrum, one irfft2, then the VALID (and
strided) crop. The FFT size equals the input size and the crop keeps only
outputs whose window never wraps, so it is exact up to float rounding.
"banded" is one matmul of windows of input rows with a banded (Toeplitz)
matrix built from the kernel (`conv_banded`). "auto" picks per layer: on CPU
the layer's fastest form there (conv1 "banded", conv2 "fft", the others
"chunked"), "lax" (cuDNN) on accelerators. The measurements behind each
choice: benchmarks/README.md#log.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

CONV_IMPLS = ("auto", "lax", "chunked", "fft", "banded")
KERNEL_GRAD_CHUNK = 16
BAND_TILE = 4  # output columns per band tile (conv_banded)


def resolve_conv(impl: str, cpu_impl: str = "chunked") -> str:
  """The form "auto" stands for: the layer's `cpu_impl` on CPU, "lax" on
  accelerators."""
  if impl not in CONV_IMPLS:
    raise ValueError(f"conv={impl!r}: expected one of {CONV_IMPLS}")
  if impl == "auto":
    return cpu_impl if jax.default_backend() == "cpu" else "lax"
  return impl


def conv_lax(
  x: jax.Array, kernel: jax.Array, stride: int = 1, padding: str = "VALID"
) -> jax.Array:
  """Cross-correlation, VALID unless told: x (B,H,W,I), kernel HWIO."""
  return jax.lax.conv_general_dilated(
    x,
    kernel,
    (stride, stride),
    padding,
    dimension_numbers=("NHWC", "HWIO", "NHWC"),
  )


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv_chunked(
  x: jax.Array, kernel: jax.Array, stride: int = 1, padding: str = "VALID"
) -> jax.Array:
  """`conv_lax` whose kernel gradient is summed over batch chunks of 16."""
  return conv_lax(x, kernel, stride, padding)


def _conv_chunked_forward(x, kernel, stride, padding):
  return conv_lax(x, kernel, stride, padding), (x, kernel)


def _conv_chunked_backward(stride, padding, residuals, cotangent):
  x, kernel = residuals
  conv = functools.partial(conv_lax, stride=stride, padding=padding)
  grad_x = jax.vjp(lambda x: conv(x, kernel), x)[1](cotangent)[0]
  if isinstance(x.shape[0], int):
    chunks = [
      slice(i, i + KERNEL_GRAD_CHUNK)
      for i in range(0, x.shape[0], KERNEL_GRAD_CHUNK)
    ]
  else:  # a symbolic batch (a program exported for any batch): one chunk
    chunks = [slice(None)]
  grad_kernel = sum(
    jax.vjp(lambda k, c=c: conv(x[c], k), kernel)[1](cotangent[c])[0]
    for c in chunks
  )
  return grad_x, grad_kernel


conv_chunked.defvjp(_conv_chunked_forward, _conv_chunked_backward)


def conv_fft(x: jax.Array, kernel: jax.Array, stride: int = 1) -> jax.Array:
  """VALID cross-correlation as lax.conv computes it: x (B,H,W,I), kernel HWIO.

  Computed in float32 at least (XLA has no bfloat16 FFT); the result has
  x's dtype.
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
  return y[
    :, : height - kernel_h + 1 : stride, : width - kernel_w + 1 : stride
  ].astype(x.dtype)


def _band_columns(
  x: jax.Array, kernel_h: int, kernel_w: int, stride: int
) -> jax.Array:
  """The banded form's im2col, x (B,H,W,C) -> (B*OH*tiles, window): a row per
  output row and tile of BAND_TILE output columns, holding the input window
  (kernel_h rows x `_band_span` columns x C) the tile reads."""
  b, h, w, c = x.shape
  out_h, out_w = (h - kernel_h) // stride + 1, (w - kernel_w) // stride + 1
  tiles = -(-out_w // BAND_TILE)
  span = _band_span(kernel_w, stride)
  starts = np.arange(tiles)[:, None] * BAND_TILE * stride + np.arange(span)
  x = jnp.pad(x, ((0, 0), (0, 0), (0, max(starts[-1, -1] + 1 - w, 0)), (0, 0)))
  windows = x[:, :, starts, :]  # B, H, tiles, span, C
  rows = [
    windows[:, dy : dy + stride * (out_h - 1) + 1 : stride]
    for dy in range(kernel_h)
  ]
  return jnp.stack(rows, 3).reshape(b * out_h * tiles, kernel_h * span * c)


def _band_span(kernel_w: int, stride: int) -> int:
  return stride * (BAND_TILE - 1) + kernel_w


def _band_matrix(kernel: jax.Array, stride: int) -> jax.Array:
  """HWIO kernel -> the banded (Toeplitz) matrix from a window to its tile:
  entry ((dy, j, i), (u, o)) is kernel[dy, j - stride*u, i, o], else zero."""
  kernel_h, kernel_w, cin, cout = kernel.shape
  span = _band_span(kernel_w, stride)
  offset = np.arange(span)[:, None] - stride * np.arange(BAND_TILE)[None, :]
  taps = offset[None] == np.arange(kernel_w)[:, None, None]
  band = jnp.einsum("yxio,xju->yjiuo", kernel, taps.astype(kernel.dtype))
  return band.reshape(kernel_h * span * cin, BAND_TILE * cout)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_banded(x: jax.Array, kernel: jax.Array, stride: int = 1) -> jax.Array:
  """VALID cross-correlation as one matmul with a banded (Toeplitz) matrix.

  Each output row is cut into tiles of BAND_TILE columns; a tile is its
  input window (`_band_columns`) times `_band_matrix`. Against im2col per
  pixel, the matmul gets BAND_TILE x O columns instead of O, and the
  band's zeros cost (BAND_TILE + kernel_w - 1) / kernel_w times the direct
  FLOPs at stride 1 (1.27x for conv1's 11x11 kernel). Wider tiles make a
  wider matmul but more zeros; 4 is the fastest for conv1 on CPU, and it
  divides the 20-column patches of the region layout.
  """
  return _conv_banded_forward(x, kernel, stride)[0]


def _conv_banded_forward(x, kernel, stride):
  b, h, w, _ = x.shape
  kernel_h, kernel_w, _, cout = kernel.shape
  out_h, out_w = (h - kernel_h) // stride + 1, (w - kernel_w) // stride + 1
  columns = _band_columns(x, kernel_h, kernel_w, stride)
  y = (columns @ _band_matrix(kernel, stride)).reshape(b, out_h, -1, cout)
  return y[:, :, :out_w], (x, columns, kernel)


def _conv_banded_backward(stride, residuals, cotangent):
  # Written out so that the kernel gradient multiplies the stored columns'
  # transpose by the cotangent as it comes: left to autodiff, XLA:CPU
  # transposes the cotangent instead, fused with every op upstream of it.
  x, columns, kernel = residuals
  b, out_h, out_w, cout = cotangent.shape
  tiles = columns.shape[0] // (b * out_h)
  cotangent = jnp.pad(
    cotangent, ((0, 0), (0, 0), (0, tiles * BAND_TILE - out_w), (0, 0))
  ).reshape(-1, BAND_TILE * cout)
  band, band_vjp = jax.vjp(lambda k: _band_matrix(k, stride), kernel)
  grad_kernel = band_vjp(columns.T @ cotangent)[0]
  to_columns = functools.partial(
    _band_columns,
    kernel_h=kernel.shape[0],
    kernel_w=kernel.shape[1],
    stride=stride,
  )
  grad_x = jax.linear_transpose(to_columns, x)(cotangent @ band.T)[0]
  return grad_x, grad_kernel


conv_banded.defvjp(_conv_banded_forward, _conv_banded_backward)


class Conv(nnx.Conv):
  """`nnx.Conv` (VALID, same parameters and names) run in a chosen form.

  Args:
    impl: one of CONV_IMPLS; "auto" is `cpu_impl` on CPU, "lax" elsewhere.
    cpu_impl: the form "auto" runs on CPU, the fastest there for this layer.
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
    cpu_impl: str = "chunked",
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
    self.impl = resolve_conv(impl, cpu_impl)

  def __call__(self, x: jax.Array) -> jax.Array:
    x, kernel, bias = nnx.nn.dtypes.promote_dtype(
      (x, self.kernel[...], self.bias[...]), dtype=self.dtype
    )
    conv = {
      "lax": conv_lax,
      "chunked": conv_chunked,
      "fft": conv_fft,
      "banded": conv_banded,
    }[self.impl]
    return conv(x, kernel, self.strides) + bias
