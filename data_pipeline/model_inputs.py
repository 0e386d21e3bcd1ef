"""What the model receives, and the one preprocessing that makes it, in JAX.

  inputs = ModelInputs("resize", "rgb")
  images = inputs(batch)         # a pipeline batch: training, evaluation
  images = inputs.faces(faces)   # (N, 200, 200, 3) uint8 faces: prediction

Every source yields 200x200 RGB uint8 faces (`sources.base.IMAGE_SIZE`). The
model takes INPUT_SIZE x INPUT_SIZE float32 images, made in two stages:

1. The fixed image (`fix`). Resize mode resizes the face to 170x170
   (bilinear, antialiased) and rounds it to uint8; crop mode keeps the
   whole face. Training and evaluation have tf.data make it once per image
   and cache it (`pipeline`, with TensorFlow's resize); prediction makes it
   here. Both use the triangle-kernel weights of TensorFlow's
   ScaleAndTranslate (`resize_matrix`); the sums run in another order, so a
   pixel on a rounding boundary can land one level off
   (`tests/test_predict.py` bounds it).
2. The model's inputs (`ModelInputs.__call__`), inside the jitted steps:
   the 170x170 window (top, left, mirrored) that the pipeline drew for the
   image (random in training's crop mode, central otherwise), then "rgb"
   divides by 255 and "bgr_mean" reverses the channels and subtracts the
   training split's mean image, fixed and cut the same way; a model built
   for another input size gets the result resized again, unrounded.

A batch therefore crosses to the device as uint8, a quarter of the float32
bytes, and training, evaluation, prediction, saliency and export all run
this one code. Here without TensorFlow, so that prediction stays light.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from data_pipeline.errors import check_name
from data_pipeline.sources.base import IMAGE_SIZE

INPUT_SIZE = 170
MODES = ("resize", "crop")
NORMALIZATIONS = ("rgb", "bgr_mean")


def check(mode: str, normalization: str) -> None:
  """Raises a one-line ValueError unless both are known."""
  check_name("mode", mode, MODES)
  check_name("normalization", normalization, NORMALIZATIONS)


def fixed_size(mode: str) -> int:
  """The side of a fixed image: the whole face in crop mode, else resized."""
  return IMAGE_SIZE if mode == "crop" else INPUT_SIZE


def central_window(mode: str) -> np.ndarray:
  """int32 (top, left, mirrored) of evaluation's window into a fixed image."""
  start = (fixed_size(mode) - INPUT_SIZE) // 2
  return np.array([start, start, 0], np.int32)


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


def fix(faces: jax.Array, mode: str) -> jax.Array:
  """(..., 200, 200, 3) uint8 faces -> their uint8 fixed images (stage 1)."""
  if mode == "crop":
    return faces
  resized = resize(faces.astype(jnp.float32), INPUT_SIZE)
  return jnp.clip(jnp.round(resized), 0, 255).astype(jnp.uint8)


def fixed_mean(mean: np.ndarray, mode: str) -> np.ndarray:
  """The (200, 200, 3) mean image in the fixed images' geometry: resize
  mode resizes it (unrounded), crop mode keeps it whole."""
  mean = np.asarray(mean, np.float32)
  if mode == "crop":
    return mean
  return np.asarray(resize(jnp.asarray(mean), INPUT_SIZE))


# "rgb"'s value of each uint8 level: divided once here, in float32, as
# TensorFlow divided on the host; XLA compiles `x / 255.0` as a multiply by
# the reciprocal, which is one float32 step off for some levels.
RGB_LEVELS = np.arange(256, dtype=np.float32) / np.float32(255)


def cut_window(image: jax.Array, window: jax.Array) -> jax.Array:
  """The INPUT_SIZE square of one (H, W, C) image at window (top, left,
  mirrored), reversed left to right when mirrored."""
  top, left, mirrored = window[0], window[1], window[2]
  size = (INPUT_SIZE, INPUT_SIZE, image.shape[-1])
  cut = jax.lax.dynamic_slice(image, (top, left, 0), size)
  return jnp.where(mirrored != 0, cut[:, ::-1], cut)


@dataclasses.dataclass(frozen=True, eq=False)
class ModelInputs:
  """uint8 faces -> the model's float32 inputs, in JAX (the module's stages).

  Attributes:
    mode: one of MODES.
    normalization: one of NORMALIZATIONS.
    mean: "bgr_mean"'s mean image of the training split, (200, 200, 3)
      float32 as `splits.mean_image` gives it, else None.
    input_size: the model's input size; the 170x170 inputs are resized to
      it (small test models).
  """

  mode: str
  normalization: str
  mean: np.ndarray | None = None
  input_size: int = INPUT_SIZE
  fixed_mean: np.ndarray | None = dataclasses.field(init=False, repr=False)

  def __post_init__(self):
    check(self.mode, self.normalization)
    if self.normalization == "bgr_mean" and self.mean is None:
      raise ValueError(
        "bgr_mean normalization needs the training split's mean image"
      )
    mean = None
    if self.normalization == "bgr_mean":
      mean = fixed_mean(self.mean, self.mode)
    object.__setattr__(self, "fixed_mean", mean)

  def __call__(self, batch: dict) -> jax.Array:
    """{"image": (B, H, W, 3) uint8 fixed images, "window": (B, 3) int32}
    -> (B, S, S, 3) float32, S = input_size (stage 2)."""
    windows = batch["window"]
    images = jax.vmap(cut_window)(batch["image"], windows)
    if self.normalization == "rgb":
      images = jnp.asarray(RGB_LEVELS)[images]
    else:
      mean = jax.vmap(cut_window, in_axes=(None, 0))(
        jnp.asarray(self.fixed_mean), windows
      )
      images = images.astype(jnp.float32)[..., ::-1] - mean
    if self.input_size != INPUT_SIZE:
      images = resize(images, self.input_size)
    return images

  def faces(self, faces: jax.Array) -> jax.Array:
    """(N, 200, 200, 3) uint8 faces -> (N, S, S, 3) float32, as evaluation
    makes them: both stages, with the central window."""
    window = jnp.broadcast_to(central_window(self.mode), (faces.shape[0], 3))
    return self({"image": fix(faces, self.mode), "window": window})
