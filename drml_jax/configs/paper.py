"""The authors' Caffe setup (SPEC §2) on DISFA+.

Random 170x170 crops of the 200x200 face with mirroring (center crop at
test), BGR 0..255 minus the mean image, batch 128, lr 0.001 x0.1 every 4000
iterations, weight decay 5e-4 with biases at twice the learning rate and no
decay, gaussian init, region BatchNorm without affine parameters that
normalises with batch statistics at test time too.
"""

from drml_jax.configs import base


def get_config():
  config = base.get_config()
  config.dataset = "disfa_plus"
  config.mode = "crop"
  config.normalization = "bgr_mean"
  config.batch_size = 128
  config.schedule = "step"
  config.step_size = 4000
  config.gamma = 0.1
  config.weight_decay = 5e-4
  config.caffe_bias_rule = True
  config.init = "caffe"
  config.region_bn = "batch_stats"
  config.workdir = "workdirs/paper"
  config.checkpoint_every_steps = 500
  return config
