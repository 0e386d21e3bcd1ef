"""DRML's masked multi-label sigmoid cross-entropy, optionally class-weighted."""

import jax
import jax.numpy as jnp
import numpy as np

# config.loss.pos_weight: none (the seed's and the paper's loss) or
# train_rates (`positive_weights` of the training split's labels).
POS_WEIGHTS = ("none", "train_rates")


def multilabel_sigmoid_cross_entropy(
  logits: jax.Array, labels: jax.Array, pos_weight: jax.Array | None = None
) -> jax.Array:
  """-(1/N) sum_{n,c} w_c [t>0] log s(x) + [t<0] log(1 - s(x)), N the batch size.

  Labels are in {-1, 0, +1}; 0 means "ignore" and contributes nothing.
  `pos_weight` (C,) weighs each AU's positive terms (w_c = 1 without it).
  The log-sigmoid form is exact and never overflows (no probability
  clamping). Computed in float32 at least, whatever the logits' dtype.
  """
  logits = logits.astype(jnp.promote_types(logits.dtype, jnp.float32))
  positive = jax.nn.log_sigmoid(logits)
  if pos_weight is not None:
    positive = positive * pos_weight.astype(logits.dtype)
  per_label = jnp.where(labels > 0, positive, 0.0) + jnp.where(
    labels < 0, jax.nn.log_sigmoid(-logits), 0.0
  )
  return -per_label.sum() / logits.shape[0]


def positive_weights(positives, labelled) -> np.ndarray:
  """(C,) float32 w_c = (1 - p_c) / p_c = negatives / positives, p_c the AU's
  positive rate among its labelled examples: a rare AU's positives weigh as
  much in all as its negatives. 1 for an AU without a positive or a negative.
  """
  positives = np.asarray(positives, np.float64)
  negatives = np.asarray(labelled, np.float64) - positives
  both = (positives > 0) & (negatives > 0)
  return np.where(both, negatives / np.maximum(positives, 1), 1.0).astype(
    np.float32
  )
