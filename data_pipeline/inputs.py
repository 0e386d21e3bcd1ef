"""What the model receives: its input size and the ways a face becomes one.

Every source yields 200x200 RGB faces (`sources.base.IMAGE_SIZE`); the model
takes INPUT_SIZE x INPUT_SIZE, by a resize or a crop (MODES), scaled to
[0, 1] RGB or BGR minus the training split's mean image (NORMALIZATIONS).
Here without TensorFlow, so that prediction can read them cheaply.
"""

from data_pipeline.errors import check_name

INPUT_SIZE = 170
MODES = ("resize", "crop")
NORMALIZATIONS = ("rgb", "bgr_mean")


def check(mode: str, normalization: str) -> None:
  """Raises a one-line ValueError unless both are known."""
  check_name("mode", mode, MODES)
  check_name("normalization", normalization, NORMALIZATIONS)
