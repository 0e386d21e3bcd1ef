"""Quick CPU default: DRML learns the synthetic dataset in minutes.

He init with SGD lr 0.003 at batch 16 (ENGINEERING.md, "Learning from scratch
on a short CPU budget"): with PyTorch's default init the network stays
collapsed for thousands of images.
"""

from drml_jax.configs import base


def get_config():
  config = base.get_config()
  config.dataset = "synthetic"
  config.init = "he"
  config.learning_rate = 0.003
  config.batch_size = 16
  config.cache = True
  config.num_epochs = 4
  config.workdir = "workdirs/default"
  return config
