"""TensorFlow and TFDS for input pipelines only: CPU, quiet logs.

Import `tf` and `tfds` from here so that TensorFlow never claims an
accelerator JAX needs: its GPUs are hidden before any TF op runs.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow only decodes, resizes and crops here, none of which runs on
# oneDNN's kernels (the pipeline's output is bit-identical either way);
# with them off TensorFlow also prints nothing when it starts.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
# TensorFlow imports Keras as it loads, for Keras's own registrations; the
# pipelines never use Keras. Asking for the legacy Keras package, which is
# not installed, skips that import (a second or two of every start); set
# TF_USE_LEGACY_KERAS=0 to have tf.keras in a process that imports this.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position
import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top,wrong-import-position

tf.config.set_visible_devices([], "GPU")
tf.get_logger().setLevel("ERROR")

__all__ = ["tf", "tfds"]
