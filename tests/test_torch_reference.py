"""Tests of the PyTorch DRML reference: layout, init, loss, metrics, files."""

import math

import numpy as np
import pytest
import torch

from reference_torch import checkpoint
from reference_torch.losses import multilabel_sigmoid_cross_entropy
from reference_torch.metrics import confusion_counts
from reference_torch.model import DRML, RegionLayer, count_parameters

# The smallest input with an 8x8-divisible conv1 map: 66 -> 56 -> ... -> 1x1.
SMALL_INPUT = 66


@pytest.fixture(scope="module", autouse=True)
def one_thread():
  threads = torch.get_num_threads()
  torch.set_num_threads(1)
  yield
  torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def full_model():
  torch.manual_seed(0)
  return DRML(12, region_bn="affine").eval()


def small_model(**kwargs):
  return DRML(input_size=SMALL_INPUT, **kwargs)


def ports_keys(region_bn="affine", region_layer=True, grid=(8, 8)):
  """State_dict keys, in order, as docs/model.md#pytorch-checkpoint-layout lays them out."""
  keys = ["extractor.0.weight", "extractor.0.bias"]
  if region_layer:
    for i in range(grid[0]):
      for j in range(grid[1]):
        prefix = f"extractor.1.region_conv_{i}_{j}"
        if region_bn == "affine":
          keys += [
            f"{prefix}.0.{name}"
            for name in (
              "weight",
              "bias",
              "running_mean",
              "running_var",
              "num_batches_tracked",
            )
          ]
        keys += [f"{prefix}.2.weight", f"{prefix}.2.bias"]
  for index in (5, 7, 9, 11):
    keys += [f"extractor.{index}.weight", f"extractor.{index}.bias"]
  for index in (0, 3, 6):
    keys += [f"classifier.{index}.weight", f"classifier.{index}.bias"]
  return keys


# Layout and size.


def test_affine_keys_and_shapes_follow_the_ports(full_model):
  state = full_model.state_dict()
  assert list(state) == ports_keys()
  assert state["extractor.0.weight"].shape == (32, 3, 11, 11)
  assert state["extractor.1.region_conv_7_7.2.weight"].shape == (32, 32, 3, 3)
  assert state["extractor.1.region_conv_7_7.0.running_var"].shape == (32,)
  assert state["classifier.0.weight"].shape == (4096, 11664)
  assert state["classifier.6.weight"].shape == (12, 2048)


def test_batch_stats_variant_has_no_bn_keys():
  assert list(small_model(region_bn="batch_stats").state_dict()) == ports_keys(
    region_bn="batch_stats"
  )


def test_ablation_has_no_region_keys_and_keeps_indices():
  model = small_model(region_layer=False)
  assert list(model.state_dict()) == ports_keys(region_layer=False)
  assert isinstance(model.extractor[1], torch.nn.Identity)


def test_parameter_count(full_model):
  assert count_parameters(full_model) == 56_867_532
  base = count_parameters(small_model(num_aus=12))
  for num_aus in (1, 8, 40):
    assert count_parameters(small_model(num_aus=num_aus)) - base == (
      2049 * (num_aus - 12)
    )


def test_full_size_forward_shape(full_model):
  torch.manual_seed(1)
  images = torch.rand(2, 3, 170, 170)
  with torch.no_grad():
    logits = full_model(images)
  assert logits.shape == (2, 12)
  assert torch.isfinite(logits).all()
  assert not torch.allclose(logits[0], logits[1])


def test_train_and_eval_differ_only_through_dropout_and_bn():
  torch.manual_seed(2)
  images = torch.rand(3, 3, SMALL_INPUT, SMALL_INPUT)
  with torch.no_grad():
    for kwargs in ({"region_bn": "batch_stats"}, {"region_layer": False}):
      model = small_model(dropout=0.0, **kwargs)
      torch.testing.assert_close(model.train()(images), model.eval()(images))
    affine = small_model(dropout=0.0)
    assert not torch.allclose(affine.train()(images), affine.eval()(images))
    dropout = small_model(region_bn="batch_stats", dropout=0.5)
    eval_logits = dropout.eval()(images)
    torch.testing.assert_close(dropout(images), eval_logits)
    assert not torch.allclose(dropout.train()(images), eval_logits)


