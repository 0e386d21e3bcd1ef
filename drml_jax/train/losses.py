"""DRML's training loss: the masked multi-label sigmoid cross-entropy,
optionally class-weighted, plus, for a network with the intensity head, its
masked ordinal cross-entropy."""

import jax
import jax.numpy as jnp
import numpy as np

from data_pipeline.labels import MAX_INTENSITY
from data_pipeline.sources.base import UNKNOWN_INTENSITY
from drml_jax.model.network import Outputs

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


def masked_intensity_loss(
  intensity_logits: jax.Array, targets: jax.Array
) -> jax.Array:
  """-(1/N) sum_{n,c,k} [t >= 0] ([t >= k] log s(z_k) + [t < k] log(1 - s(z_k))).

  The ordinal head's loss: a sigmoid cross-entropy per threshold
  k = 1 .. MAX_INTENSITY of "intensity >= k". intensity_logits: (N, C,
  MAX_INTENSITY); targets: (N, C) integers 0..MAX_INTENSITY, or
  UNKNOWN_INTENSITY (-1), which contributes nothing. N is the batch size.
  Computed in float32 at least.
  """
  logits = intensity_logits.astype(
    jnp.promote_types(intensity_logits.dtype, jnp.float32)
  )
  reached = targets[..., None] >= jnp.arange(1, MAX_INTENSITY + 1)
  per_threshold = jnp.where(
    reached, jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits)
  )
  known = (targets != UNKNOWN_INTENSITY)[..., None]
  return -jnp.where(known, per_threshold, 0.0).sum() / logits.shape[0]


def drml_loss(
  outputs: Outputs,
  batch: dict,
  *,
  pos_weight: jax.Array | None = None,
  intensity_weight: float = 1.0,
) -> jax.Array:
  """The training loss of a batch: the cross-entropy of its "labels", plus
  `intensity_weight` times the intensity loss of its "intensity" when the
  network has the intensity head."""
  loss = multilabel_sigmoid_cross_entropy(
    outputs.logits, batch["labels"], pos_weight
  )
  if outputs.intensity_logits is None:
    return loss
  return loss + intensity_weight * masked_intensity_loss(
    outputs.intensity_logits, batch["intensity"]
  )


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
