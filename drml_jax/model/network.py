"""The DRML network (Zhao et al., CVPR 2016) as a Flax NNX module, NHWC."""

from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from data_pipeline.labels import MAX_INTENSITY
from drml_jax.model.convs import Conv
from drml_jax.model.region import (
  RegionLayer,
  merge_patches,
  per_patch,
  split_patches,
)

INIT_VARIANTS = ("pytorch", "caffe", "he")
REGION_LAYOUTS = ("auto", "image", "patches")


class Outputs(NamedTuple):
  """What the network computes for a batch.

  logits: (B, num_aus) occurrence logits.
  intensity_logits: (B, num_aus, MAX_INTENSITY) logits of P(intensity >= k),
    k = 1 .. MAX_INTENSITY, or None for a network without the intensity head.
  """

  logits: jax.Array
  intensity_logits: jax.Array | None = None

  @property
  def intensity(self) -> jax.Array | None:
    """(B, num_aus) intensities in [0, MAX_INTENSITY] (`expected_intensity`),
    or None without the head."""
    if self.intensity_logits is None:
      return None
    return expected_intensity(self.intensity_logits)


def expected_intensity(intensity_logits: jax.Array) -> jax.Array:
  """sum_k P(intensity >= k): the intensity the ordinal head's threshold
  logits (..., MAX_INTENSITY) expect, in [0, MAX_INTENSITY]."""
  return jax.nn.sigmoid(intensity_logits).sum(-1)


class Layer(NamedTuple):
  """One step of the network: its name, what it computes, the module it owns."""

  name: str
  apply: Callable[[jax.Array], jax.Array]
  module: nnx.Module | None = None


def _constant(value):
  return nnx.initializers.constant(value)


def _normal(std):
  return nnx.initializers.normal(stddev=std)


def layer_initializers(init: str, role: str, fan_in: int):
  """(kernel_init, bias_init) of one layer for an init variant.

  role: "conv1", "conv" (the other convs, region convs included),
  "fc_hidden" (the 4096 and 2048 layers) or "fc_out" (the logits layer).
  """
  if init == "pytorch":
    # torch.nn.Conv2d / Linear defaults: kaiming_uniform(a=sqrt(5)) for the
    # weight and the bias both come out as U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    bound = 1.0 / math.sqrt(fan_in)
    uniform = lambda key, shape, dtype=jnp.float32: jax.random.uniform(
      key, shape, dtype, -bound, bound
    )
    return uniform, uniform
  if init == "caffe":
    return {
      "conv1": (_normal(0.01), _constant(0.0)),
      "conv": (_normal(0.01), _constant(1.0)),
      "fc_hidden": (_normal(0.005), _constant(1.0)),
      "fc_out": (_normal(0.01), _constant(0.0)),
    }[role]
  if init == "he":
    if role == "fc_out":
      return _normal(0.01), _constant(0.0)
    return _normal(math.sqrt(2.0 / fan_in)), _constant(0.0)
  raise ValueError(f"init={init!r}: expected one of {INIT_VARIANTS}")


