"""TensorFlow and TFDS for input pipelines only: CPU, quiet logs.

Import `tf` and `tfds` from here so that TensorFlow never claims an
accelerator JAX needs: its GPUs are hidden before any TF op runs.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position
import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top,wrong-import-position

tf.config.set_visible_devices([], "GPU")
tf.get_logger().setLevel("ERROR")

__all__ = ["tf", "tfds"]
