"""PyTorch <-> Flax weight interchange: round trips, layout, errors, checkpoint files."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch
from flax import nnx

from drml_jax.model.network import DRML
from drml_jax.store.interchange import (
  InterchangeError,
  load_torch_state_dict,
  read_torch_checkpoint,
  to_torch_state_dict,
  write_torch_checkpoint,
)
from reference_torch.model import DRML as TorchDRML

INPUT = 82  # a 5x5x16 final map keeps fc1's flatten permutation in play


def random_torch_model(num_aus=4, region_bn="affine", seed=0):
  torch.manual_seed(seed)
  model = TorchDRML(num_aus, region_bn=region_bn, input_size=INPUT)
  with torch.no_grad():
    for name, buffer in model.named_buffers():
      if "running_mean" in name:
        buffer.normal_()
      elif "running_var" in name:
        buffer.uniform_(0.5, 2.0)
      elif "num_batches_tracked" in name:
        buffer.fill_(1234)
    for name, parameter in model.named_parameters():
      if ".0.weight" in name and "region" in name:
        parameter.uniform_(0.5, 1.5)
  return model


def _jax_model(num_aus=4, region_bn="affine"):
  return DRML(num_aus, region_bn=region_bn, input_size=INPUT, rngs=nnx.Rngs(7))


@pytest.fixture(scope="module")
def jax_model():
  return _jax_model()


def assert_identical(a, b):
  assert list(a) == list(b)
  for key in a:
    assert a[key].dtype == b[key].dtype, key
    assert torch.equal(a[key], b[key]), key


def test_torch_flax_torch_round_trip_is_bit_exact(jax_model):
  original = random_torch_model().state_dict()
  load_torch_state_dict(jax_model, original)
  assert_identical(to_torch_state_dict(jax_model), original)


@pytest.mark.slow
def test_round_trip_without_bn_state():
  original = random_torch_model(region_bn="batch_stats").state_dict()
  model = _jax_model(region_bn="batch_stats")
  load_torch_state_dict(model, original)
  assert_identical(to_torch_state_dict(model), original)


def test_first_fc_rows_follow_torch_flatten_order(jax_model):
  state_dict = random_torch_model().state_dict()
  load_torch_state_dict(jax_model, state_dict)
  # Row (c, h, w) of torch's fc1 input is row (h, w, c) of the Flax kernel.
  c, h, w = 3, 1, 4
  torch_column = state_dict["classifier.0.weight"][
    :, c * 25 + h * 5 + w
  ].numpy()
  np.testing.assert_array_equal(
    np.asarray(jax_model.fc1.kernel[...])[h * 80 + w * 16 + c], torch_column
  )


def _without(state_dict, key):
  return collections.OrderedDict(
    (k, v) for k, v in state_dict.items() if k != key
  )


def test_missing_key_is_named(jax_model):
  state_dict = _without(random_torch_model().state_dict(), "extractor.7.bias")
  with pytest.raises(
    InterchangeError,
    match=r"missing key 'extractor.7.bias' \(expected shape \(16,\)\)",
  ):
    load_torch_state_dict(jax_model, state_dict)


def test_wrong_shape_is_named(jax_model):
  state_dict = random_torch_model().state_dict()
  state_dict["extractor.5.weight"] = torch.zeros(16, 32, 7, 7)
  with pytest.raises(
    InterchangeError,
    match=r"extractor.5.weight has shape \(16, 32, 7, 7\) but the model expects \(16, 32, 8, 8\)",
  ):
    load_torch_state_dict(jax_model, state_dict)


def test_wrong_number_of_aus_is_named(jax_model):
  with pytest.raises(
    InterchangeError, match="checkpoint is for 6 AUs and the model for 4"
  ):
    load_torch_state_dict(jax_model, random_torch_model(num_aus=6).state_dict())


def test_unexpected_key_is_named():
  state_dict = (
    random_torch_model().state_dict()
  )  # affine BN keys into a model without them
  with pytest.raises(
    InterchangeError,
    match="unexpected key 'extractor.1.region_conv_0_0.0.weight'",
  ):
    load_torch_state_dict(_jax_model(region_bn="batch_stats"), state_dict)


def test_checkpoint_files_round_trip_atomically_and_bad_files_are_one_line(
  tmp_path,
):
  reference = random_torch_model(num_aus=3)
  torch.save(
    {"epoch": 1, "state_dict": reference.state_dict()}, tmp_path / "port.pth"
  )
  model, config = read_torch_checkpoint(tmp_path / "port.pth")
  assert config["input_size"] == INPUT and config["num_aus"] == 3
  write_torch_checkpoint(model, config, tmp_path / "back.pth", epoch=2)
  assert sorted(p.name for p in tmp_path.iterdir()) == [
    "back.pth",
    "port.pth",
  ]  # no .partial
  back = torch.load(tmp_path / "back.pth", weights_only=True)
  assert back["epoch"] == 2
  assert_identical(back["state_dict"], reference.state_dict())
  (tmp_path / "empty.pth").write_bytes(b"")
  (tmp_path / "garbage.pth").write_bytes(b"\x80\x04not a checkpoint")
  for name, reason in (
    ("empty.pth", "empty or cut short"),
    ("garbage.pth", "not a torch.save"),
  ):
    with pytest.raises(InterchangeError) as error:
      read_torch_checkpoint(tmp_path / name)
    message = str(error.value)
    assert (
      reason in message
      and "\n" not in message
      and "weights_only" not in message
    )
