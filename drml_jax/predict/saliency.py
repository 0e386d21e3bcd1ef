"""Per-AU evidence maps: which pixels of a face made the model fire each AU.

  logits, weights = programs.network_of(model)  # drml_jax.predict.programs
  maps = evidence(logits, weights, inputs)     # (N, C, S, S), in a jit
  image = sheet(crop, maps[0], aus, probabilities[0], thresholds)

`evidence` is integrated gradients (Sundararajan et al., 2017): each AU's
logit is differentiated along the straight path from a baseline image to
the input, and the mean gradient times (input - baseline) attributes the
change of the logit to the input's pixels (the attributions sum to it).
The baseline is the input blurred (a Gaussian of BLUR_SIGMA of the side):
a face with its shape and colours but without the creases, edges and small
displacements that action units make, so the attribution goes to those,
not to the face being there at all. A map sums the attribution over the
colour channels: positive where the pixel is evidence for the AU,
negative where against.

The rest draws: a map placed over the 200x200 face crop the CSV describes
(resize mode saw the whole crop, crop mode its central square), and a sheet
of one panel per AU.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from data_pipeline.model_inputs import INPUT_SIZE
from data_pipeline.sources.base import IMAGE_SIZE

STEPS = 2  # midpoints on the path from the baseline to the input
BLUR_SIGMA = 0.05  # the baseline's Gaussian, a fraction of the input's side


@functools.lru_cache(maxsize=None)
def blur_matrix(size: int, sigma: float) -> np.ndarray:
  """(size, size) float32: a Gaussian blur along one axis, edges renormalised."""
  positions = np.arange(size, dtype=np.float64)
  weights = np.exp(-0.5 * ((positions[:, None] - positions) / sigma) ** 2)
  return (weights / weights.sum(1, keepdims=True)).astype(np.float32)


def blurred(inputs: jnp.ndarray) -> jnp.ndarray:
  """(N, S, S, 3) inputs with a Gaussian blur of BLUR_SIGMA * S pixels."""
  size = inputs.shape[1]
  matrix = blur_matrix(size, BLUR_SIGMA * size)
  inputs = jnp.einsum("oh,nhwc->nowc", matrix, inputs)
  return jnp.einsum("pw,nowc->nopc", matrix, inputs)


def evidence(
  apply: Callable[[Any, jnp.ndarray], jnp.ndarray],
  weights: Any,
  inputs: jnp.ndarray,
  steps: int = STEPS,
) -> jnp.ndarray:
  """(N, S, S, 3) model inputs -> (N, C, S, S) integrated gradients of each
  of the C logits `apply(weights, inputs)`, summed over channels, from a
  blurred baseline.

  Every face's path points are repeated once per AU and differentiated as
  one batch of N * C * steps images, each point's gradient taken of its own
  AU's logit: a training step's shapes, which the network's conv forms are
  built for (vmapping the backward pass over the AUs instead compiles far
  longer and runs slower on CPU, benchmarks/README.md#predict-speed).
  `apply` must build its network inside (a Flax module made outside a
  transform cannot be used inside it).
  """
  count, size = len(inputs), inputs.shape[1:]
  aus = jax.eval_shape(apply, weights, inputs[:1]).shape[-1]
  baseline = blurred(inputs)
  difference = inputs - baseline
  alphas = (jnp.arange(steps, dtype=inputs.dtype) + 0.5) / steps
  points = (
    baseline[:, None, None]
    + alphas[:, None, None, None] * difference[:, None, None]
  )  # (N, 1, K, S, S, 3)
  points = jnp.broadcast_to(points, (count, aus, steps, *size))
  own_logit = jnp.broadcast_to(
    jnp.eye(aus, dtype=inputs.dtype)[None, :, None], (count, aus, steps, aus)
  ).reshape(-1, aus)

  def own_logits(points):
    return (apply(weights, points) * own_logit).sum()

  grads = jax.grad(own_logits)(points.reshape(-1, *size))
  grads = grads.reshape(count, aus, steps, *size).mean(2)
  return (grads * difference[:, None]).sum(-1)


FOR = np.array([230, 30, 0], np.float32)  # evidence for an AU: red
AGAINST = np.array([0, 110, 255], np.float32)  # against it: blue
PANEL_COLUMNS = 4
CAPTION = 22  # pixels under each panel


def on_crop(evidence_map: np.ndarray, mode: str) -> np.ndarray:
  """An (S, S) map as a (200, 200) map over the face crop: resize mode's
  input is the whole crop resized, crop mode's its central 170x170."""
  # Imported here: Pillow's drawing is needed only once maps are drawn.
  from PIL import Image  # pylint: disable=import-outside-toplevel

  target = IMAGE_SIZE if mode == "resize" else INPUT_SIZE
  resized = np.asarray(
    Image.fromarray(evidence_map.astype(np.float32), mode="F").resize(
      (target, target), Image.BILINEAR
    )
  )
  placed = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
  start = (IMAGE_SIZE - target) // 2
  placed[start : start + target, start : start + target] = resized
  return placed


def overlay(crop: np.ndarray, signed: np.ndarray) -> np.ndarray:
  """(H, W, 3) uint8 crop under an (H, W) map in -1..1: red for, blue against."""
  alpha = np.clip(np.abs(signed), 0, 1)[..., None] * 0.85
  colour = np.where(signed[..., None] > 0, FOR, AGAINST)
  grey = crop.astype(np.float32).mean(-1, keepdims=True) * 0.5 + 64
  return (grey * (1 - alpha) + colour * alpha).astype(np.uint8)


def sheet(
  crop: np.ndarray,
  maps: np.ndarray,
  aus,
  probabilities: np.ndarray,
  thresholds: np.ndarray,
  mode: str = "resize",
) -> np.ndarray:
  """A face's evidence, one panel per AU: (H, W, 3) uint8 RGB.

  `crop` is the (200, 200, 3) face, `maps` its (C, S, S) evidence. Every
  panel shares one scale (the 99.5th percentile of the face's |evidence|),
  so a weak AU's panel looks weak; its caption gives the AU's probability,
  and ON when it is over the AU's threshold.
  """
  from PIL import Image, ImageDraw, ImageFont  # pylint: disable=import-outside-toplevel

  placed = np.stack([on_crop(m, mode) for m in maps])
  scale = float(np.percentile(np.abs(placed), 99.5)) or 1.0
  rows = -(-len(maps) // PANEL_COLUMNS)
  height = IMAGE_SIZE + CAPTION
  canvas = Image.new(
    "RGB", (PANEL_COLUMNS * IMAGE_SIZE, rows * height), (255, 255, 255)
  )
  draw = ImageDraw.Draw(canvas)
  font = ImageFont.load_default(size=15)
  for index, (au, p, threshold) in enumerate(
    zip(aus, probabilities, thresholds)
  ):
    x, y = index % PANEL_COLUMNS * IMAGE_SIZE, index // PANEL_COLUMNS * height
    canvas.paste(Image.fromarray(overlay(crop, placed[index] / scale)), (x, y))
    active = p > threshold
    text = f"{'AU' if active else 'au'}{au:02d}  p={p:.2f}"
    draw.text(
      (x + 6, y + IMAGE_SIZE + 3),
      text + ("  ON" if active else ""),
      fill=(0, 0, 0) if active else (110, 110, 110),
      font=font,
    )
  return np.asarray(canvas)
