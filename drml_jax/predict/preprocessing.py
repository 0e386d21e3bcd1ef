"""Evaluation's preprocessing of 200x200 uint8 faces, in JAX, without TensorFlow.

  prepare = Preprocessing("resize", "rgb", input_size=170)
  inputs = prepare(faces)  # (N, 200, 200, 3) uint8 -> (N, 170, 170, 3) float32

The data pipeline (`data_pipeline.pipeline`) preprocesses evaluation's faces
with TensorFlow: resize mode resizes each 200x200 face to 170x170 with
`tf.image.resize(..., "bilinear", antialias=True)` and rounds it to uint8;
crop mode cuts the central 170x170; then "rgb" divides by 255 and
"bgr_mean" reverses the channels and subtracts the training split's mean
image (resized or cut the same way, not rounded); a model built for another
input size gets the result resized again, antialiased, unrounded.

Predicting must not pay TensorFlow's import (seconds and hundreds of MB) for
this. An antialiased bilinear resize is linear and separable: each axis is
a matrix of triangle-kernel weights (`device_inputs.resize_matrix`), computed in float32
the way TensorFlow's ScaleAndTranslate computes them, so the same steps run
inside the jitted forward pass. Its sums run in another order, so a value
differs from TensorFlow's by float32 rounding (at most 6.1e-5 of 255
measured), and a few pixels in 10,000 that sit on a rounding boundary land
one level (1/255) off; `tests/test_predict_inputs.py` bounds both.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from data_pipeline import inputs
from data_pipeline.device_inputs import normalize, resize
from data_pipeline.inputs import INPUT_SIZE
from data_pipeline.sources.base import IMAGE_SIZE


class Preprocessing:
  """uint8 faces -> the model's float32 inputs, as evaluation makes them."""

  def __init__(
    self,
    mode: str,
    normalization: str,
    *,
    mean: np.ndarray | None = None,
    input_size: int = INPUT_SIZE,
  ):
    inputs.check(mode, normalization)
    if normalization == "bgr_mean" and mean is None:
      raise ValueError(
        "bgr_mean normalization needs the training split's mean image"
      )
    self.mode = mode
    self.normalization = normalization
    self.input_size = input_size
    self.mean = None
    if mean is not None:
      mean = jnp.asarray(mean, jnp.float32)
      self.mean = np.asarray(
        resize(mean, INPUT_SIZE) if mode == "resize" else _centre(mean)
      )

  def __call__(self, faces: jnp.ndarray) -> jnp.ndarray:
    """(N, 200, 200, 3) uint8 RGB faces -> (N, S, S, 3) float32 inputs."""
    images = faces.astype(jnp.float32)
    if self.mode == "resize":
      images = jnp.clip(jnp.round(resize(images, INPUT_SIZE)), 0, 255)
    else:
      images = _centre(images)
    images = normalize(images, self.normalization, self.mean)
    if self.input_size != INPUT_SIZE:
      images = resize(images, self.input_size)
    return images


def _centre(images: jnp.ndarray) -> jnp.ndarray:
  """The central 170x170 of (..., 200, 200, 3) images."""
  start = (IMAGE_SIZE - INPUT_SIZE) // 2
  return images[..., start : start + INPUT_SIZE, start : start + INPUT_SIZE, :]
