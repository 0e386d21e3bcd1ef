"""The dense conv forms give lax.conv's outputs and gradients."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from drml_jax.model.convs import (
  BAND_TILE,
  KERNEL_GRAD_CHUNK,
  Conv,
  conv_banded,
  conv_chunked,
  conv_fft,
  resolve_conv,
)
from drml_jax.model.convs import conv_lax as _lax_conv


def _random(shape, seed):
  return jax.random.normal(jax.random.key(seed), shape)


def _with_vjp(conv, x, kernel, stride, cotangent):
  y, vjp = jax.vjp(lambda x, k: conv(x, k, stride), x, kernel)
  return (y, *vjp(cotangent))


@pytest.mark.slow
@pytest.mark.parametrize("size,kernel_size,stride", [(17, 11, 1), (13, 6, 2)])
def test_fft_conv_equals_lax_conv_forward_and_backward(
  size, kernel_size, stride
):
  x, kernel = (
    _random((2, size, size + 1, 3), 0),
    _random((kernel_size, kernel_size, 3, 4), 1),
  )
  cotangent = _random(_lax_conv(x, kernel, stride).shape, 2)
  results = []
  for conv in (_lax_conv, conv_fft):
    forward_backward = jax.jit(
      lambda x, k, conv=conv: _with_vjp(conv, x, k, stride, cotangent)
    )
    results.append(forward_backward(x, kernel))
  for got, expected in zip(results[1], results[0]):
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("stride,padding", [(2, "VALID"), (1, "SAME")])
def test_chunked_conv_equals_lax_conv_forward_and_backward(stride, padding):
  # A batch of 1.5 chunks: a whole chunk and a part one are summed.
  batch = KERNEL_GRAD_CHUNK + KERNEL_GRAD_CHUNK // 2
  x, kernel = _random((batch, 9, 9, 3), 0), _random((4, 4, 3, 5), 1)
  cotangent = _random(_lax_conv(x, kernel, stride, padding).shape, 2)
  results = [
    jax.jit(
      lambda x, k, conv=conv: _with_vjp(
        functools.partial(conv, padding=padding), x, k, stride, cotangent
      )
    )(x, kernel)
    for conv in (conv_chunked, _lax_conv)
  ]
  for got, expected in zip(*results):
    # float32 sums of up to 24 x 81 products in another order: rounding of
    # ~1e-5 of the largest value (the kernel gradient's sums are the longest).
    scale = float(jnp.abs(expected).max())
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.slow
@pytest.mark.parametrize(
  "width,kernel_size,stride",
  [(BAND_TILE * 2 + 10, 11, 1), (BAND_TILE * 2 + 13, 11, 1), (21, 6, 2)],
)
def test_banded_conv_equals_lax_conv_forward_and_backward(
  width, kernel_size, stride
):
  # Whole tiles, a part tile (padded, then cropped), a stride.
  x = _random((2, 14, width, 3), 0)
  kernel = _random((kernel_size, kernel_size, 3, 4), 1)
  cotangent = _random(_lax_conv(x, kernel, stride).shape, 2)
  got, expected = (
    jax.jit(lambda x, k, c=conv: _with_vjp(c, x, k, stride, cotangent))(
      x, kernel
    )
    for conv in (conv_banded, _lax_conv)
  )
  for got_part, expected_part in zip(got, expected):
    # float32 sums of up to 363 products in another order: ~1e-6 relative.
    np.testing.assert_allclose(got_part, expected_part, rtol=1e-4, atol=1e-4)


def test_fft_conv_keeps_a_bfloat16_dtype():
  x, kernel = _random((1, 9, 9, 2), 0), _random((5, 5, 2, 3), 1)
  y = conv_fft(x.astype(jnp.bfloat16), kernel.astype(jnp.bfloat16))
  assert y.dtype == jnp.bfloat16
  np.testing.assert_allclose(
    y.astype(jnp.float32), _lax_conv(x, kernel, 1), rtol=0.05, atol=0.1
  )


def test_auto_picks_per_layer_on_cpu_and_lax_elsewhere():
  assert resolve_conv("fft", cpu_impl="banded") == "fft"
  on_cpu = jax.default_backend() == "cpu"
  assert resolve_conv("auto") == ("chunked" if on_cpu else "lax")
  assert resolve_conv("auto", cpu_impl="banded") == (
    "banded" if on_cpu else "lax"
  )
  with pytest.raises(ValueError, match="conv='winograd'"):
    resolve_conv("winograd", cpu_impl="fft")


@pytest.mark.parametrize("impl", ["lax", "fft", "chunked", "banded"])
def test_conv_module_has_nnx_conv_parameters(impl):
  layer = Conv(3, 4, 5, strides=2, impl=impl, rngs=nnx.Rngs(0))
  reference = nnx.Conv(
    3, 4, (5, 5), strides=2, padding="VALID", rngs=nnx.Rngs(0)
  )
  assert jax.tree.structure(nnx.state(layer, nnx.Param)) == jax.tree.structure(
    nnx.state(reference, nnx.Param)
  )
  x = _random((2, 11, 11, 3), 3)
  np.testing.assert_allclose(layer(x), reference(x), rtol=1e-4, atol=1e-5)
