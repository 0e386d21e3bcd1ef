"""Per-AU confusion counts, jit-friendly, accumulated over a whole split."""

import jax
import jax.numpy as jnp

from drml_jax.scoring import scores

COUNT_COLUMNS = ("tp", "fp", "tn", "fn")


def confusion_counts(
  logits: jax.Array, labels: jax.Array, valid: jax.Array | None = None
) -> jax.Array:
  """int32 (C, 4) counts [tp, fp, tn, fn] per AU.

  An AU is predicted present when its probability exceeds 0.5 (logit > 0).
  Labels equal to 0 are ignored, and so are examples with `valid` False (the
  padding of a last evaluation batch). Sum the counts of all batches, then
  turn them into scores with `drml_jax.scoring.scores.au_scores`. The
  counting is `drml_jax.scoring.scores.confusion`'s, as on the host.
  """
  return scores.confusion(
    logits > 0,
    labels,
    None if valid is None else valid[:, None],
    xp=jnp,
    dtype=jnp.int32,
  )
