"""SGD with momentum and weight decay, as torch.optim.SGD computes it."""

from __future__ import annotations

import jax
import optax

SCHEDULES = ("constant", "step")


def learning_rate_schedule(
  learning_rate: float,
  schedule: str = "constant",
  *,
  step_size: int | None = None,
  gamma: float = 0.1,
):
  """A constant rate, or one multiplied by `gamma` every `step_size` steps."""
  if schedule == "constant":
    return optax.constant_schedule(learning_rate)
  if schedule == "step":
    if not step_size or step_size <= 0:
      raise ValueError(
        f"schedule='step' needs a positive step_size, got {step_size!r}"
      )
    return optax.exponential_decay(
      learning_rate, step_size, gamma, staircase=True
    )
  raise ValueError(f"schedule={schedule!r}: expected one of {SCHEDULES}")


def is_bias(path) -> bool:
  """True for a parameter named `bias` (its last dict key)."""
  names = [k.key for k in path if isinstance(k, jax.tree_util.DictKey)]
  return bool(names) and names[-1] == "bias"


def _bias_mask(params, want_bias: bool):
  return jax.tree_util.tree_map_with_path(
    lambda path, _: is_bias(path) == want_bias, params
  )


def make_optimizer(
  learning_rate: float,
  *,
  momentum: float = 0.9,
  weight_decay: float = 0.0,
  schedule: str = "constant",
  step_size: int | None = None,
  gamma: float = 0.1,
  caffe_bias_rule: bool = False,
) -> optax.GradientTransformation:
  """The optax twin of `torch.optim.SGD(lr, momentum, weight_decay=wd)`.

  Weight decay is added to the gradient before the momentum trace, on every
  parameter, as torch does. With `caffe_bias_rule`, parameters named `bias`
  get no weight decay and twice the learning rate (Caffe's lr_mult 2,
  decay_mult 0), the doubling applied to the gradient entering the momentum.
  """
  lr = learning_rate_schedule(
    learning_rate, schedule, step_size=step_size, gamma=gamma
  )
  if caffe_bias_rule:
    decay = optax.add_decayed_weights(
      weight_decay, mask=lambda p: _bias_mask(p, False)
    )
    bias_lr = optax.masked(optax.scale(2.0), lambda p: _bias_mask(p, True))
    return optax.chain(decay, bias_lr, optax.sgd(lr, momentum=momentum))
  return optax.chain(
    optax.add_decayed_weights(weight_decay), optax.sgd(lr, momentum=momentum)
  )
