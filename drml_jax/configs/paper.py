"""The authors' Caffe setup on DISFA+ (docs/protocol.md#the-authors-caffe-setup).

Random 170x170 crops of the 200x200 face with mirroring (center crop at
test), BGR 0..255 minus the mean image, batch 128, lr 0.001 x0.1 every 4000
iterations, weight decay 5e-4 with biases at twice the learning rate and no
decay, gaussian init, region BatchNorm without affine parameters that
normalises with batch statistics at test time too.
"""

from drml_jax.configs import default


def get_config():
  config = default.get_config()
  config.data.mode = "crop"
  config.data.normalization = "bgr_mean"
  config.model.init = "caffe"
  config.model.region_bn = "batch_stats"
  config.optim.schedule = "step"
  config.optim.step_size = 4000
  config.optim.gamma = 0.1
  config.optim.weight_decay = 5e-4
  config.optim.caffe_bias_rule = True
  config.batch_size = 128
  config.workdir = "workdirs/paper"
  return config
