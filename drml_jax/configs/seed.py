"""The reproduction report's DISFA+ protocol (SPEC §1).

SGD lr 0.001, momentum 0.9, weight decay 0.005 on every parameter, batch 64,
20 epochs, 200x200 faces resized to 170x170, RGB scaled to [0, 1], affine
region BatchNorm with running statistics, PyTorch default init. Labels are
{-1, 0, +1} internally; the report's {-1,1} and {0,1} encodings give the same
loss here.
"""

from drml_jax.configs import base


def get_config():
  config = base.get_config()
  config.dataset = "disfa_plus"
  config.workdir = "workdirs/seed"
  config.checkpoint_every_steps = 500
  return config