def test_bad_choices_raise():
  with pytest.raises(ValueError, match="region_bn='group'.*affine"):
    RegionLayer(4, (2, 2), region_bn="group")
  with pytest.raises(ValueError, match="init='xavier'.*caffe"):
    small_model(init="xavier")


# Region layer.


def region_module(layer, i, j):
  return getattr(layer, f"region_conv_{i}_{j}")


def randomized_region_layer(channels=4, grid=(4, 4)):
  layer = RegionLayer(channels, grid, region_bn="affine")
  for i in range(grid[0]):
    for j in range(grid[1]):
      norm = region_module(layer, i, j)[0]
      norm.running_mean.normal_()
      norm.running_var.uniform_(0.5, 2.0)
      torch.nn.init.normal_(norm.weight)
      torch.nn.init.normal_(norm.bias)
  return layer.eval()


def test_region_patches_are_independent():
  torch.manual_seed(3)
  layer = randomized_region_layer()
  inputs = torch.randn(2, 4, 16, 16)
  changed = inputs.clone()
  changed[:, :, 4:8, 8:12] += torch.randn(2, 4, 4, 4)
  with torch.no_grad():
    difference = (layer(changed) - layer(inputs)).abs()
  inside = torch.zeros(16, 16, dtype=torch.bool)
  inside[4:8, 8:12] = True
  assert difference[..., ~inside].max() == 0
  assert difference[..., inside].min() > 0


def test_each_patch_uses_its_own_region_module():
  torch.manual_seed(4)
  layer = randomized_region_layer(grid=(2, 4))
  inputs = torch.randn(2, 4, 8, 16)
  with torch.no_grad():
    outputs = layer(inputs)
    for i in range(2):
      for j in range(4):
        patch = inputs[..., 4 * i : 4 * i + 4, 4 * j : 4 * j + 4]
        torch.testing.assert_close(
          outputs[..., 4 * i : 4 * i + 4, 4 * j : 4 * j + 4],
          patch + region_module(layer, i, j)(patch),
        )


def test_region_weights_are_not_shared():
  layer = RegionLayer(4, (4, 4))
  weights = torch.stack(
    [
      region_module(layer, i, j)[2].weight.flatten()
      for i in range(4)
      for j in range(4)
    ]
  )
  distances = torch.cdist(weights, weights)
  assert (distances + torch.eye(16)).min() > 0
  assert len({id(p) for p in layer.parameters()}) == 16 * 4


def test_batch_stats_region_bn_has_no_state():
  norm = RegionLayer(4, (2, 2), region_bn="batch_stats").region_conv_0_0[0]
  assert list(norm.parameters()) == [] and list(norm.buffers()) == []


def test_grid_not_dividing_the_map_raises():
  layer = RegionLayer(4, (3, 3))
  with pytest.raises(ValueError, match="16x16.*3x3"):
    layer(torch.randn(1, 4, 16, 16))


# Init variants.


def assert_normal(tensor, std, mean=0.0):
  values = tensor.detach().double()
  assert values.std().item() == pytest.approx(std, rel=0.05)
  assert abs(values.mean().item() - mean) < 4 * std / math.sqrt(values.numel())


def test_caffe_init():
  torch.manual_seed(5)
  model = small_model(init="caffe")
  extractor, classifier = model.extractor, model.classifier
  assert_normal(extractor[0].weight, 0.01)
  assert (extractor[0].bias == 0).all()
  region_weights = torch.cat(
    [
      m.weight.flatten()
      for m in extractor[1].modules()
      if isinstance(m, torch.nn.Conv2d)
    ]
  )
  assert_normal(region_weights, 0.01)
  for index in (5, 7, 9, 11):
    assert_normal(extractor[index].weight, 0.01)
  convs = [m for m in extractor.modules() if isinstance(m, torch.nn.Conv2d)]
  assert len(convs) == 1 + 64 + 4
  assert all((conv.bias == 1).all() for conv in convs[1:])
  for index in (0, 3):
    assert_normal(classifier[index].weight, 0.005)
    assert (classifier[index].bias == 1).all()
  assert_normal(classifier[6].weight, 0.01)
  assert (classifier[6].bias == 0).all()


