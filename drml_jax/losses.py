"""DRML's masked multi-label sigmoid cross-entropy."""

import jax
import jax.numpy as jnp


def multilabel_sigmoid_cross_entropy(
  logits: jax.Array, labels: jax.Array
) -> jax.Array:
  """-(1/N) sum_{n,c} [t>0] log s(x) + [t<0] log(1 - s(x)), N the batch size.

  Labels are in {-1, 0, +1}; 0 means "ignore" and contributes nothing. The
  log-sigmoid form is exact and never overflows (no probability clamping).
  Computed in float32 at least, whatever the logits' dtype.
  """
  logits = logits.astype(jnp.promote_types(logits.dtype, jnp.float32))
  per_label = jnp.where(
    labels > 0, jax.nn.log_sigmoid(logits), 0.0
  ) + jnp.where(labels < 0, jax.nn.log_sigmoid(-logits), 0.0)
  return -per_label.sum() / logits.shape[0]
