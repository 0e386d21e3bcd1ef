"""The Flax DRML and the PyTorch reference compute the same network.

The intensity head is on in every test: the logits' path is the same with
it, and its layer, activation and loss are compared beside them.

Both models get the same random weights (random BatchNorm statistics and
affine parameters too, so no layer is an identity), through the interchange
layer, and random inputs. Errors are measured relative to the largest
magnitude of the reference tensor: `max|jax - torch| / max|torch|`.

Tolerances (measured maxima in brackets):
- float64 (at the 82x82 input): both sides evaluate the same formulas in different orders
  (XLA's vs oneDNN's reductions, im2col matmuls vs direct convolutions). Each
  float64 op is exact to ~1e-16; the longest reductions (fc1's inputs,
  BatchNorm over a whole batch) and three SGD steps compound that to ~1e-14
  [logits 8e-15, gradients 1.4e-14, after 3 SGD steps 1.8e-14]. 1e-10 leaves
  four orders of magnitude of slack and still catches any real difference (a
  wrong flatten order or variance is off by ~1e-1).
- float32: the same rounding at eps 6e-8 compounds to a few 1e-6 [logits
  2.9e-6, intensities 9.2e-8, gradients 7.3e-6 without the head and 1.6e-5
  with it (conv1's or a region conv's bias: a sum over a whole map and
  batch), after 3 SGD steps 7.0e-6]. 1e-4 forward and 2e-4 for gradients and
  SGD steps are 10-30x the measured maxima, so a noisier summation order on
  another CPU still passes while any real difference fails.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

from drml_jax.model import train_state
from drml_jax.model.network import DRML, Outputs
from drml_jax.store.interchange import to_torch_state_dict
from drml_jax.train.losses import drml_loss
from drml_jax.train.optim import make_optimizer
from drml_jax.train.steps import make_train_step
from reference_torch.losses import masked_intensity_loss
from reference_torch.losses import (
  multilabel_sigmoid_cross_entropy as torch_occurrence_loss,
)
from reference_torch.model import DRML as TorchDRML
from reference_torch.model import (
  expected_intensity as torch_expected_intensity,
)

TOLERANCE = {
  "float32": {"forward": 1e-4, "grad": 2e-4, "sgd": 2e-4},
  "float64": {"forward": 1e-10, "grad": 1e-10, "sgd": 1e-10},
}
NUM_AUS = 5
# 9x9 region patches and a 5x5x16 final map: flatten order still matters.
SMALL_INPUT = 82
# The training-path tests use 16 regions of 18x18: on CPU each region's
# convolutions are compiled apart (region_conv="unrolled"), and the
# per-region mapping is the same at any grid. test_eval_logits_agree checks
# the paper's 8x8 grid.
TRAIN_GRID = (4, 4)
LEARNING_RATE, WEIGHT_DECAY = 0.01, 0.005


def relative_error(ours, reference) -> float:
  ours, reference = (
    np.asarray(ours, np.float64),
    np.asarray(reference, np.float64),
  )
  return float(
    np.max(np.abs(ours - reference)) / max(np.max(np.abs(reference)), 1e-30)
  )


def assert_close(ours, reference, tolerance: float, what: str) -> float:
  """Asserts the relative error is below tolerance; prints it (pytest -rP shows it)."""
  error = relative_error(ours, reference)
  print(f"{what}: max relative error {error:.2e} (tolerance {tolerance:.0e})")
  assert error < tolerance, what
  return error


def randomize(model: DRML, seed: int) -> None:
  """Random BatchNorm affine parameters and running statistics."""
  bn = model.region.units.bn
  keys = jax.random.split(jax.random.key(seed), 4)
  shape, dtype = bn.scale[...].shape, bn.scale[...].dtype
  bn.scale[...] = jax.random.uniform(keys[0], shape, dtype, 0.5, 1.5)
  bn.bias[...] = jax.random.normal(keys[1], shape, dtype) * 0.1
  bn.mean[...] = jax.random.normal(keys[2], shape, dtype) * 0.05
  bn.var[...] = jax.random.uniform(keys[3], shape, dtype, 0.5, 2.0)


def make_pair(
  dtype: str,
  *,
  input_size: int,
  region_bn: str = "affine",
  dropout=0.0,
  grid=(8, 8),
  intensity: bool = True,
):
  """A Flax DRML and a PyTorch DRML holding the same random weights, the
  intensity head included unless `intensity` is False."""
  param_dtype = jnp.dtype(dtype)
  model = DRML(
    NUM_AUS,
    grid=grid,
    init="he",
    region_bn=region_bn,
    input_size=input_size,
    dropout=dropout,
    intensity=intensity,
    region_conv="unrolled",
    param_dtype=param_dtype,
    rngs=nnx.Rngs(0),
  )
  if region_bn == "affine":
    randomize(model, 1)
  reference = TorchDRML(
    NUM_AUS,
    grid=grid,
    region_bn=region_bn,
    input_size=input_size,
    dropout=dropout,
    intensity=intensity,
  )
  reference = reference.to(getattr(torch, dtype))
  reference.load_state_dict(to_torch_state_dict(model), strict=True)
  return model, reference


def inputs(dtype: str, batch: int, input_size: int, seed: int = 0):
  rng = np.random.default_rng(seed)
  images = rng.uniform(0, 1, (batch, input_size, input_size, 3)).astype(dtype)
  labels = rng.choice(
    np.array([-1, 0, 1], np.int8), (batch, NUM_AUS), p=[0.5, 0.2, 0.3]
  )
  # Intensities 0..5, a fifth of them unknown (-1).
  intensity = rng.integers(-1, 6, (batch, NUM_AUS)).astype(np.int8)
  return images, {"labels": labels, "intensity": intensity}


def torch_loss(reference, images, batch):
  """The reference model's training loss of a batch (`drml_loss`'s terms)."""
  logits, thresholds = reference.outputs(to_torch_images(images))
  return torch_occurrence_loss(
    logits, torch.from_numpy(batch["labels"])
  ) + masked_intensity_loss(thresholds, torch.from_numpy(batch["intensity"]))


def to_torch_images(images):
  return torch.from_numpy(images.transpose(0, 3, 1, 2).copy())


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
  if request.param == "float64":
    with jax.enable_x64(True):
      yield request.param
  else:
    yield request.param


@pytest.mark.slow
def test_eval_logits_agree(dtype):
  # The full 170x170 network in float32; float64 at the small input keeps the
  # suite fast (its rounding does not depend on the size).
  size = 170 if dtype == "float32" else SMALL_INPUT
  model, reference = make_pair(dtype, input_size=size)
  images, _ = inputs(dtype, 2, size)
  model.eval()
  reference.eval()
  logits, intensity = nnx.jit(
    lambda m, x: (lambda o: (o.logits, o.intensity))(m.outputs(x))
  )(model, jnp.asarray(images))
  with torch.no_grad():
    expected, thresholds = reference.outputs(to_torch_images(images))
    expected_intensity = torch_expected_intensity(thresholds)
  assert np.abs(expected.numpy()).max() > 1e-2  # logits that actually vary
  assert_close(
    logits, expected, TOLERANCE[dtype]["forward"], f"eval logits {dtype}"
  )
  assert np.ptp(expected_intensity.numpy()) > 1e-3  # intensities that vary
  assert_close(
    intensity,
    expected_intensity,
    TOLERANCE[dtype]["forward"],
    f"eval intensities {dtype}",
  )


@pytest.mark.slow
@pytest.mark.parametrize("region_bn", ["affine", "batch_stats"])
def test_train_forward_and_running_statistics_agree(dtype, region_bn):
  model, reference = make_pair(
    dtype, input_size=SMALL_INPUT, region_bn=region_bn, grid=TRAIN_GRID
  )
  images, _ = inputs(dtype, 3, SMALL_INPUT, seed=1)
  model.train()
  reference.train()
  logits = nnx.jit(lambda m, x: m(x))(model, jnp.asarray(images))
  with torch.no_grad():
    expected = reference(to_torch_images(images)).numpy()
  tolerance = TOLERANCE[dtype]["forward"]
  assert_close(logits, expected, tolerance, f"train logits {region_bn} {dtype}")
  ours = to_torch_state_dict(model)
  stats = [
    (ours[k], v) for k, v in reference.state_dict().items() if "running" in k
  ]
  regions = TRAIN_GRID[0] * TRAIN_GRID[1]
  assert len(stats) == (2 * regions if region_bn == "affine" else 0)
  if stats:
    assert_close(
      np.concatenate([np.asarray(o).ravel() for o, _ in stats]),
      np.concatenate([v.numpy().ravel() for _, v in stats]),
      tolerance,
      f"running statistics {dtype}",
    )
  for key, value in reference.state_dict().items():
    if "num_batches_tracked" in key:
      assert int(ours[key]) == int(value) == 1, key


def _jax_gradients(model, images, batch):
  graphdefs, state = train_state.split(model)

  def loss_of(params, batch_stats):
    merged = nnx.merge(graphdefs.train, params, batch_stats, copy=True)
    outputs: Outputs = merged.outputs(images)
    return drml_loss(outputs, batch)

  loss, grads = jax.jit(jax.value_and_grad(loss_of))(
    state.params, state.batch_stats
  )
  as_model = nnx.merge(graphdefs.train, grads, state.batch_stats)
  return float(loss), to_torch_state_dict(as_model)


@pytest.mark.slow
def test_loss_and_every_gradient_agree(dtype):
  model, reference = make_pair(dtype, input_size=SMALL_INPUT, grid=TRAIN_GRID)
  images, batch = inputs(dtype, 4, SMALL_INPUT, seed=2)
  loss, grads = _jax_gradients(model, jnp.asarray(images), batch)
  reference.train()
  expected_loss = torch_loss(reference, images, batch)
  expected_loss.backward()
  assert_close(
    loss, expected_loss.item(), TOLERANCE[dtype]["forward"], f"loss {dtype}"
  )
  named = dict(reference.named_parameters())
  regions = TRAIN_GRID[0] * TRAIN_GRID[1]
  # Region BN + conv; 5 convs, 3 fcs and the intensity layer.
  assert len(named) == regions * 4 + 9 * 2
  worst = max(named, key=lambda k: relative_error(grads[k], named[k].grad))
  assert_close(
    grads[worst],
    named[worst].grad,
    TOLERANCE[dtype]["grad"],
    f"gradient {dtype} (worst: {worst})",
  )


@pytest.mark.slow
def test_three_sgd_steps_agree(dtype):
  model, reference = make_pair(dtype, input_size=SMALL_INPUT, grid=TRAIN_GRID)
  tx = make_optimizer(LEARNING_RATE, momentum=0.9, weight_decay=WEIGHT_DECAY)
  graphdefs, state = train_state.create(model, tx)
  step = make_train_step(graphdefs.train, tx, donate=False)
  torch_sgd = torch.optim.SGD(
    reference.parameters(),
    lr=LEARNING_RATE,
    momentum=0.9,
    weight_decay=WEIGHT_DECAY,
  )
  reference.train()
  for seed in range(3):
    images, batch = inputs(dtype, 4, SMALL_INPUT, seed=10 + seed)
    state, loss = step(state, {"image": jnp.asarray(images), **batch})
    torch_sgd.zero_grad()
    expected = torch_loss(reference, images, batch)
    expected.backward()
    torch_sgd.step()
    assert_close(
      float(loss),
      expected.item(),
      TOLERANCE[dtype]["sgd"],
      f"loss at step {seed} {dtype}",
    )
  ours = to_torch_state_dict(train_state.merge(graphdefs.train, state))
  reference_state = reference.state_dict()
  counters = [k for k in reference_state if "num_batches_tracked" in k]
  assert all(int(ours[k]) == int(reference_state[k]) == 3 for k in counters)
  tensors = [k for k in reference_state if k not in counters]
  worst = max(
    tensors, key=lambda k: relative_error(ours[k], reference_state[k])
  )
  assert_close(
    ours[worst],
    reference_state[worst],
    TOLERANCE[dtype]["sgd"],
    f"parameters and statistics after 3 SGD steps {dtype} (worst: {worst})",
  )
