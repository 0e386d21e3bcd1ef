"""Small labels and logits shared by the loss and metrics tests: four
examples, four AUs, the third AU ignored throughout."""

import numpy as np

LABELS = np.array(
  [[1, -1, 0, -1], [-1, 1, 0, -1], [1, 1, 0, -1], [-1, -1, 0, -1]], np.int8
)
LOGITS = np.array(
  [
    [2.0, -1.0, 3.0, -2.0],
    [0.5, 1.5, -3.0, -0.5],
    [-0.7, 2.5, 1.0, -1.5],
    [-1.2, 0.3, 0.2, -0.1],
  ],
  np.float32,
)
