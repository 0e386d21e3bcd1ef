"""The Flax DRML on its own: layout, region layer, loss, metrics, optimizer."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from drml_jax.losses import multilabel_sigmoid_cross_entropy
from drml_jax.metrics import confusion_counts
from drml_jax.model import DRML, count_parameters, layer_initializers
from drml_jax.optim import learning_rate_schedule, make_optimizer
from drml_jax.region import RegionLayer, conv3x3_matmul
from drml_jax.scores import au_scores, format_table, to_json


def test_parameter_count_matches_the_paper_layout():
  model = nnx.eval_shape(lambda: DRML(12, rngs=nnx.Rngs(0)))
  assert count_parameters(model) == 56_867_532
  caffe = nnx.eval_shape(lambda: DRML(12, region_bn="batch_stats", rngs=nnx.Rngs(0)))
  assert count_parameters(caffe) == 56_867_532 - 64 * 2 * 32  # no BN scale/shift
  ablation = nnx.eval_shape(lambda: DRML(12, use_region_layer=False, rngs=nnx.Rngs(0)))
  assert count_parameters(ablation) == 56_867_532 - 64 * (9 * 32 * 32 + 32 + 2 * 32)


def test_region_parameters_are_stacked_and_distinct():
  layer = _region_layer("lax")
  kernel = np.asarray(layer.units.conv.kernel[...])
  assert kernel.shape == (16, 3, 3, 4, 4)
  flat = kernel.reshape(16, -1)
  # Every region is initialised differently: no two kernels are equal.
  assert len({row.tobytes() for row in flat}) == 16
  assert layer.units.bn.var[...].shape == (16, 4)


def _region_layer(conv, region_bn="affine", seed=0):
  return RegionLayer(4, grid=(4, 4), region_bn=region_bn, region_conv=conv,
                     kernel_init=nnx.initializers.lecun_normal(),
                     bias_init=nnx.initializers.normal(0.1), rngs=nnx.Rngs(seed))


def _random(shape, seed=0):
  return jax.random.normal(jax.random.key(seed), shape)


def test_conv3x3_matmul_equals_lax_conv():
  x, kernel, bias = _random((2, 5, 6, 3)), _random((3, 3, 3, 4), 1), _random((4,), 2)
  expected = jax.lax.conv_general_dilated(
      x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")) + bias
  np.testing.assert_allclose(conv3x3_matmul(x, kernel, bias), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("region_bn", ["affine", "batch_stats"])
def test_region_conv_forms_agree_forward_and_backward(region_bn):
  x = _random((3, 16, 16, 4), 3)
  outputs, grads = [], []
  for conv in ("lax", "matmul"):
    layer = _region_layer(conv, region_bn)
    layer.train()
    graphdef, params, rest = nnx.split(layer, nnx.Param, ...)

    def loss(params, x):
      out = nnx.merge(graphdef, params, rest, copy=True)(x)
      return jnp.sum(jnp.sin(out)), out

    (_, out), (g_params, g_x) = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(params, x)
    outputs.append(out)
    grads.append((jax.tree.leaves(g_params), g_x))
  # Same float32 math in another summation order: a few ulps of the values.
  np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-5, atol=1e-5)
  for a, b in zip(grads[0][0] + [grads[0][1]], grads[1][0] + [grads[1][1]]):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("conv", ["lax", "matmul"])
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
  layer = _region_layer("matmul")
  with pytest.raises(ValueError, match="4x4 does not divide the 18x18 feature map"):
    layer(jnp.ones((1, 18, 18, 4)))


def test_unknown_options_are_clear_errors():
  with pytest.raises(ValueError, match="region_bn='caffe'"):
    DRML(3, region_bn="caffe", input_size=82, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="init='xavier'"):
    DRML(3, init="xavier", input_size=82, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="region_conv='fft'"):
    DRML(3, region_conv="fft", input_size=82, rngs=nnx.Rngs(0))


def _initialized(init, role, shape):
  kernel_init, bias_init = layer_initializers(init, role, int(np.prod(shape[:-1])))
  key = jax.random.key(0)
  return np.asarray(kernel_init(key, shape)), np.asarray(bias_init(key, shape[-1:]))


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
  assert kernel.std() == pytest.approx(np.sqrt(2 / 4096), rel=0.05) and np.all(bias == 0)
  kernel, _ = _initialized("he", "fc_out", (2048, 12))
  assert kernel.std() == pytest.approx(0.01, rel=0.1)
  kernel, bias = _initialized("pytorch", "fc_hidden", (4096, 256))
  bound = 1 / np.sqrt(4096)
  assert np.abs(kernel).max() <= bound and np.abs(bias).max() <= bound
  assert kernel.std() == pytest.approx(bound / np.sqrt(3), rel=0.05)  # uniform's std


def test_dropout_only_in_train_mode():
  model = DRML(3, input_size=82, init="he", rngs=nnx.Rngs(0))
  x = _random((2, 82, 82, 3), 6)
  forward = nnx.jit(lambda m, x: m(x))
  model.eval()
  assert np.array_equal(forward(model, x), forward(model, x))
  model.train()
  assert not np.array_equal(forward(model, x), forward(model, x))


# Loss and metrics against an independent NumPy implementation.

def _numpy_loss(logits, labels):
  p = 1 / (1 + np.exp(-logits.astype(np.float64)))
  terms = np.where(labels > 0, np.log(p), 0) + np.where(labels < 0, np.log(1 - p), 0)
  return -terms.sum() / logits.shape[0]


LABELS = np.array([[1, -1, 0, -1], [-1, 1, 0, -1], [1, 1, 0, -1], [-1, -1, 0, -1]], np.int8)
LOGITS = np.array([[2.0, -1.0, 3.0, -2.0], [0.5, 1.5, -3.0, -0.5],
                   [-0.7, 2.5, 1.0, -1.5], [-1.2, 0.3, 0.2, -0.1]], np.float32)


def test_loss_against_numpy_with_an_all_ignored_au():
  with jax.enable_x64(True):
    logits = LOGITS.astype(np.float64)
    ours = multilabel_sigmoid_cross_entropy(jnp.asarray(logits), jnp.asarray(LABELS))
    assert float(ours) == pytest.approx(_numpy_loss(logits, LABELS), rel=1e-12)
    grad = jax.grad(multilabel_sigmoid_cross_entropy)(jnp.asarray(logits), jnp.asarray(LABELS))
  expected = (1 / (1 + np.exp(-logits)) - (LABELS > 0)) / len(logits) * (LABELS != 0)
  np.testing.assert_allclose(grad, expected, rtol=1e-12, atol=1e-15)
  assert np.all(np.asarray(grad)[:, 2] == 0)  # the ignored AU gets no gradient


def test_loss_never_overflows():
  logits = jnp.array([[200.0, -200.0]])
  loss = multilabel_sigmoid_cross_entropy(logits, jnp.array([[-1, 1]], jnp.int8))
  assert float(loss) == pytest.approx(400.0)


def _numpy_counts(logits, labels, valid):
  rows = []
  for c in range(labels.shape[1]):
    keep = (labels[:, c] != 0) & valid
    pred, pos = logits[keep, c] > 0, labels[keep, c] > 0
    rows.append([np.sum(pred & pos), np.sum(pred & ~pos), np.sum(~pred & ~pos), np.sum(~pred & pos)])
  return np.array(rows)


def test_confusion_counts_against_numpy_with_padding():
  valid = np.array([True, True, True, False])
  counts = confusion_counts(jnp.asarray(LOGITS), jnp.asarray(LABELS), jnp.asarray(valid))
  np.testing.assert_array_equal(counts, _numpy_counts(LOGITS, LABELS, valid))
  assert counts.dtype == jnp.int32


def test_scores_edge_cases():
  # AU1: normal; AU2: every label ignored; AU4: no positive labelled; AU5:
  # positives exist but nothing is predicted positive.
  counts = np.array([[3, 1, 4, 2], [0, 0, 0, 0], [0, 2, 6, 0], [0, 0, 5, 3]])
  scores = au_scores(counts, (1, 2, 4, 5))
  assert scores["f1"][0] == pytest.approx(2 * 3 / (2 * 3 + 1 + 2))
  assert scores["accuracy"][0] == pytest.approx(7 / 10)
  assert np.isnan(scores["f1"][1]) and np.isnan(scores["accuracy"][1])
  assert scores["f1"][2] == 0 and scores["accuracy"][2] == pytest.approx(0.75)
  assert scores["f1"][3] == 0 and scores["accuracy"][3] == pytest.approx(5 / 8)
  assert scores["mean_f1"] == pytest.approx((6 / 9 + 0 + 0) / 3)  # the all-ignored AU is left out
  table = format_table(scores)
  assert "| DRML | 66.67/70.00 | n/a | 0.00/75.00 | 0.00/62.50 | 22.22/69.17 |" in table
  assert '"f1": [\n    0.6666666666666666,\n    null' in to_json(scores)


# The optimizer.

def _sgd_reference(params, grads_seq, lr, momentum, wd, lr_scale=None, decay_mask=None):
  """torch.optim.SGD's update, written out."""
  velocity = {k: np.zeros_like(v) for k, v in params.items()}
  params = {k: v.copy() for k, v in params.items()}
  for grads in grads_seq:
    for k in params:
      g = grads[k] + (wd * params[k] if decay_mask is None or decay_mask[k] else 0)
      g = g * (lr_scale[k] if lr_scale else 1)
      velocity[k] = momentum * velocity[k] + g
      params[k] = params[k] - lr * velocity[k]
  return params