def test_he_init():
  torch.manual_seed(6)
  model = small_model(init="he")
  convs = [
    m for m in model.extractor.modules() if isinstance(m, torch.nn.Conv2d)
  ]
  region_weights = torch.cat([c.weight.flatten() for c in convs[1:65]])
  assert_normal(region_weights, math.sqrt(2 / (32 * 9)))
  fan_ins = {0: 3 * 121, 5: 32 * 64, 7: 16 * 64, 9: 16 * 36, 11: 16 * 25}
  for index, fan_in in fan_ins.items():
    assert_normal(model.extractor[index].weight, math.sqrt(2 / fan_in))
  assert_normal(model.classifier[0].weight, math.sqrt(2 / 16))
  assert_normal(model.classifier[3].weight, math.sqrt(2 / 4096))
  assert_normal(model.classifier[6].weight, 0.01)
  layers = [*convs, *(model.classifier[i] for i in (0, 3, 6))]
  assert all((layer.bias == 0).all() for layer in layers)


@pytest.mark.parametrize("init", ["pytorch", "caffe", "he"])
def test_region_bn_starts_as_identity(init):
  model = small_model(init=init)
  norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
  assert len(norms) == 64
  assert all((n.weight == 1).all() and (n.bias == 0).all() for n in norms)


# Loss.


def numpy_loss(logits, labels):
  log_p = -np.logaddexp(0.0, -logits)
  log_not_p = -np.logaddexp(0.0, logits)
  picked = np.where(labels > 0, log_p, 0.0) + np.where(
    labels < 0, log_not_p, 0.0
  )
  return -picked.sum() / logits.shape[0]


def loss_case(seed):
  rng = np.random.default_rng(seed)
  logits = rng.normal(0.0, 3.0, (6, 5))
  logits[0, :3] = (60.0, -60.0, 200.0)
  labels = rng.choice([-1, 0, 1], size=(6, 5))
  labels[:, 2] = 0
  labels[0, :2] = (-1, 1)
  return logits, labels


def test_loss_matches_numpy_in_float64():
  logits, labels = loss_case(7)
  loss = multilabel_sigmoid_cross_entropy(
    torch.from_numpy(logits), torch.from_numpy(labels)
  )
  assert loss.dtype == torch.float64
  np.testing.assert_allclose(
    loss.item(), numpy_loss(logits, labels), rtol=1e-12
  )


def test_loss_in_float32():
  logits, labels = loss_case(8)
  loss = multilabel_sigmoid_cross_entropy(
    torch.from_numpy(logits).float(), torch.from_numpy(labels).float()
  )
  assert loss.dtype == torch.float32
  np.testing.assert_allclose(loss.item(), numpy_loss(logits, labels), rtol=1e-5)
  saturated = multilabel_sigmoid_cross_entropy(
    torch.tensor([[-100.0, 100.0]]), torch.tensor([[1.0, -1.0]])
  )
  assert saturated.item() == pytest.approx(200.0)  # no clamping at 1e-20


def test_loss_gradient():
  logits, labels = loss_case(9)
  x = torch.from_numpy(logits).requires_grad_()
  multilabel_sigmoid_cross_entropy(x, torch.from_numpy(labels)).backward()
  sigmoid = 1.0 / (1.0 + np.exp(-logits))
  batch = logits.shape[0]
  expected = np.where(labels != 0, (sigmoid - (labels > 0)) / batch, 0.0)
  np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-12, atol=1e-300)
  assert (x.grad[:, 2] == 0).all()


def test_loss_rejects_mismatched_shapes():
  with pytest.raises(ValueError, match="differ"):
    multilabel_sigmoid_cross_entropy(torch.randn(2, 3), torch.ones(2, 4))


# Metrics.


