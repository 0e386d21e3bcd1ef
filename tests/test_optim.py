"""The optimizer: torch.optim.SGD's update rule, the Caffe bias rule, the schedule."""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest

from drml_jax.train.optim import learning_rate_schedule, make_optimizer


def _sgd_reference(
  params, grads_seq, lr, momentum, wd, lr_scale=None, decay_mask=None
):
  """torch.optim.SGD's update, written out."""
  velocity = {k: np.zeros_like(v) for k, v in params.items()}
  params = {k: v.copy() for k, v in params.items()}
  for grads in grads_seq:
    for k in params:
      g = grads[k] + (
        wd * params[k] if decay_mask is None or decay_mask[k] else 0
      )
      g = g * (lr_scale[k] if lr_scale else 1)
      velocity[k] = momentum * velocity[k] + g
      params[k] = params[k] - lr * velocity[k]
  return params


@pytest.mark.parametrize("caffe_bias_rule", [False, True])
def test_optimizer_matches_torch_sgd_rule(caffe_bias_rule):
  with jax.enable_x64(True):
    rng = np.random.default_rng(0)
    params = {
      "conv": {"kernel": rng.normal(size=(3, 2)), "bias": rng.normal(size=(2,))}
    }
    grads_seq = [
      {
        "conv": {
          "kernel": rng.normal(size=(3, 2)),
          "bias": rng.normal(size=(2,)),
        }
      }
      for _ in range(4)
    ]
    tx = make_optimizer(
      0.1, momentum=0.9, weight_decay=0.01, caffe_bias_rule=caffe_bias_rule
    )
    state, current = tx.init(params), params
    for grads in grads_seq:
      updates, state = tx.update(grads, state, current)
      current = optax.apply_updates(current, updates)
  flat = lambda tree: {
    "kernel": tree["conv"]["kernel"],
    "bias": tree["conv"]["bias"],
  }
  expected = _sgd_reference(
    flat(params),
    [flat(g) for g in grads_seq],
    0.1,
    0.9,
    0.01,
    lr_scale={"kernel": 1, "bias": 2} if caffe_bias_rule else None,
    decay_mask={"kernel": True, "bias": False} if caffe_bias_rule else None,
  )
  for key, value in flat(current).items():
    np.testing.assert_allclose(value, expected[key], rtol=1e-12)


def test_step_schedule():
  schedule = learning_rate_schedule(0.001, "step", step_size=4000)
  assert [float(schedule(s)) for s in (0, 3999, 4000, 8000)] == pytest.approx(
    [1e-3, 1e-3, 1e-4, 1e-5]
  )
  with pytest.raises(ValueError, match="step_size"):
    learning_rate_schedule(0.001, "step")
