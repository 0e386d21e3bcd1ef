"""Per-AU confusion counts, jit-friendly, accumulated over a whole split."""

import jax
import jax.numpy as jnp
import numpy as np

COUNT_COLUMNS = ("tp", "fp", "tn", "fn")


def confusion(predicted, labels, known=None, *, xp=np, dtype=None):
  """(C, 4) confusion counts [tp, fp, tn, fn] per AU: the one implementation,
  on device (`confusion_counts`, `xp=jax.numpy`) and on the host
  (NumPy, `drml_jax.scoring.scores.counts_at`).

  predicted: (N, C) bool, the AU predicted present; labels: (N, C) in
  {-1, 0, +1}, 0 ignored; known: None or a bool mask broadcast against
  labels, False also ignored (the padding of a last batch); xp: the array
  module; dtype: of the counts, xp's default integer when None.
  """
  mask = labels != 0
  if known is not None:
    mask = mask & known
  positive = labels > 0

  def count(where):
    return xp.sum(where & mask, axis=0, dtype=dtype)

  return xp.stack(
    [
      count(predicted & positive),
      count(predicted & ~positive),
      count(~predicted & ~positive),
      count(~predicted & positive),
    ],
    axis=-1,
  )


def confusion_counts(
  logits: jax.Array, labels: jax.Array, valid: jax.Array | None = None
) -> jax.Array:
  """int32 (C, 4) counts [tp, fp, tn, fn] per AU.

  An AU is predicted present when its probability exceeds 0.5 (logit > 0).
  Labels equal to 0 are ignored, and so are examples with `valid` False (the
  padding of a last evaluation batch). Sum the counts of all batches, then
  turn them into scores with `drml_jax.scoring.scores.au_scores`.
  """
  return confusion(
    logits > 0,
    labels,
    None if valid is None else valid[:, None],
    xp=jnp,
    dtype=jnp.int32,
  )