def numpy_confusion(logits, labels, valid):
  counts = np.zeros((logits.shape[1], 4), dtype=np.int64)
  for n in range(logits.shape[0]):
    if not valid[n]:
      continue
    for c in range(logits.shape[1]):
      predicted, label = logits[n, c] > 0, labels[n, c]
      if label > 0:
        counts[c, 0 if predicted else 3] += 1
      elif label < 0:
        counts[c, 1 if predicted else 2] += 1
  return counts


def test_confusion_counts_match_numpy():
  rng = np.random.default_rng(10)
  logits = rng.normal(size=(40, 6))
  labels = rng.choice([-1, 0, 1], size=(40, 6))
  valid = rng.random(40) > 0.25
  logits_t, labels_t = torch.from_numpy(logits), torch.from_numpy(labels)
  counts = confusion_counts(logits_t, labels_t, torch.from_numpy(valid))
  assert counts.dtype == torch.int64 and counts.shape == (6, 4)
  np.testing.assert_array_equal(
    counts.numpy(), numpy_confusion(logits, labels, valid)
  )
  np.testing.assert_array_equal(
    confusion_counts(logits_t, labels_t).numpy(),
    numpy_confusion(logits, labels, np.ones(40, bool)),
  )


# Checkpoints.


def assert_same_state(model, reference):
  loaded, expected = model.state_dict(), reference.state_dict()
  assert list(loaded) == list(expected)
  for key, value in expected.items():
    assert torch.equal(loaded[key], value), key


def test_save_and_load_file_round_trip(full_model, tmp_path):
  path = tmp_path / "drml.pth"
  optimizer = torch.optim.SGD(full_model.parameters(), lr=0.001, momentum=0.9)
  checkpoint.save_checkpoint(full_model, path, epoch=3, optimizer=optimizer)
  raw = torch.load(path, map_location="cpu", weights_only=True)
  assert set(raw) == {"epoch", "state_dict", "optimizer"} and raw["epoch"] == 3
  del raw
  assert_same_state(checkpoint.load_model(path), full_model)


def test_load_data_parallel_wrapper(full_model):
  wrapped = {
    "epoch": 1,
    "optimizer": None,
    "state_dict": {
      f"module.{key}": value for key, value in full_model.state_dict().items()
    },
  }
  assert_same_state(checkpoint.load_model(wrapped), full_model)


def test_load_state_dict_unwraps_and_strips():
  state = {"module.a.weight": torch.randn(2), "module.b.bias": torch.randn(3)}
  loaded = checkpoint.load_state_dict({"state_dict": state})
  assert list(loaded) == ["a.weight", "b.bias"]
  assert torch.equal(loaded["a.weight"], state["module.a.weight"])


@pytest.mark.parametrize(
  "kwargs, expected",
  [
    (
      {},
      {
        "num_aus": 12,
        "grid": [8, 8],
        "region_bn": "affine",
        "region_layer": True,
        "intensity": False,
        "input_size": SMALL_INPUT,
      },
    ),
    (
      {"num_aus": 8, "grid": (2, 4), "region_bn": "batch_stats"},
      {
        "num_aus": 8,
        "grid": [2, 4],
        "region_bn": "batch_stats",
        "region_layer": True,
        "intensity": False,
        "input_size": SMALL_INPUT,
      },
    ),
    (
      {"num_aus": 5, "region_layer": False, "intensity": True},
      {
        "num_aus": 5,
        "grid": [8, 8],
        "region_bn": "affine",
        "region_layer": False,
        "intensity": True,
        "input_size": SMALL_INPUT,
      },
    ),
  ],
)
def test_infer_model_config(kwargs, expected):
  state = small_model(**kwargs).state_dict()
  assert checkpoint.infer_model_config(state) == expected


def test_bad_state_dict_names_the_missing_key():
  state = small_model().state_dict()
  del state["extractor.9.weight"]
  with pytest.raises(ValueError, match=r"extractor\.9\.weight"):
    checkpoint.infer_model_config(state)
  with pytest.raises(ValueError, match=r"extractor\.0\.weight"):
    checkpoint.load_model({"fc.weight": torch.randn(3, 2)})
