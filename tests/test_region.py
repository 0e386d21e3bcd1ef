"""The region layer: stacked per-region parameters, both conv forms, no leakage."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from drml_jax.model.convs import KERNEL_GRAD_CHUNK, conv_lax
from drml_jax.model.region import (
  RegionLayer,
  conv3x3_unrolled,
  merge_patches,
  per_patch,
  split_patches,
  standardize,
)


def test_region_parameters_are_stacked_and_distinct():
  layer = _region_layer("lax")
  kernel = np.asarray(layer.units.conv.kernel[...])
  assert kernel.shape == (16, 3, 3, 4, 4)
  flat = kernel.reshape(16, -1)
  # Every region is initialised differently: no two kernels are equal.
  assert len({row.tobytes() for row in flat}) == 16
  assert layer.units.bn.var[...].shape == (16, 4)


def _region_layer(conv, region_bn="affine", seed=0):
  return RegionLayer(
    4,
    grid=(4, 4),
    region_bn=region_bn,
    region_conv=conv,
    kernel_init=nnx.initializers.lecun_normal(),
    bias_init=nnx.initializers.normal(0.1),
    rngs=nnx.Rngs(seed),
  )


def _random(shape, seed=0):
  return jax.random.normal(jax.random.key(seed), shape)


@pytest.mark.slow
@pytest.mark.parametrize(
  "in_axes", [None, (0, 0), (0, None), (None, 0)], ids=str
)
def test_conv3x3_unrolled_equals_lax_conv_forward_and_backward(in_axes):
  # Unbatched, and vmapped over regions with either operand shared; a batch
  # past one chunk of the kernel gradient's (drml_jax.model.convs.conv_chunked).
  x_shape, kernel_shape = (KERNEL_GRAD_CHUNK + 2, 5, 6, 3), (3, 3, 3, 4)
  if in_axes is not None:
    x_shape = (4, *x_shape) if in_axes[0] == 0 else x_shape
    kernel_shape = (4, *kernel_shape) if in_axes[1] == 0 else kernel_shape
  x, kernel = _random(x_shape), _random(kernel_shape, 1)
  results = []
  for conv in (conv3x3_unrolled, functools.partial(conv_lax, padding="SAME")):
    conv = conv if in_axes is None else jax.vmap(conv, in_axes)
    y, vjp = jax.vjp(conv, x, kernel)
    results.append((y, *vjp(jnp.cos(y))))
  for got, expected in zip(*results):
    # The same float32 convolutions, summed per region (the kernel gradient
    # per batch chunk) or grouped: rounding of ~1e-5 of the largest value.
    scale = float(jnp.abs(expected).max())
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.slow
@pytest.mark.parametrize("region_bn", ["affine", "batch_stats"])
def test_region_conv_forms_agree_forward_and_backward(region_bn):
  x = _random((3, 16, 16, 4), 3)
  outputs, grads = [], []
  for conv in ("lax", "unrolled"):
    layer = _region_layer(conv, region_bn)
    layer.train()
    graphdef, params, rest = nnx.split(layer, nnx.Param, ...)

    def loss(params, x):
      out = nnx.merge(graphdef, params, rest, copy=True)(x)
      return jnp.sum(jnp.sin(out)), out

    (_, out), (g_params, g_x) = jax.value_and_grad(
      loss, argnums=(0, 1), has_aux=True
    )(params, x)
    outputs.append(out)
    grads.append((jax.tree.leaves(g_params), g_x))
  # Same float32 math in another summation order: a few ulps of the values.
  np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-5, atol=1e-5)
  for a, b in zip(grads[0][0] + [grads[0][1]], grads[1][0] + [grads[1][1]]):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("conv", ["lax", "unrolled"])
def test_region_layer_has_no_leakage_between_patches(conv):
  layer = _region_layer(conv)
  layer.eval()  # running statistics: each patch's output depends on it alone
  x = _random((2, 16, 16, 4), 4)
  changed = x.at[:, 4:8, 8:12, :].add(_random((2, 4, 4, 4), 5))  # patch (1, 2)
  diff = np.abs(np.asarray(layer(changed) - layer(x))).sum(axis=(0, 3))
  inside = np.zeros((16, 16), bool)
  inside[4:8, 8:12] = True
  assert diff[inside].min() > 0
  assert diff[~inside].max() == 0


def test_grid_that_does_not_divide_the_map_is_a_clear_error():
  layer = _region_layer("unrolled")
  with pytest.raises(
    ValueError, match="4x4 does not divide the 18x18 feature map"
  ):
    layer(jnp.ones((1, 18, 18, 4)))


def test_patches_with_overlap_are_the_input_windows_of_each_output_patch():
  # A VALID 3x3 conv of a 10x14 map gives 8x12: 2x3 patches of 4x4, each the
  # conv of its 6x6 input window.
  x = _random((2, 10, 14, 3), 6)
  kernel = _random((3, 3, 3, 5), 7)
  conv = lambda x: conv_lax(x, kernel)
  windows = split_patches(x, (2, 3), overlap=2)
  assert windows.shape == (6, 2, 6, 6, 3)
  np.testing.assert_allclose(
    merge_patches(per_patch(conv, windows), (2, 3)),
    conv(x),
    rtol=1e-6,
    atol=1e-6,
  )
  np.testing.assert_array_equal(
    merge_patches(split_patches(x[:, :8, :12], (2, 3)), (2, 3)), x[:, :8, :12]
  )


def test_standardize_has_the_gradient_of_its_formula():
  x = _random((3, 5, 4, 6), 8) * 3 + 1
  cotangent = _random(x.shape, 9)

  def formula(x):
    mean = x.mean(axis=(0, 1, 2))
    var = jnp.square(x - mean).mean(axis=(0, 1, 2))
    return (x - mean) / jnp.sqrt(var + 1e-5)

  got, vjp = jax.vjp(lambda x: standardize(x, 1e-5), x)
  expected, expected_vjp = jax.vjp(formula, x)
  # float32, the same sums in another order: a few ulps of values ~1-3.
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(
    vjp(cotangent)[0], expected_vjp(cotangent)[0], rtol=1e-4, atol=1e-5
  )
