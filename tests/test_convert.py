"""The convert command: a port's PyTorch checkpoint to orbax and back, bad inputs."""

import pytest
import torch

from drml_jax import convert
from drml_jax.store import checkpoint
from drml_jax.store.interchange import to_torch_state_dict
from tests.test_interchange import INPUT, assert_identical, random_torch_model


@pytest.mark.slow
def test_convert_cli_both_ways(tmp_path, capsys):
  reference = random_torch_model(num_aus=3)
  wrapped = {
    "epoch": 5,
    "optimizer": None,
    "state_dict": {"module." + k: v for k, v in reference.state_dict().items()},
  }
  torch.save(wrapped, tmp_path / "port.pth")
  # The input size (82, not the usual 170) is read off fc1's width.
  assert (
    convert.main(
      ["torch-to-orbax", str(tmp_path / "port.pth"), str(tmp_path / "ckpt")]
    )
    == 0
  )
  restored = checkpoint.restore(tmp_path / "ckpt")
  model, config = restored.model, restored.model_config
  assert config == {
    "num_aus": 3,
    "grid": [8, 8],
    "region_bn": "affine",
    "region_layer": True,
    "intensity": False,
    "input_size": INPUT,
  }
  assert_identical(to_torch_state_dict(model), reference.state_dict())

  assert (
    convert.main(
      ["orbax-to-torch", str(tmp_path / "ckpt"), str(tmp_path / "back.pth")]
    )
    == 0
  )
  back = torch.load(tmp_path / "back.pth", weights_only=True)
  assert_identical(back["state_dict"], reference.state_dict())

  # Nothing already written is overwritten, and a bad source is one line.
  assert (
    convert.main(
      ["orbax-to-torch", str(tmp_path / "ckpt"), str(tmp_path / "back.pth")]
    )
    == 2
  )
  assert "already exists" in capsys.readouterr().err
  assert (
    convert.main(
      ["torch-to-orbax", str(tmp_path / "nope.pth"), str(tmp_path / "c2")]
    )
    == 2
  )
  assert "nope.pth does not exist" in capsys.readouterr().err
  torch.save(
    {"state_dict": {"fc.weight": torch.zeros(2)}}, tmp_path / "other.pth"
  )
  assert (
    convert.main(
      ["torch-to-orbax", str(tmp_path / "other.pth"), str(tmp_path / "c3")]
    )
    == 2
  )
  assert "missing key" in capsys.readouterr().err
