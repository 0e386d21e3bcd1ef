"""The inputs' last steps, in JAX: crop, mirror, normalise, resize.

The tf.data pipeline (`pipeline.make_dataset`) yields each face as the
uint8 image its cache keeps, "fixed" (200x200 in crop mode; resized to
170x170 and rounded in resize mode), with the crop `window` drawn for it:
int32 (top, left, mirrored). `ModelInputs` turns such a batch into the
model's float32 inputs inside the jitted train and evaluation steps, so a
batch crosses to the device as uint8, a quarter of the float32 bytes, and
the per-pixel work runs where the model runs. Prediction's preprocessing
(`drml_jax.predict.preprocessing`) shares `normalize` and `resize`.

The values are those the pipeline computed on the host before: a crop is a
slice, a mirror a reversal, "rgb" divides by 255 and "bgr_mean" reverses
the channels and subtracts the mean image cut by the same window, in
float32, each step exact or one rounding, as TensorFlow did it.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from data_pipeline.errors import check_name
from data_pipeline.inputs import INPUT_SIZE, NORMALIZATIONS


@functools.lru_cache(maxsize=None)
def resize_matrix(size_in: int, size_out: int) -> np.ndarray:
  """(size_out, size_in) float32 weights of an antialiased bilinear resize.

  Row o holds the triangle kernel, widened by the downscale factor, centred
  on output pixel o's centre mapped into the input (half-pixel centres),
  normalised to sum to one: TensorFlow's ScaleAndTranslate with the
  "triangle" kernel, step for step in float32.
  """
  f32 = np.float32
  inverse_scale = f32(1) / (f32(size_out) / f32(size_in))
  kernel_scale = max(inverse_scale, f32(1))
  weights = np.zeros((size_out, size_in), f32)
  for out in range(size_out):
    centre = (f32(out) + f32(0.5)) * inverse_scale
    first = int(np.ceil(centre - kernel_scale - f32(0.5)))
    last = int(np.floor(centre + kernel_scale - f32(0.5)))
    sources = np.arange(
      min(max(first, 0), size_in - 1), min(max(last, 0), size_in - 1) + 1
    )
    distance = np.abs((sources.astype(f32) + f32(0.5) - centre) / kernel_scale)
    kernel = np.maximum(f32(0), f32(1) - distance).astype(f32)
    weights[out, sources] = kernel / kernel.sum(dtype=f32)
  return weights


def resize(images: jax.Array, size: int) -> jax.Array:
  """(..., H, W, 3) float32 -> (..., size, size, 3), antialiased bilinear."""
  rows = resize_matrix(images.shape[-3], size)
  cols = resize_matrix(images.shape[-2], size)
  images = jnp.einsum("oh,...hwc->...owc", rows, images)
  return jnp.einsum("pw,...owc->...opc", cols, images)


# "rgb"'s value of each uint8 level: divided once here, in float32, as
# TensorFlow divided on the host; XLA compiles `x / 255.0` as a multiply by
# the reciprocal, which is one float32 step off for some levels.
RGB_LEVELS = np.arange(256, dtype=np.float32) / np.float32(255)


def normalize(images: jax.Array, normalization: str, mean=None) -> jax.Array:
  """float32 RGB 0..255 -> "rgb" [0, 1], or "bgr_mean" BGR minus `mean`."""
  if normalization == "rgb":
    return images / 255.0
  return images[..., ::-1] - mean


def crop(image: jax.Array, window: jax.Array) -> jax.Array:
  """The INPUT_SIZE square of one (H, W, C) image at window (top, left,
  mirrored), reversed left to right when mirrored."""
  top, left, mirrored = window[0], window[1], window[2]
  size = (INPUT_SIZE, INPUT_SIZE, image.shape[-1])
  cut = jax.lax.dynamic_slice(image, (top, left, 0), size)
  return jnp.where(mirrored != 0, cut[:, ::-1], cut)


@dataclasses.dataclass(frozen=True, eq=False)
class ModelInputs:
  """A pipeline batch -> the model's float32 inputs, in JAX.

  Attributes:
    normalization: one of NORMALIZATIONS.
    mean: "bgr_mean"'s mean image in the fixed images' geometry
      (`pipeline.fixed_mean`), else None.
    input_size: the model's input size; the 170x170 crops are resized to
      it (small test models).
  """

  normalization: str
  mean: np.ndarray | None = None
  input_size: int = INPUT_SIZE

  def __post_init__(self):
    check_name("normalization", self.normalization, NORMALIZATIONS)
    if self.normalization == "bgr_mean" and self.mean is None:
      raise ValueError(
        "bgr_mean normalization needs the training split's mean image"
      )

  def __call__(self, batch: dict) -> jax.Array:
    """{"image": (B, H, W, 3) uint8, "window": (B, 3) int32} -> (B, S, S, 3)
    float32, S = input_size."""
    windows = batch["window"]
    images = jax.vmap(crop)(batch["image"], windows)
    if self.normalization == "rgb":
      images = jnp.asarray(RGB_LEVELS)[images]
    else:
      mean = jax.vmap(crop, in_axes=(None, 0))(jnp.asarray(self.mean), windows)
      images = normalize(images.astype(jnp.float32), self.normalization, mean)
    if self.input_size != INPUT_SIZE:
      images = resize(images, self.input_size)
    return images
