"""MTCNN's three networks (Zhang et al., 2016), run in NumPy with the
weights that the `mtcnn` wheel ships.

  nets = FaceNets()
  offsets, faceness = nets.proposals(images)            # P-Net, any size
  offsets, faceness = nets.refined(patches_24)          # R-Net
  offsets, landmarks, faceness = nets.output(patches_48)  # O-Net

The wheel (MIT licence) holds each network's weights as a joblib file of
NumPy arrays in `mtcnn/assets/weights/`, in its Keras layers' order: conv
kernels (kh, kw, in, out) and biases, PReLU slopes, dense kernels (in, out).
They are read from the installed files without importing the `mtcnn`
package, whose networks are TensorFlow models: predict imports no
TensorFlow. The networks are small (P-Net 7k parameters, R-Net 100k, O-Net
390k), so NumPy's matrix products run them in milliseconds per frame, with
no compilation and the same numbers on every machine.

Inputs are RGB, (N, H, W, 3) float32, scaled as the weights were trained:
(pixel - 127.5) / 128 (`normalized`). R-Net and O-Net flatten their last
feature map with width before height, as the Caffe models they came from did.
`faceness` is the softmax probability of "face"; `offsets` move a box's
(x1, y1, x2, y2) by fractions of its width and height; `landmarks` are the
five points' x (5) then y (5), as fractions of the box.

The networks' matrix products run on one BLAS thread: OpenBLAS's other
threads spin after each product, and predict runs the model on the same
cores while it detects (benchmarks/README.md#predict-speed).
"""

from __future__ import annotations

import functools
import importlib.metadata

import joblib
import numpy as np
from threadpoolctl import ThreadpoolController

DISTRIBUTION = "mtcnn"
WEIGHTS = "mtcnn/assets/weights/{}.lz4"


def load_weights(name: str) -> list[np.ndarray]:
  """The arrays of network `name` ("pnet", "rnet" or "onet") from the
  installed mtcnn wheel."""
  try:
    path = importlib.metadata.distribution(DISTRIBUTION).locate_file(
      WEIGHTS.format(name)
    )
  except importlib.metadata.PackageNotFoundError as error:
    raise RuntimeError(
      "the face detector's weights come with the mtcnn package: pip install"
      " mtcnn==1.0.0"
    ) from error
  if not path.exists():
    raise RuntimeError(f"{path}: missing; reinstall mtcnn==1.0.0")
  return [np.asarray(a, np.float32) for a in joblib.load(path)]


def normalized(images: np.ndarray) -> np.ndarray:
  """uint8 RGB pixels scaled as the networks were trained."""
  return (images.astype(np.float32) - 127.5) / 128.0


def conv(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
  """A stride-1 'valid' convolution of (N, H, W, C) by (kh, kw, C, out)."""
  kh, kw = kernel.shape[:2]
  windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))
  # windows: (N, H', W', C, kh, kw)
  return np.tensordot(windows, kernel.transpose(2, 0, 1, 3), 3) + bias


def prelu(x: np.ndarray, slope: np.ndarray) -> np.ndarray:
  return np.where(x > 0, x, x * slope.reshape(-1))


def max_pool(x: np.ndarray, size: int, stride: int, same: bool) -> np.ndarray:
  """Max pooling over H and W; `same` pads as TensorFlow's 'SAME' does
  (ceil(n / stride) outputs, the extra padding after), else 'VALID'."""
  if same:
    pads = []
    for n in x.shape[1:3]:
      total = max((-(-n // stride) - 1) * stride + size - n, 0)
      pads.append((total // 2, total - total // 2))
    x = np.pad(x, [(0, 0), *pads, (0, 0)], constant_values=-np.inf)
  windows = np.lib.stride_tricks.sliding_window_view(
    x, (size, size), axis=(1, 2)
  )[:, ::stride, ::stride]
  return windows.max(axis=(-2, -1))


def softmax_face(logits: np.ndarray) -> np.ndarray:
  """The softmax probability of the second class (a face)."""
  return 1.0 / (1.0 + np.exp(logits[..., 0] - logits[..., 1]))


def _flatten(x: np.ndarray) -> np.ndarray:
  """(N, H, W, C) flattened width first, as the Caffe models were."""
  return x.transpose(0, 2, 1, 3).reshape(len(x), -1)


def _on_one_blas_thread(network):
  """`network(self, x)` run with NumPy's BLAS limited to one thread."""

  @functools.wraps(network)
  def run(self, x):
    with self.blas.limit(limits=1, user_api="blas"):
      return network(self, x)

  return run


class FaceNets:
  """P-Net, R-Net and O-Net with the mtcnn wheel's weights."""

  def __init__(self):
    self.pnet = load_weights("pnet")
    self.rnet = load_weights("rnet")
    self.onet = load_weights("onet")
    self.blas = ThreadpoolController()

  @_on_one_blas_thread
  def proposals(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P-Net on normalised (N, H, W, 3) images: per 12x12 window, at a
    stride of 2, its box offsets (N, H', W', 4) and faceness (N, H', W')."""
    w = self.pnet
    x = max_pool(prelu(conv(x, w[0], w[1]), w[2]), 2, 2, same=True)
    x = prelu(conv(x, w[3], w[4]), w[5])
    x = prelu(conv(x, w[6], w[7]), w[8])
    offsets = conv(x, w[9], w[10])
    return offsets, softmax_face(conv(x, w[11], w[12]))

  @_on_one_blas_thread
  def refined(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R-Net on normalised (N, 24, 24, 3) patches: offsets (N, 4), faceness (N,)."""
    w = self.rnet
    x = max_pool(prelu(conv(x, w[0], w[1]), w[2]), 3, 2, same=True)
    x = max_pool(prelu(conv(x, w[3], w[4]), w[5]), 3, 2, same=False)
    x = prelu(conv(x, w[6], w[7]), w[8])
    x = prelu(_flatten(x) @ w[9] + w[10], w[11])
    return x @ w[12] + w[13], softmax_face(x @ w[14] + w[15])

  @_on_one_blas_thread
  def output(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
    """O-Net on normalised (N, 48, 48, 3) patches: offsets (N, 4),
    landmarks (N, 10), faceness (N,)."""
    w = self.onet
    x = max_pool(prelu(conv(x, w[0], w[1]), w[2]), 3, 2, same=True)
    x = max_pool(prelu(conv(x, w[3], w[4]), w[5]), 3, 2, same=False)
    x = max_pool(prelu(conv(x, w[6], w[7]), w[8]), 2, 2, same=True)
    x = prelu(conv(x, w[9], w[10]), w[11])
    x = prelu(_flatten(x) @ w[12] + w[13], w[14])
    return (
      x @ w[15] + w[16],
      x @ w[17] + w[18],
      softmax_face(x @ w[19] + w[20]),
    )