def local_response_norm(
  x: jax.Array,
  size: int = 5,
  alpha: float = 1e-4,
  beta: float = 0.75,
  k: float = 1.0,
) -> jax.Array:
  """Across-channel LRN as torch.nn.LocalResponseNorm (alpha divided by size).

  The window sum is a matmul with a 0/1 band matrix, which XLA:CPU
  differentiates faster than a sum of channel-shifted slices
  (benchmarks/README.md#log).
  """
  channels = jnp.arange(x.shape[-1])
  offset = channels[:, None] - channels[None, :]
  band = ((offset >= -(size // 2)) & (offset <= (size - 1) // 2)).astype(
    x.dtype
  )
  return x * _inverse_power(k + (alpha / size) * (jnp.square(x) @ band), beta)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _inverse_power(t: jax.Array, beta: float) -> jax.Array:
  """t ** -beta; for LRN's beta of 0.75 as rsqrt(t) ** 1.5, which XLA:CPU
  computes, and differentiates, faster than a power
  (benchmarks/README.md#log)."""
  if beta == 0.75:
    root = jax.lax.rsqrt(t)
    return root * jnp.sqrt(root)
  return t**-beta


@_inverse_power.defjvp
def _inverse_power_jvp(beta, primals, tangents):
  (t,), (t_dot,) = primals, tangents
  y = _inverse_power(t, beta)
  return y, -beta * y / t * t_dot


@jax.custom_vjp
def max_pool_2x2(x: jax.Array) -> jax.Array:
  """2x2 max-pool, stride 2, VALID, as PyTorch's MaxPool2d(2).

  The gradient goes to the first maximum of each window in row-major
  order, as PyTorch sends it (autodiff of a max splits it among ties).
  The forward pass keeps each window's argmax, a byte per output, where
  autodiff of a max keeps a float mask of the map's size, in the train
  step's temporaries (benchmarks/README.md#log). A NaN in a window is its
  maximum.
  """
  return _max_pool_forward(x)[0]


def _pool_windows(x):
  b, h, w, c = x.shape
  x = x[:, : h // 2 * 2, : w // 2 * 2]
  return x.reshape(b, h // 2, 2, w // 2, 2, c)


def _window_positions(shape):
  """Each element's position 0-3 in its 2x2 window, row-major."""
  row = jax.lax.broadcasted_iota(jnp.int8, shape, 2)
  return 2 * row + jax.lax.broadcasted_iota(jnp.int8, shape, 4)


def _max_pool_forward(x):
  windows = _pool_windows(x)

  def first_max(a, b):
    (a_value, a_position), (b_value, b_position) = a, b
    take_b = (
      (b_value > a_value)
      | (jnp.isnan(b_value) & ~jnp.isnan(a_value))
      | ((b_value == a_value) & (b_position < a_position))
    )
    return (
      jnp.where(take_b, b_value, a_value),
      jnp.where(take_b, b_position, a_position),
    )

  pooled, argmax = jax.lax.reduce(
    (windows, _window_positions(windows.shape)),
    (jnp.array(-jnp.inf, x.dtype), jnp.array(4, jnp.int8)),
    first_max,
    (2, 4),
  )
  return pooled, (argmax, x.shape)


def _max_pool_backward(residuals, cotangent):
  argmax, (b, h, w, c) = residuals
  shape = (b, h // 2, 2, w // 2, 2, c)
  expand = lambda y: jnp.expand_dims(y, (2, 4))
  grad = jnp.where(
    expand(argmax) == _window_positions(shape), expand(cotangent), 0
  ).reshape(b, h // 2 * 2, w // 2 * 2, c)
  return (jnp.pad(grad, ((0, 0), (0, h % 2), (0, w % 2), (0, 0))),)


max_pool_2x2.defvjp(_max_pool_forward, _max_pool_backward)


def resolve_region_layout(
  layout: str, region_layer: bool, patch_size: tuple[float, float]
) -> str:
  """The layout "auto" stands for: "patches" on CPU wherever it applies.

  "patches" keeps the map cut into the region layer's patches from conv1 to
  the max-pool: conv1 runs on each patch's input window, the pool on each
  patch, and the pooled map, a quarter of the size, is the only one put
  back together. "image" runs conv1 and the pool on the whole map and cuts
  and joins it around the region layer; on XLA:CPU the backward pass of
  those two transposes of the full-size map, fused with the elementwise
  ops around them, costs more than the convolutions they sit between
  (benchmarks/README.md#log). Pooling each patch is pooling the map only when
  the patches' sides are even.
  """
  if layout not in REGION_LAYOUTS:
    raise ValueError(
      f"region_layout={layout!r}: expected one of {REGION_LAYOUTS}"
    )
  fits = region_layer and all(
    side == int(side) and side % 2 == 0 for side in patch_size
  )
  if layout == "auto":
    return "patches" if fits and jax.default_backend() == "cpu" else "image"
  if layout == "patches" and not fits:
    raise ValueError(
      "region_layout='patches' needs the region layer and patches of even "
      f"sides (here {patch_size[0]:g}x{patch_size[1]:g}): use 'image'"
    )
  return layout


def feature_shape(input_size: int) -> tuple[int, int, int]:
  """(H, W, C) of the map fed to the first fc layer."""
  size = input_size - 10  # conv1 11x11
  size //= 2  # max-pool
  size = size - 7 - 7  # two 8x8 convs
  size = (size - 6) // 2 + 1  # 6x6 stride 2
  size -= 4  # 5x5
  return size, size, 16


class DRML(nnx.Module):
  """Deep Region and Multi-label Learning network; returns logits (B, num_aus).

  Args:
    num_aus: number of action units (outputs).
    grid: rows, cols of the region layer.
    region_bn: "affine" (PyTorch ports: affine BN with running statistics)
      or "batch_stats" (authors' Caffe: no affine, batch statistics always).
    init: "pytorch" (torch defaults), "caffe" (the authors' gaussians,
      docs/model.md#caffe-initialisation-elsewhere) or "he".
    region_conv: "auto", "lax" or "unrolled" form of the region 3x3 convs.
    region_layout: "auto", "image" or "patches": the layout of the map from
      conv1 to the max-pool (`resolve_region_layout`); the same numbers.
    conv: "auto", "lax", "chunked", "fft" or "banded" form of the dense
      convs (drml_jax.model.convs); "auto" runs conv1 banded and conv2 as an FFT
      on CPU, the others "chunked", and everything as lax on accelerators.
    region_layer: False removes the region layer (ablation).
    intensity: add the intensity head, an ordinal one: a linear layer on
      fc2's features beside fc3, giving each AU MAX_INTENSITY logits of
      P(intensity >= k) (`outputs`); the features reach it without its
      gradient, so it never changes what the occurrence layers learn.
    dropout: rate of the two hidden fc layers' dropout.
    input_size: side of the square input image.
    dtype: computation dtype (None: that of the parameters).
    param_dtype: parameter dtype.
  """

  def __init__(
    self,
    num_aus: int = 12,
    *,
    grid=(8, 8),
    region_bn: str = "affine",
    init: str = "pytorch",
    region_conv: str = "auto",
    region_layout: str = "auto",
    conv: str = "auto",
    region_layer: bool = True,
    intensity: bool = False,
    dropout: float = 0.5,
    input_size: int = 170,
    dtype=None,
    param_dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    def make_conv(cin, cout, kernel, role, stride=1, cpu_impl="chunked"):
      kernel_init, bias_init = layer_initializers(
        init, role, cin * kernel * kernel
      )
      return Conv(
        cin,
        cout,
        kernel,
        strides=stride,
        impl=conv,
        cpu_impl=cpu_impl,
        kernel_init=kernel_init,
        bias_init=bias_init,
        dtype=dtype,
        param_dtype=param_dtype,
        rngs=rngs,
      )

    def linear(din, dout, role):
      kernel_init, bias_init = layer_initializers(init, role, din)
      return nnx.Linear(
        din,
        dout,
        kernel_init=kernel_init,
        bias_init=bias_init,
        dtype=dtype,
        param_dtype=param_dtype,
        rngs=rngs,
      )

    self.conv1 = make_conv(3, 32, 11, "conv1", cpu_impl="banded")
    if region_layer:
      kernel_init, bias_init = layer_initializers(init, "conv", 32 * 9)
      self.region = RegionLayer(
        32,
        grid=grid,
        region_bn=region_bn,
        region_conv=region_conv,
        kernel_init=kernel_init,
        bias_init=bias_init,
        dtype=dtype,
        param_dtype=param_dtype,
        rngs=rngs,
      )
    else:
      self.region = None
    conv1_size = input_size - 10
    self.region_layout = resolve_region_layout(
      region_layout,
      region_layer,
      (conv1_size / grid[0], conv1_size / grid[1]),
    )
    self.conv2 = make_conv(32, 16, 8, "conv", cpu_impl="fft")
    self.conv3 = make_conv(16, 16, 8, "conv")
    self.conv4 = make_conv(16, 16, 6, "conv", stride=2)
    self.conv5 = make_conv(16, 16, 5, "conv")
    self.feature_shape = feature_shape(input_size)
    height, width, channels = self.feature_shape
    self.fc1 = linear(height * width * channels, 4096, "fc_hidden")
    self.fc2 = linear(4096, 2048, "fc_hidden")
    self.fc3 = linear(2048, num_aus, "fc_out")
    # Made after every other layer, so the others' initial values are the
    # same with and without it.
    self.fc_intensity = (
      linear(2048, num_aus * MAX_INTENSITY, "fc_out") if intensity else None
    )
    # Stateless: the train step passes a key derived from the step number.
    self.dropout1 = nnx.Dropout(dropout)
    self.dropout2 = nnx.Dropout(dropout)

  def forms(self) -> dict[str, str]:
    """The forms this model's convs run in ("auto" resolved for the backend
    it was built on): each dense conv's, the region convs', the layout."""
    forms = {
      name: getattr(self, name).impl
      for name in ("conv1", "conv2", "conv3", "conv4", "conv5")
    }
    if self.region is not None:
      forms["region convs"] = self.region.units.conv_impl
    forms["region layout"] = self.region_layout
    return forms

  def layers(self, rngs: nnx.Rngs | None = None) -> list[Layer]:
    """The network as the sequence of layers that `__call__` applies."""
    conv = lambda name, layer: Layer(
      name + " + relu", lambda x: nnx.relu(layer(x)), layer
    )
    fc = lambda name, layer, dropout: Layer(
      name + " + relu + dropout",
      lambda x: dropout(nnx.relu(layer(x)), rngs=rngs),
      layer,
    )
    pool = lambda x: nnx.relu(max_pool_2x2(x))
    layers = [Layer("conv1 11x11", self.conv1, self.conv1)]
    if self.region is not None:
      rows, cols = grid = self.region.grid
      region = Layer(f"region layer {rows}x{cols}", self.region, self.region)
      if self.region_layout == "patches":
        # The same layers, on (rows*cols, B, h, w, C) patches up to the pool.
        overlap = self.conv1.kernel_size[0] - 1
        layers[0] = layers[0]._replace(
          apply=lambda x: per_patch(self.conv1, split_patches(x, grid, overlap))
        )
        region = region._replace(apply=self.region.apply_to_patches)
        pool = lambda patches: nnx.relu(
          merge_patches(per_patch(max_pool_2x2, patches), grid)
        )
      layers.append(region)
    return layers + [
      # relu(max_pool(x)) == max_pool(relu(x)), on a quarter of the values.
      Layer("relu + max-pool 2x2", pool),
      Layer("local response norm", local_response_norm),
      conv("conv2 8x8", self.conv2),
      conv("conv3 8x8", self.conv3),
      conv("conv4 6x6 /2", self.conv4),
      conv("conv5 5x5", self.conv5),
      Layer("flatten", lambda x: x.reshape(x.shape[0], -1)),
      fc("fc1", self.fc1, self.dropout1),
      fc("fc2", self.fc2, self.dropout2),
      Layer("fc3 (logits)", self.fc3, self.fc3),
    ]

  def __call__(
    self, x: jax.Array, *, rngs: nnx.Rngs | None = None
  ) -> jax.Array:
    """Logits (B, num_aus); `rngs` (a `dropout` stream) is needed in train
    mode when dropout > 0."""
    for layer in self.layers(rngs):
      x = layer.apply(x)
    return x

  @property
  def has_intensity(self) -> bool:
    """Whether the network has the intensity head."""
    return self.fc_intensity is not None

  def outputs(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> Outputs:
    """The logits and, with the head, the intensity logits of a batch."""
    *hidden, logits_layer = self.layers(rngs)
    for layer in hidden:
      x = layer.apply(x)
    if self.fc_intensity is None:
      return Outputs(logits_layer.apply(x))
    # The head reads the features; its loss does not train them.
    thresholds = self.fc_intensity(jax.lax.stop_gradient(x))
    return Outputs(
      logits_layer.apply(x),
      thresholds.reshape(x.shape[0], -1, MAX_INTENSITY),
    )


def count_parameters(model: nnx.Module) -> int:
  """Number of trainable parameters (BatchNorm statistics excluded)."""
  return sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