@pytest.mark.parametrize("caffe_bias_rule", [False, True])
def test_optimizer_matches_torch_sgd_rule(caffe_bias_rule):
  with jax.enable_x64(True):
    rng = np.random.default_rng(0)
    params = {"conv": {"kernel": rng.normal(size=(3, 2)), "bias": rng.normal(size=(2,))}}
    grads_seq = [{"conv": {"kernel": rng.normal(size=(3, 2)), "bias": rng.normal(size=(2,))}}
                 for _ in range(4)]
    tx = make_optimizer(0.1, momentum=0.9, weight_decay=0.01, caffe_bias_rule=caffe_bias_rule)
    state, current = tx.init(params), params
    for grads in grads_seq:
      updates, state = tx.update(grads, state, current)
      current = optax.apply_updates(current, updates)
  flat = lambda tree: {"kernel": tree["conv"]["kernel"], "bias": tree["conv"]["bias"]}
  expected = _sgd_reference(
      flat(params), [flat(g) for g in grads_seq], 0.1, 0.9, 0.01,
      lr_scale={"kernel": 1, "bias": 2} if caffe_bias_rule else None,
      decay_mask={"kernel": True, "bias": False} if caffe_bias_rule else None)
  for key, value in flat(current).items():
    np.testing.assert_allclose(value, expected[key], rtol=1e-12)


def test_step_schedule():
  schedule = learning_rate_schedule(0.001, "step", step_size=4000)
  assert [float(schedule(s)) for s in (0, 3999, 4000, 8000)] == pytest.approx(
      [1e-3, 1e-3, 1e-4, 1e-5])
  with pytest.raises(ValueError, match="step_size"):
    learning_rate_schedule(0.001, "step")
