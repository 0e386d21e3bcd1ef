"""The ports' form (reference_torch/port.py) computes reference_torch's DRML.

Both forms do the same float32 arithmetic on the same values; only each
patch's memory layout differs (a contiguous copy against a strided view),
which may change the order in which BatchNorm's statistics and the conv's
reductions are summed. A reordered float32 sum differs by a few units in the
last place of its largest terms (measured: up to ~6e-6 on kernel gradients of
~20, 5e-7 on outputs of ~4), so values are compared with rtol 1e-5 and atol
1e-5; a real difference (a missing residual, a region run on the wrong patch)
is of the order of the values themselves.
"""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

# pylint: disable=wrong-import-position
from reference_torch.losses import multilabel_sigmoid_cross_entropy
from reference_torch.model import DRML, RegionLayer
from reference_torch.port import PortRegionLayer, port_drml, port_loss

TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


def _assert_same_step(reference, port, inputs):
  """One train-mode forward and backward: outputs, gradients, BN statistics."""
  inputs = [inputs.clone().requires_grad_() for _ in range(2)]
  outputs = [model(x) for model, x in zip((reference, port), inputs)]
  torch.testing.assert_close(outputs[1], outputs[0], **TOLERANCE)
  weights = torch.randn_like(outputs[0])
  for output in outputs:
    (output * weights).sum().backward()
  torch.testing.assert_close(inputs[1].grad, inputs[0].grad, **TOLERANCE)
  grads = {name: p.grad for name, p in port.named_parameters()}
  for name, p in reference.named_parameters():
    torch.testing.assert_close(grads[name], p.grad, **TOLERANCE, msg=name)
  torch.testing.assert_close(
    port.state_dict(), reference.state_dict(), **TOLERANCE
  )


@pytest.mark.parametrize("region_bn", ["affine", "batch_stats"])
def test_port_region_layer_computes_the_reference_layer(region_bn):
  torch.manual_seed(0)
  reference = RegionLayer(32, region_bn=region_bn)
  port = PortRegionLayer(32, region_bn=region_bn)
  port.load_state_dict(reference.state_dict())  # strict: the same keys
  _assert_same_step(reference, port, torch.randn(3, 32, 40, 40))


@pytest.mark.slow
def test_port_drml_holds_the_reference_state_dict_and_computes_the_same():
  torch.manual_seed(0)
  reference = DRML(3, input_size=74, dropout=0.0)
  port = port_drml(reference)
  assert isinstance(port.extractor[1], PortRegionLayer)
  assert list(port.state_dict()) == list(reference.state_dict())
  port.load_state_dict(reference.state_dict())
  _assert_same_step(reference, port, torch.randn(2, 3, 74, 74))
  assert not {p.data_ptr() for p in port.parameters()} & {
    p.data_ptr() for p in reference.parameters()
  }  # copies, not shared tensors


def test_port_region_layer_rejects_a_map_off_the_grid():
  with pytest.raises(ValueError, match="not divisible"):
    PortRegionLayer(4)(torch.zeros(1, 4, 20, 21))


def test_port_loss_is_the_sigmoid_cross_entropy_with_a_clamp():
  torch.manual_seed(0)
  logits = 4 * torch.randn(5, 12)
  labels = torch.randint(-1, 2, (5, 12)).float()
  torch.testing.assert_close(
    port_loss(logits, labels),
    multilabel_sigmoid_cross_entropy(logits, labels),
    rtol=1e-5,
    atol=1e-6,
  )
  # sigmoid(-200) rounds to 0 in float32: the port takes log(1e-20) instead.
  far = torch.tensor([[-200.0, 0.0]], requires_grad=True)
  loss = port_loss(far, torch.tensor([[1.0, 0.0]]))
  assert loss.item() == pytest.approx(-math.log(1e-20), rel=1e-6)
  loss.backward()
  assert far.grad.abs().max().item() == 0.0
