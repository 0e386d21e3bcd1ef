"""Per-AU confusion counts, jit-friendly, accumulated over a whole split."""

import jax
import jax.numpy as jnp

COUNT_COLUMNS = ("tp", "fp", "tn", "fn")


def confusion_counts(
  logits: jax.Array, labels: jax.Array, valid: jax.Array | None = None
) -> jax.Array:
  """int32 (C, 4) counts [tp, fp, tn, fn] per AU.

  An AU is predicted present when its probability exceeds 0.5 (logit > 0).
  Labels equal to 0 are ignored, and so are examples with `valid` False (the
  padding of a last evaluation batch). Sum the counts of all batches, then
  turn them into scores with `drml_jax.scoring.scores.au_scores`.
  """
  predicted = logits > 0
  known = labels != 0
  if valid is not None:
    known = known & valid[:, None]
  positive = labels > 0

  def count(mask):
    return jnp.sum(mask & known, axis=0, dtype=jnp.int32)

  return jnp.stack(
    [
      count(predicted & positive),
      count(predicted & ~positive),
      count(~predicted & ~positive),
      count(~predicted & positive),
    ],
    axis=-1,
  )
