"""The Flax DRML: layout, parameter count, init variants, options, dropout."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from drml_jax.model.network import (
  DRML,
  count_parameters,
  layer_initializers,
  max_pool_2x2,
)


def _random(shape, seed=0):
  return jax.random.normal(jax.random.key(seed), shape)


def test_parameter_count_matches_the_paper_layout():
  model = nnx.eval_shape(lambda: DRML(12, rngs=nnx.Rngs(0)))
  assert count_parameters(model) == 56_867_532
  caffe = nnx.eval_shape(
    lambda: DRML(12, region_bn="batch_stats", rngs=nnx.Rngs(0))
  )
  assert (
    count_parameters(caffe) == 56_867_532 - 64 * 2 * 32
  )  # no BN scale/shift
  ablation = nnx.eval_shape(
    lambda: DRML(12, region_layer=False, rngs=nnx.Rngs(0))
  )
  assert count_parameters(ablation) == 56_867_532 - 64 * (
    9 * 32 * 32 + 32 + 2 * 32
  )


def test_unknown_options_are_clear_errors():
  with pytest.raises(ValueError, match="region_bn='caffe'"):
    DRML(3, region_bn="caffe", input_size=82, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="init='xavier'"):
    DRML(3, init="xavier", input_size=82, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="region_conv='fft'"):
    DRML(3, region_conv="fft", input_size=82, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="region_layout='rows'"):
    DRML(3, region_layout="rows", input_size=82, rngs=nnx.Rngs(0))
  # 82 - 10 = 72 over 8 regions: patches of 9x9, which a 2x2 pool would cross.
  with pytest.raises(ValueError, match="patches of even sides \\(here 9x9\\)"):
    DRML(3, region_layout="patches", input_size=82, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="needs the region layer"):
    DRML(3, region_layout="patches", region_layer=False, rngs=nnx.Rngs(0))


def test_auto_region_layout_is_patches_on_cpu_where_it_applies():
  on_cpu = jax.default_backend() == "cpu"
  layout = lambda **kwargs: (
    nnx.eval_shape(lambda: DRML(3, rngs=nnx.Rngs(0), **kwargs)).region_layout
  )
  assert layout() == ("patches" if on_cpu else "image")
  assert layout(input_size=82) == "image"  # odd patches
  assert layout(region_layer=False) == "image"


@pytest.mark.slow
def test_region_layouts_compute_the_same_network():
  # 66x66: conv1 gives 56x56, 2x2 patches of 28x28.
  images, labels = _random((3, 66, 66, 3), 1), _random((3, 2), 2)
  results = []
  for layout in ("image", "patches"):
    model = DRML(
      2, grid=(2, 2), input_size=66, region_layout=layout, rngs=nnx.Rngs(0)
    )
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def loss(params):
      logits = nnx.merge(graphdef, params, rest, copy=True)(
        images, rngs=nnx.Rngs(dropout=5)
      )
      return jnp.sum(jnp.sin(logits) * labels), logits

    (_, logits), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
    results.append((logits, grads))
  (logits, grads), (patch_logits, patch_grads) = results
  # The same float32 ops; only conv1's sums are tiled differently: rounding
  # of a few ulps, grown through the layers to ~1e-5 of the largest value.
  np.testing.assert_allclose(patch_logits, logits, rtol=1e-4, atol=1e-5)
  for (path, grad), got in zip(
    jax.tree_util.tree_leaves_with_path(grads), jax.tree.leaves(patch_grads)
  ):
    scale = float(jnp.abs(grad).max())
    np.testing.assert_allclose(
      got, grad, rtol=1e-3, atol=1e-4 * scale, err_msg=str(path)
    )


def _initialized(init, role, shape):
  kernel_init, bias_init = layer_initializers(
    init, role, int(np.prod(shape[:-1]))
  )
  key = jax.random.key(0)
  return np.asarray(kernel_init(key, shape)), np.asarray(
    bias_init(key, shape[-1:])
  )


def test_init_variants():
  kernel, bias = _initialized("caffe", "conv", (8, 8, 32, 16))
  assert kernel.std() == pytest.approx(0.01, rel=0.05) and np.all(bias == 1)
  _, bias = _initialized("caffe", "conv1", (11, 11, 3, 32))
  assert np.all(bias == 0)
  kernel, bias = _initialized("caffe", "fc_hidden", (4096, 256))
  assert kernel.std() == pytest.approx(0.005, rel=0.05) and np.all(bias == 1)
  kernel, bias = _initialized("caffe", "fc_out", (2048, 12))
  assert kernel.std() == pytest.approx(0.01, rel=0.1) and np.all(bias == 0)
  kernel, bias = _initialized("he", "fc_hidden", (4096, 256))
  assert kernel.std() == pytest.approx(np.sqrt(2 / 4096), rel=0.05) and np.all(
    bias == 0
  )
  kernel, _ = _initialized("he", "fc_out", (2048, 12))
  assert kernel.std() == pytest.approx(0.01, rel=0.1)
  kernel, bias = _initialized("pytorch", "fc_hidden", (4096, 256))
  bound = 1 / np.sqrt(4096)
  assert np.abs(kernel).max() <= bound and np.abs(bias).max() <= bound
  assert kernel.std() == pytest.approx(
    bound / np.sqrt(3), rel=0.05
  )  # uniform's std


@pytest.mark.slow
def test_dropout_only_in_train_mode_and_a_function_of_its_key():
  model = DRML(3, grid=(2, 2), input_size=66, init="he", rngs=nnx.Rngs(0))
  x = _random((2, 66, 66, 3), 6)
  forward = nnx.jit(
    lambda m, x, seed: m(x, rngs=nnx.Rngs(dropout=jax.random.key(seed)))
  )
  model.eval()
  assert np.array_equal(forward(model, x, 0), forward(model, x, 1))
  model.train()
  assert np.array_equal(forward(model, x, 0), forward(model, x, 0))
  assert not np.array_equal(forward(model, x, 0), forward(model, x, 1))


def test_max_pool_sends_the_gradient_to_the_first_maximum():
  # 5x6: the last row is outside every window. Window (0, 0) of channel 0
  # holds its maximum twice: PyTorch sends the gradient to the first.
  x = np.array(_random((1, 5, 6, 2), 3))
  x[0, 0, 1, 0] = x[0, 1, 0, 0] = 9.0
  cotangent = np.asarray(_random((1, 2, 3, 2), 4))
  pooled, vjp = jax.vjp(max_pool_2x2, jnp.asarray(x))
  expected_pooled = np.zeros((1, 2, 3, 2), np.float32)
  expected_grad = np.zeros_like(x)
  for i in range(2):
    for j in range(3):
      for c in range(2):
        window = x[0, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2, c]
        first = np.argmax(window)  # row-major, the first of equal values
        expected_pooled[0, i, j, c] = window.max()
        expected_grad[0, 2 * i + first // 2, 2 * j + first % 2, c] = cotangent[
          0, i, j, c
        ]
  np.testing.assert_array_equal(pooled, expected_pooled)
  np.testing.assert_array_equal(vjp(jnp.asarray(cotangent))[0], expected_grad)
  x[0, 3, 5, 1] = np.nan  # a NaN is not hidden by a larger value
  assert np.isnan(max_pool_2x2(jnp.asarray(x))[0, 1, 2, 1])


def test_the_intensity_head_leaves_the_rest_of_the_network_as_it_was():
  # XLA's own convolutions: the fastest to compile, the same numbers.
  build = lambda **head: DRML(
    3,
    grid=(2, 2),
    input_size=66,
    init="he",
    conv="lax",
    region_conv="lax",
    region_layout="image",
    rngs=nnx.Rngs(0),
    **head,
  )
  plain, headed = build(), build(intensity=True)
  assert not plain.has_intensity and headed.has_intensity
  # The same initial values for every layer the two share.
  shared = nnx.state(plain, nnx.Param)
  np.testing.assert_array_equal(
    np.concatenate([np.ravel(x) for x in jax.tree.leaves(shared)]),
    np.concatenate(
      [
        np.ravel(x)
        for path, x in jax.tree.leaves_with_path(nnx.state(headed, nnx.Param))
        if "fc_intensity" not in jax.tree_util.keystr(path)
      ]
    ),
  )
  headed.eval()
  x = _random((2, 66, 66, 3), 7)
  outputs, logits = nnx.jit(lambda m, x: (m.outputs(x), m(x)))(headed, x)
  np.testing.assert_array_equal(outputs.logits, logits)
  assert outputs.intensity_logits.shape == (2, 3, 5)  # 5 thresholds per AU
  assert outputs.intensity.shape == (2, 3)
  assert np.all((0 <= outputs.intensity) & (outputs.intensity <= 5))
  # The head's loss does not reach the features: the gradient of any
  # function of the intensities leaves every other layer at zero.
  grads = nnx.jit(nnx.grad(lambda m: m.outputs(x).intensity.sum()))(headed)
  for path, grad in jax.tree.leaves_with_path(nnx.state(grads, nnx.Param)):
    if "fc_intensity" not in jax.tree_util.keystr(path):
      assert not np.any(grad), jax.tree_util.keystr(path)
  plain.eval()
  assert nnx.eval_shape(lambda m: m.outputs(x), plain).intensity is None
